package deploytest

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const hubPub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMpLJNHU+932ime+EZf037tALTJzRfY498g9E0/pESuk relay-hub@hub.lan"

func (in *install) hubKey(t *testing.T, line string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hub.pub")
	if err := os.WriteFile(p, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInstallMember: --member writes exactly the documented key line, the
// sshd drop-in and the member's config, and a second run changes nothing.
func TestInstallMember(t *testing.T) {
	in := newInstall(t)
	key := in.hubKey(t, hubPub)
	in.mustRun("--member", "--hub-key", key, "--hub-address", "192.0.2.10", in.bin)
	got, err := os.ReadFile(filepath.Join(in.root, "etc/relay/authorized_keys"))
	if err != nil {
		t.Fatal(err)
	}
	want := `restrict,command="/usr/local/bin/relay serve-ssh --config /etc/relay/relay.yaml",from="192.0.2.10" ` + hubPub + "\n"
	if string(got) != want {
		t.Errorf("authorized_keys:\ngot  %q\nwant %q", got, want)
	}
	if m := in.mode("/etc/relay/authorized_keys"); m != 0o640 {
		t.Errorf("authorized_keys mode %#o, want 0640 (root:relay: the relay account reads it, cannot change it)", m)
	}
	dropin, _ := os.ReadFile(filepath.Join(in.root, "etc/ssh/sshd_config.d/relay-member.conf"))
	shipped, _ := os.ReadFile("../../deploy/ssh/relay-member.conf")
	if len(dropin) == 0 || string(dropin) != string(shipped) {
		t.Error("the sshd drop-in is not deploy/ssh/relay-member.conf")
	}
	cfg, _ := os.ReadFile(filepath.Join(in.root, "etc/relay/relay.yaml"))
	example, _ := os.ReadFile("../../policy/examples/member.yaml")
	if string(cfg) != string(example) {
		t.Error("the member's config is not policy/examples/member.yaml")
	}
	if out := in.mustRun("--member", "--hub-key", key, "--hub-address", "192.0.2.10", in.bin); !strings.Contains(out, "nothing to do") {
		t.Errorf("second run: %s", out)
	}
}

func TestInstallMemberRefuses(t *testing.T) {
	in := newInstall(t)
	for name, c := range map[string]struct {
		key, from string
	}{
		"a private key":           {"-----BEGIN OPENSSH PRIVATE KEY-----", "192.0.2.10"},
		"two keys":                {hubPub + "\n" + hubPub, "192.0.2.10"},
		"a key with options":      {`command="/bin/sh" ` + hubPub, "192.0.2.10"},
		"a from= that breaks out": {hubPub, `192.0.2.10",command="/bin/sh`},
		"an empty address":        {hubPub, ""},
	} {
		key := in.hubKey(t, c.key)
		out, err := in.run("", "--member", "--hub-key", key, "--hub-address", c.from, in.bin)
		if err == nil {
			t.Errorf("%s: accepted:\n%s", name, out)
		}
	}
	if _, err := os.Stat(filepath.Join(in.root, "etc/relay/authorized_keys")); err == nil {
		t.Error("a refused run wrote authorized_keys")
	}
	if out, err := in.run("", "--hub-key", "x", in.bin); err == nil || !strings.Contains(out, "go with --member") {
		t.Errorf("--hub-key without --member: %v %s", err, out)
	}
}

// TestMemberDropInWithRealSshd: the real sshd accepts the drop-in, and
// applies it to the relay account only.
func TestMemberDropInWithRealSshd(t *testing.T) {
	sshd, err := osexec.LookPath("sshd")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
			t.Skip("no sshd (apt-get install openssh-server)")
		}
		sshd = "/usr/sbin/sshd"
	}
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "hostkey")
	if out, err := osexec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Skipf("ssh-keygen: %v %s", err, out)
	}
	dropin, _ := filepath.Abs("../../deploy/ssh/relay-member.conf")
	// As Debian's sshd_config does: the drop-ins first, then the rest.
	main := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(main, []byte("Include "+dropin+"\nHostKey "+hostKey+"\nX11Forwarding yes\nPermitTTY yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	effective := func(user string) map[string]string {
		out, err := osexec.Command(sshd, "-T", "-f", main, "-C", "user="+user+",host=hub,addr=192.0.2.10").CombinedOutput()
		if err != nil {
			t.Skipf("sshd -T: %v %s", err, out)
		}
		m := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok {
				m[k] = v
			}
		}
		return m
	}
	relay := effective("relay")
	for k, want := range map[string]string{
		"authorizedkeysfile": "/etc/relay/authorized_keys", "exposeauthinfo": "yes", "disableforwarding": "yes",
		"permittty": "no", "x11forwarding": "no", "allowtcpforwarding": "no", "authenticationmethods": "publickey",
		"passwordauthentication": "no", "permituserrc": "no",
	} {
		if relay[k] != want {
			t.Errorf("for relay, sshd -T says %s %q, want %q", k, relay[k], want)
		}
	}
	if other := effective("alice"); other["permittty"] != "yes" || other["authorizedkeysfile"] == "/etc/relay/authorized_keys" {
		t.Errorf("the drop-in reaches other accounts: %v", other["authorizedkeysfile"])
	}
}

const witnessPub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP8X9y0mYp3nHrZ6xSw8c8hKJrVQmJ9gq3v0j9kq1Xb2 witness@vault"

// TestInstallWitness: --witness-key writes the witness's own line, with
// serve-ssh --witness as its forced command, beside the hub's (or alone
// on a host that is not a member), and the same sshd drop-in.
func TestInstallWitness(t *testing.T) {
	in := newInstall(t)
	key := in.hubKey(t, hubPub)
	in.mustRun("--member", "--hub-key", key, "--hub-address", "192.0.2.10", "--witness-key", witnessPub, "--witness-address", "198.51.100.7", in.bin)
	got, err := os.ReadFile(filepath.Join(in.root, "etc/relay/authorized_keys"))
	if err != nil {
		t.Fatal(err)
	}
	want := `restrict,command="/usr/local/bin/relay serve-ssh --config /etc/relay/relay.yaml",from="192.0.2.10" ` + hubPub + "\n" +
		`restrict,command="/usr/local/bin/relay serve-ssh --witness --config /etc/relay/relay.yaml",from="198.51.100.7" ` + witnessPub + "\n"
	if string(got) != want {
		t.Errorf("authorized_keys:\ngot  %q\nwant %q", got, want)
	}
	if out := in.mustRun("--member", "--hub-key", key, "--hub-address", "192.0.2.10", "--witness-key", witnessPub, "--witness-address", "198.51.100.7", in.bin); !strings.Contains(out, "nothing to do") {
		t.Errorf("second run: %s", out)
	}

	alone := newInstall(t)
	alone.mustRun("--witness-key", witnessPub, "--witness-address", "198.51.100.7", alone.bin)
	got, _ = os.ReadFile(filepath.Join(alone.root, "etc/relay/authorized_keys"))
	if want := `restrict,command="/usr/local/bin/relay serve-ssh --witness --config /etc/relay/relay.yaml",from="198.51.100.7" ` + witnessPub + "\n"; string(got) != want {
		t.Errorf("a witnessed host that is no member: got %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(alone.root, "etc/ssh/sshd_config.d/relay-member.conf")); err != nil {
		t.Errorf("no sshd drop-in for the witness's key: %v", err)
	}
	cfg, _ := os.ReadFile(filepath.Join(alone.root, "etc/relay/relay.yaml"))
	example, _ := os.ReadFile("../../policy/examples/member.yaml")
	if string(cfg) == string(example) {
		t.Error("a witnessed host that is no member got the member's config")
	}
}

func TestInstallWitnessRefuses(t *testing.T) {
	in := newInstall(t)
	for name, c := range map[string]struct{ key, from string }{
		"a private key":           {"-----BEGIN OPENSSH PRIVATE KEY-----", "192.0.2.10"},
		"two keys":                {witnessPub + "\n" + witnessPub, "192.0.2.10"},
		"a key with options":      {`command="/bin/sh" ` + witnessPub, "192.0.2.10"},
		"a from= that breaks out": {witnessPub, `192.0.2.10",command="/bin/sh`},
		"no address":              {witnessPub, ""},
	} {
		out, err := in.run("", "--witness-key", c.key, "--witness-address", c.from, in.bin)
		if err == nil {
			t.Errorf("%s: accepted:\n%s", name, out)
		}
	}
	if _, err := os.Stat(filepath.Join(in.root, "etc/relay/authorized_keys")); err == nil {
		t.Error("a refused run wrote authorized_keys")
	}
}
