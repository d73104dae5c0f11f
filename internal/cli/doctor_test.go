package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/secrets"
)

// serverHost is a host set up as the README's server recipe leaves it,
// seen by the relay user outside the unit: the token only as an encrypted
// systemd credential of relay.service, the TOTP secret in a file, and the
// audit log started with --no-store.
func serverHost(t *testing.T, unit string, credExists bool) (cfg, cred string) {
	t.Helper()
	noKeyring(t)
	cfg, state := writeConfig(t, "secrets: {keyring: false}\n")
	etc := t.TempDir()
	cred = filepath.Join(etc, "bot-token.cred")
	if credExists {
		if err := os.WriteFile(cred, []byte("encrypted"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	units := t.TempDir()
	if err := os.WriteFile(filepath.Join(units, relayUnit), []byte(strings.ReplaceAll(unit, "CRED", cred)), 0o644); err != nil {
		t.Fatal(err)
	}
	old := unitDirs
	unitDirs = []string{units}
	t.Cleanup(func() { unitDirs = old })
	if err := os.MkdirAll(filepath.Join(state, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "secrets", secrets.TOTPSecret), []byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cliRun(t, nil, "", "audit", "init", "--config", cfg, "--no-store"); code != 0 {
		t.Fatalf("audit init --no-store: exit %d: %s", code, errs)
	}
	return cfg, cred
}

const encryptedUnit = "[Unit]\nDescription=relay\n\n[Service]\nUser=relay\nLoadCredentialEncrypted=bot-token:CRED\n"

// TestDoctorOutsideTheUnit: run as the relay user outside relay.service,
// doctor cannot read the token; it says what it checked (the unit loads
// the credential, and its file exists) and what it could not, and warns
// that K0 is off the host, without a single FAIL.
func TestDoctorOutsideTheUnit(t *testing.T) {
	cfg, cred := serverHost(t, encryptedUnit, true)
	units := unitDirs[0]
	for _, offline := range []bool{true, false} {
		args := []string{"doctor", "--config", cfg}
		if offline {
			args = append(args, "--offline")
		}
		code, out, errs := cliRun(t, nil, "", args...)
		if code != ExitOK || errs != "" {
			t.Errorf("offline=%v: got exit %d, stderr %q; want 0 and nothing on stderr:\n%s", offline, code, errs, out)
		}
		for _, want := range []string{
			"ok    keyring    not used (secrets.keyring: false)\n",
			"warn  token      a systemd credential of relay.service (LoadCredentialEncrypted=bot-token:" + cred + " in " + filepath.Join(units, relayUnit) + "); " + cred + " exists, but only the service can read it, so the token itself is not checked here\n",
			"ok    totp       enrolled (secret from file)\n",
			"warn  audit key  verification needs K0; it is not on this host (relay audit init --no-store keeps it off): relay audit verify --key - reads your copy\n",
			"ok    audit      links ok (MACs need K0): 1 records in 1 file(s), head seq=1\n",
			"all checks passed\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("offline=%v: output lacks %q:\n%s", offline, want, out)
			}
		}
		getMe := "warn  getMe      not checked: the token is readable only inside relay.service; relay logs a refused token at start (journalctl -u relay)\n"
		if strings.Contains(out, getMe) == offline {
			t.Errorf("offline=%v: getMe line present=%v, want it only when online:\n%s", offline, !offline, out)
		}
		if strings.Contains(out, "FAIL") {
			t.Errorf("offline=%v: a FAIL:\n%s", offline, out)
		}
	}
}

// TestDoctorMissingCredentialFile: the unit names a credential file that
// is not there: that is a real failure, with the command that makes it.
func TestDoctorMissingCredentialFile(t *testing.T) {
	cfg, cred := serverHost(t, encryptedUnit, false)
	code, out, _ := cliRun(t, nil, "", "doctor", "--config", cfg, "--offline")
	want := "FAIL  token      relay.service loads the token from " + cred + " (LoadCredentialEncrypted=bot-token:" + cred + " in " + filepath.Join(unitDirs[0], relayUnit) + "), which does not exist\n" +
		"      fix: printf %s \"$TOKEN\" | sudo systemd-creds encrypt --name=bot-token - " + cred + "\n"
	if code != ExitFailure || !strings.Contains(out, want) {
		t.Errorf("got exit %d:\n%s\nwant exit 1 and:\n%s", code, out, want)
	}
}

// TestDoctorInsideTheUnit: with CREDENTIALS_DIRECTORY set, doctor is
// inside a unit and a missing token is a failure, whatever unit files say.
func TestDoctorInsideTheUnit(t *testing.T) {
	cfg, _ := serverHost(t, encryptedUnit, true)
	code, out, _ := cliRun(t, map[string]string{"CREDENTIALS_DIRECTORY": t.TempDir()}, "", "doctor", "--config", cfg, "--offline")
	if code != ExitFailure || !strings.Contains(out, "FAIL  token      bot-token: secret not found in systemd credential") {
		t.Errorf("got exit %d, want the missing token as a FAIL:\n%s", code, out)
	}
}

func TestFindCredential(t *testing.T) {
	for _, tc := range []struct {
		name    string
		unit    string
		dropins map[string]string
		want    string // "directive path", or "" for not found
	}{
		{"encrypted", encryptedUnit, nil, "LoadCredentialEncrypted /c"},
		{"plain", "[Service]\nLoadCredential=bot-token:/etc/relay/bot-token\n", nil, "LoadCredential /etc/relay/bot-token"},
		{"by name from the credential store", "[Service]\nLoadCredentialEncrypted=bot-token\n", nil, "LoadCredentialEncrypted "},
		{"commented out", "[Service]\n#LoadCredential=bot-token:/x\n; LoadCredential=bot-token:/y\n", nil, ""},
		{"another credential", "[Service]\nLoadCredential=other:/x\n", nil, ""},
		{"outside [Service]", "[Unit]\nLoadCredential=bot-token:/x\n", nil, ""},
		{"a drop-in adds it", "[Service]\nUser=relay\n", map[string]string{"10-token.conf": "[Service]\nLoadCredential=bot-token:/d\n"}, "LoadCredential /d"},
		{"a drop-in resets the list", encryptedUnit, map[string]string{"20-reset.conf": "[Service]\nLoadCredentialEncrypted=\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, relayUnit), []byte(strings.ReplaceAll(tc.unit, "CRED", "/c")), 0o644)
			if len(tc.dropins) > 0 {
				os.Mkdir(filepath.Join(dir, relayUnit+".d"), 0o755)
				for n, body := range tc.dropins {
					os.WriteFile(filepath.Join(dir, relayUnit+".d", n), []byte(body), 0o644)
				}
			}
			c, ok := findCredential([]string{filepath.Join(dir, "missing"), dir}, relayUnit, secrets.BotToken)
			got := ""
			if ok {
				got = c.directive + " " + c.path
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, ok := findCredential([]string{t.TempDir()}, relayUnit, secrets.BotToken); ok {
		t.Error("found a credential with no unit installed")
	}
}
