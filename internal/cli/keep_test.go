package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dbus "github.com/godbus/dbus/v5"

	"github.com/relaychat/relay/internal/secrets"
)

// writeConfig writes a minimal config under a fresh directory; extra is
// appended as top-level YAML.
func writeConfig(t *testing.T, extra string) (path, state string) {
	t.Helper()
	dir := t.TempDir()
	state = filepath.Join(dir, "state")
	path = filepath.Join(dir, "relay.yaml")
	src := "state_dir: " + state + "\naudit: {dir: " + filepath.Join(dir, "audit") + "}\nauth: {owner_id: 1}\n" + extra +
		"commands:\n  up:\n    argv: [/usr/bin/true]\n    sandbox: none\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, state
}

const keyringNoteLine = "relay: note: no os keyring here (no D-Bus session bus); using files (secrets.keyring: false in the config stops looking)\n"

// TestAuditInitWithoutKeyring: on a host without a keyring, audit init
// keeps K0 in a 0600 file, as first-run setup does, says where, and says
// once why the keyring was not used.
func TestAuditInitWithoutKeyring(t *testing.T) {
	noKeyring(t)
	cfg, state := writeConfig(t, "")
	code, out, errs := cliRun(t, nil, "", "audit", "init", "--config", cfg)
	if code != ExitOK {
		t.Fatalf("got exit %d, stderr %q; want 0", code, errs)
	}
	if errs != keyringNoteLine {
		t.Errorf("stderr:\ngot  %q\nwant %q", errs, keyringNoteLine)
	}
	file := filepath.Join(state, "secrets", secrets.AuditKey)
	if !strings.Contains(out, "A copy is in "+file+" (mode 0600) for relay audit verify on this host") {
		t.Errorf("stdout %q does not say where K0 went", out)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("K0 file: %v, %v; want a 0600 file", fi, err)
	}
	k0 := regexp.MustCompile(`(?m)^    ([0-9a-f]{64})$`).FindStringSubmatch(out)
	b, _ := os.ReadFile(file)
	if k0 == nil || !bytes.Contains(b, mustHex(t, k0[1])) {
		t.Error("the file does not hold the K0 that was shown")
	}
	// And verify on the host finds it there.
	code, out, errs = cliRun(t, nil, "", "audit", "verify", "--config", cfg)
	if code != ExitOK || !strings.HasPrefix(out, "ok: 1 records") {
		t.Errorf("verify: got exit %d, %q, %q; want the MACs verified with the stored K0", code, out, errs)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := parseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyringOffIsSilent: with secrets.keyring: false nothing is said
// about the keyring, and secrets go to files directly.
func TestKeyringOffIsSilent(t *testing.T) {
	noKeyring(t)
	cfg, state := writeConfig(t, "secrets: {keyring: false}\n")
	tok := randomToken(t)
	for _, args := range [][]string{
		{"token", "set", "--config", cfg},
		{"token", "status", "--config", cfg},
		{"audit", "init", "--config", cfg},
		{"totp", "status", "--config", cfg},
	} {
		_, _, errs := cliRun(t, nil, tok, args...)
		if strings.Contains(errs, "keyring") {
			t.Errorf("relay %s: stderr %q mentions the keyring", strings.Join(args, " "), errs)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "secrets", secrets.BotToken)); err != nil {
		t.Errorf("token file: %v", err)
	}
}

// TestKeyringNoteOnce: a command that looks up several secrets on a host
// without a keyring says why once, in one short line, and talks about the
// token only where the token is concerned.
func TestKeyringNoteOnce(t *testing.T) {
	noKeyring(t)
	cfg, _ := writeConfig(t, "")
	code, _, errs := cliRun(t, nil, "", "totp", "status", "--config", cfg)
	want := keyringNoteLine + "relay: error: no totp secret\nrelay: hint: run 'relay totp enroll'\n"
	if code != ExitNotSetup || errs != want {
		t.Errorf("totp status: got exit %d, stderr:\n%q\nwant exit %d and\n%q", code, errs, ExitNotSetup, want)
	}
	for _, l := range strings.Split(strings.TrimSpace(errs), "\n") {
		if len(l) > 120 {
			t.Errorf("line of %d characters: %q", len(l), l)
		}
	}

	// doctor looks up three secrets: one keyring line.
	code, out, _ := cliRun(t, nil, "", "doctor", "--offline", "--config", cfg)
	if n := strings.Count(out, "  keyring  "); n != 1 || !strings.Contains(out, "warn  keyring    none here (no D-Bus session bus)") {
		t.Errorf("doctor: %d keyring lines, want one warn line:\n%s", n, out)
	}
	if strings.Contains(out, "DBUS_SESSION_BUS_ADDRESS") || strings.Contains(out, "relay token set --file") {
		t.Errorf("doctor repeats the keyring's hint:\n%s", out)
	}
	if code != ExitFailure {
		t.Errorf("doctor: got exit %d, want 1 (no token, no totp)", code)
	}
}

// lockedKeyring answers like a Secret Service whose collection is locked.
type lockedKeyring struct{ sets int }

func (l *lockedKeyring) Get(string, string) (string, error) {
	return "", dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked"}
}
func (l *lockedKeyring) Set(string, string, string) error {
	l.sets++
	return dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked"}
}
func (l *lockedKeyring) Delete(string, string) error {
	return dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked"}
}

// TestKeeperRefusesALockedKeyring: a keyring that is there but locked may
// hold a copy; storing a second one in a file would leave two that
// disagree. The keeper fails with the unlock hint instead.
func TestKeeperRefusesALockedKeyring(t *testing.T) {
	dir := t.TempDir()
	var errb bytes.Buffer
	env := &Env{Stderr: &errb, Getenv: func(string) string { return "" }}
	ring := &lockedKeyring{}
	store := secrets.New(secrets.Options{Keyring: ring, Dir: dir, Getenv: env.Getenv})
	k := newKeeper(env, store, false)
	err := k.Set(secrets.TOTPSecret, []byte("JBSWY3DPEHPK3PXP"))
	var h *hinted
	if err == nil || !strings.Contains(err.Error(), "keyring collection is locked") {
		t.Fatalf("got %v, want the locked keyring", err)
	}
	if !errors.As(err, &h) || !strings.Contains(h.hint, "unlock") || !strings.Contains(h.hint, "--file") {
		t.Errorf("got hint %+v, want how to unlock, or --file", h)
	}
	if _, err := os.Stat(filepath.Join(dir, secrets.TOTPSecret)); !os.IsNotExist(err) {
		t.Errorf("a file copy was written beside a locked keyring: %v", err)
	}
	// With --file the keyring is not asked at all.
	k = newKeeper(env, store, true)
	if err := k.Set(secrets.TOTPSecret, []byte("JBSWY3DPEHPK3PXP")); err != nil || ring.sets != 1 {
		t.Errorf("--file: got %v after %d keyring sets, want the file written without asking", err, ring.sets)
	}
	if want := filepath.Join(dir, secrets.TOTPSecret) + " (mode 0600)"; k.where(secrets.TOTPSecret) != want {
		t.Errorf("where: got %q, want %q", k.where(secrets.TOTPSecret), want)
	}
}
