package deploytest

import (
	"bytes"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const installScript = "../../deploy/install.sh"

type install struct {
	t    *testing.T
	root string // DESTDIR
	bin  string // a stand-in relay binary
}

func newInstall(t *testing.T) *install {
	t.Helper()
	needTool(t, "bash")
	bin := filepath.Join(t.TempDir(), "relay")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho relay stand-in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &install{t: t, root: t.TempDir(), bin: bin}
}

// run runs install.sh into the DESTDIR with args; stdin may be nil.
func (in *install) run(stdin string, args ...string) (string, error) {
	in.t.Helper()
	cmd := osexec.Command("bash", append([]string{installScript}, args...)...)
	cmd.Env = append(os.Environ(), "DESTDIR="+in.root)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (in *install) mustRun(args ...string) string {
	in.t.Helper()
	out, err := in.run("", args...)
	if err != nil {
		in.t.Fatalf("install.sh %v: %v\n%s", args, err, out)
	}
	return out
}

// snapshot maps every path under the DESTDIR to its mode and content.
func (in *install) snapshot() map[string]string {
	in.t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(in.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(in.root, p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		m["/"+rel] = v
		return nil
	})
	if err != nil {
		in.t.Fatal(err)
	}
	return m
}

func (in *install) mode(p string) os.FileMode {
	in.t.Helper()
	fi, err := os.Stat(filepath.Join(in.root, p))
	if err != nil {
		in.t.Fatalf("install.sh did not create %s: %v", p, err)
	}
	return fi.Mode().Perm()
}

func TestInstallLayout(t *testing.T) {
	in := newInstall(t)
	in.mustRun("--owner-id", "4242", in.bin)
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{"/usr/local/bin/relay", 0o755},
		{"/etc/systemd/system/relay.service", 0o644},
		{"/etc/systemd/system/relay-action-restart-nginx.service", 0o644},
		{"/etc/systemd/system/relay-action-reboot.service", 0o644},
		{"/etc/polkit-1/rules.d/50-relay.rules", 0o644},
		{"/etc/relay", 0o750},
		{"/etc/relay/relay.yaml", 0o640},
		{"/var/lib/relay", 0o700},
		{"/var/log/relay", 0o700},
		{"/usr/share/doc/relay/SECURITY.md", 0o644},
		{"/usr/share/doc/relay/drop-ins/namespaces.conf", 0o644},
		{"/usr/share/doc/relay/examples/home-assistant.yaml", 0o644},
	} {
		if got := in.mode(c.path); got != c.mode {
			t.Errorf("%s: got mode %#o, want %#o", c.path, got, c.mode)
		}
	}
	unit, _ := os.ReadFile("../../deploy/systemd/relay.service")
	got, _ := os.ReadFile(filepath.Join(in.root, "etc/systemd/system/relay.service"))
	if !bytes.Equal(got, unit) {
		t.Error("installed relay.service differs from deploy/systemd/relay.service")
	}
	// Drop-ins are documentation until the owner opts in.
	if _, err := os.Stat(filepath.Join(in.root, "etc/systemd/system/relay.service.d")); err == nil {
		t.Error("install.sh enabled drop-ins; each has a price and must be opted into")
	}
	cfg, _ := os.ReadFile(filepath.Join(in.root, "etc/relay/relay.yaml"))
	if !strings.Contains(string(cfg), "\n  owner_id: 4242 ") {
		t.Errorf("got config without owner_id 4242:\n%s", cfg)
	}
}

// TestInstallIsIdempotent: the second run changes nothing and says so.
func TestInstallIsIdempotent(t *testing.T) {
	in := newInstall(t)
	first := in.mustRun(in.bin)
	if !strings.Contains(first, "install /etc/systemd/system/relay.service") {
		t.Errorf("first run did not install the unit:\n%s", first)
	}
	before := in.snapshot()
	second := in.mustRun(in.bin)
	if strings.TrimSpace(second) != "nothing to do" {
		t.Errorf("got second run output %q, want \"nothing to do\"", second)
	}
	if diff := diffSnapshots(before, in.snapshot()); diff != "" {
		t.Errorf("second run changed the tree:\n%s", diff)
	}
}

// TestInstallRepairsDrift: a tampered unit or a loosened mode is put back,
// and only that.
func TestInstallRepairsDrift(t *testing.T) {
	in := newInstall(t)
	in.mustRun(in.bin)
	unit := filepath.Join(in.root, "etc/systemd/system/relay.service")
	if err := os.WriteFile(unit, []byte("[Service]\nExecStart=/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(in.root, "var/log/relay"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := in.mustRun(in.bin)
	want := []string{"chmod 0700 /var/log/relay", "install /etc/systemd/system/relay.service (mode 0644)"}
	got := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got repair output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := in.mode("/var/log/relay"); m != 0o700 {
		t.Errorf("got /var/log/relay mode %#o, want 0700", m)
	}
	if out := in.mustRun(in.bin); strings.TrimSpace(out) != "nothing to do" {
		t.Errorf("got %q after the repair, want \"nothing to do\"", out)
	}
}

// TestInstallKeepsExistingConfig: the owner's config is never overwritten,
// even when --owner-id is given.
func TestInstallKeepsExistingConfig(t *testing.T) {
	in := newInstall(t)
	in.mustRun(in.bin)
	cfg := filepath.Join(in.root, "etc/relay/relay.yaml")
	mine := []byte("auth:\n  owner_id: 7\ncommands: {}\n")
	if err := os.WriteFile(cfg, mine, 0o640); err != nil {
		t.Fatal(err)
	}
	out, err := in.run("", "--owner-id", "99", in.bin)
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(cfg); !bytes.Equal(got, mine) {
		t.Errorf("got config %q after a re-install, want the owner's %q", got, mine)
	}
	if !strings.Contains(out, "left alone") {
		t.Errorf("got %q, want a note that --owner-id was not applied to the existing config", out)
	}
}

// TestInstallDryRun: --dry-run reports what it would do and touches nothing.
func TestInstallDryRun(t *testing.T) {
	in := newInstall(t)
	out := in.mustRun("--dry-run", in.bin)
	if !strings.Contains(out, "would install /etc/systemd/system/relay.service") {
		t.Errorf("got dry-run output without the unit:\n%s", out)
	}
	if ents, _ := os.ReadDir(in.root); len(ents) != 0 {
		t.Errorf("dry run created %d entries in DESTDIR, want none", len(ents))
	}
	in.mustRun(in.bin)
	before := in.snapshot()
	if out := in.mustRun("--dry-run", in.bin); strings.TrimSpace(out) != "nothing to do" {
		t.Errorf("got dry run after install %q, want \"nothing to do\"", out)
	}
	if diff := diffSnapshots(before, in.snapshot()); diff != "" {
		t.Errorf("dry run changed the tree:\n%s", diff)
	}
}

// TestInstallNeverWritesTheToken: in DESTDIR mode the token on stdin is
// consumed and dropped; it never reaches a file or the output.
func TestInstallNeverWritesTheToken(t *testing.T) {
	in := newInstall(t)
	const token = "123456789:AAinstallTOKENmustNEVERappear"
	out, err := in.run(token, "--token-stdin", in.bin)
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	if strings.Contains(out, token) {
		t.Error("install.sh printed the token")
	}
	for p, v := range in.snapshot() {
		if strings.Contains(v, token) {
			t.Errorf("%s holds the token", p)
		}
	}
}

func TestInstallRefuses(t *testing.T) {
	in := newInstall(t)
	for _, c := range []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"no binary", "", nil, "usage: install.sh"},
		{"missing binary", "", []string{"/nonexistent/relay"}, "is not an executable file"},
		{"bad owner id", "", []string{"--owner-id", "@me", in.bin}, "not a numeric Telegram user ID"},
		{"owner id with leading zero", "", []string{"--owner-id", "0123", in.bin}, "not a numeric Telegram user ID"},
		{"unknown option", "", []string{"--force", in.bin}, "unknown option --force"},
		{"relative DESTDIR", "DESTDIR=relative/root", []string{in.bin}, "DESTDIR must be an absolute path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := osexec.Command("bash", append([]string{installScript}, c.args...)...)
			cmd.Env = append(os.Environ(), "DESTDIR="+in.root)
			if c.env != "" {
				cmd.Env = append(cmd.Env, c.env)
			}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("got exit 0, want a refusal containing %q\n%s", c.want, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("got %q, want it to contain %q", out, c.want)
			}
		})
	}
	if ents, _ := os.ReadDir(in.root); len(ents) != 0 {
		t.Errorf("refused runs created %d entries in DESTDIR, want none", len(ents))
	}
}

func diffSnapshots(a, b map[string]string) string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			d = append(d, "removed "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}
