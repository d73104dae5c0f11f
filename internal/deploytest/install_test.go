package deploytest

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/relaychat/relay/policy"
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

// defaultCommands are the built-in read-only policy's commands, the only
// ones a default install allows.
var defaultCommands = []string{"uptime", "disk", "memory", "load", "failed"}

func TestInstallLayout(t *testing.T) {
	in := newInstall(t)
	in.mustRun("--owner-id", "4242", in.bin)
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{"/usr/local/bin/relay", 0o755},
		{"/etc/systemd/system/relay.service", 0o644},
		{"/etc/relay", 0o750},
		{"/etc/relay/relay.yaml", 0o640},
		{"/var/lib/relay", 0o700},
		{"/var/log/relay", 0o700},
		{"/usr/local/share/man/man1/relay.1", 0o644},
		{"/usr/local/share/man/man5/relay.yaml.5", 0o644},
		{"/usr/local/share/bash-completion/completions/relay", 0o644},
		{"/usr/local/share/zsh/site-functions/_relay", 0o644},
		{"/usr/local/share/fish/vendor_completions.d/relay.fish", 0o644},
		{"/usr/share/doc/relay/SECURITY.md", 0o644},
		{"/usr/share/doc/relay/CHANGELOG.md", 0o644},
		{"/usr/share/doc/relay/drop-ins/journal.conf", 0o644},
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
	// Nothing privileged unless asked for: no action unit, no polkit
	// rule, no AppArmor profile on a host without AppArmor.
	for _, p := range []string{"etc/systemd/system/relay-action-reboot.service", "etc/systemd/system/relay-action-restart-nginx.service",
		"etc/polkit-1/rules.d/50-relay.rules", "etc/apparmor.d/relay", "etc/systemd/system/relay.service.d"} {
		if _, err := os.Lstat(filepath.Join(in.root, p)); err == nil {
			t.Errorf("a default install created %s", p)
		}
	}
	cfg := in.config()
	if cfg.Auth.OwnerID != 4242 || cfg.CommandUser != "relay-cmd" || !cfg.Secrets.NoKeyring ||
		cfg.StateDir != "/var/lib/relay" || cfg.Audit.Dir != "/var/log/relay" {
		t.Errorf("got owner %d, command_user %q, no keyring %v, state %s, audit %s; want 4242, relay-cmd, true and the unit's directories",
			cfg.Auth.OwnerID, cfg.CommandUser, cfg.Secrets.NoKeyring, cfg.StateDir, cfg.Audit.Dir)
	}
	if got := commandNames(cfg); !slices.Equal(got, defaultCommands) {
		t.Errorf("got commands %v, want the built-in read-only policy's %v", got, defaultCommands)
	}
}

// config loads the installed config with the real loader.
func (in *install) config() *policy.Config {
	in.t.Helper()
	cfg, err := policy.Load(filepath.Join(in.root, "etc/relay/relay.yaml"))
	if err != nil {
		in.t.Fatalf("the installed config does not load:\n%v", err)
	}
	return cfg
}

func commandNames(cfg *policy.Config) []string {
	var n []string
	for _, c := range cfg.Commands {
		n = append(n, c.Name)
	}
	return n
}

// rule returns the unit names the installed polkit rule grants, or nil
// when there is no rule.
func (in *install) rule() []string {
	in.t.Helper()
	b, err := os.ReadFile(filepath.Join(in.root, "etc/polkit-1/rules.d/50-relay.rules"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		in.t.Fatal(err)
	}
	m := regexp.MustCompile(`var units = \[(.*)\];`).FindSubmatch(b)
	if m == nil {
		in.t.Fatalf("installed rule has no unit list:\n%s", b)
	}
	var units []string
	for _, u := range strings.Split(string(m[1]), ", ") {
		uq, err := strconv.Unquote(u)
		if err != nil {
			in.t.Fatalf("unit list entry %s: %v", u, err)
		}
		units = append(units, uq)
	}
	return units
}

// TestInstallWithActions: --with-action installs exactly the units asked
// for, adds their commands to a new config, and writes a rule that names
// them; an action unit the owner added joins the rule at the next run, a
// deleted one leaves it, and with none left the rule goes.
func TestInstallWithActions(t *testing.T) {
	in := newInstall(t)
	in.mustRun("--owner-id", "4242", "--with-action", "reboot", in.bin)
	if m := in.mode("/etc/systemd/system/relay-action-reboot.service"); m != 0o644 {
		t.Errorf("got reboot unit mode %#o, want 0644", m)
	}
	if _, err := os.Stat(filepath.Join(in.root, "etc/systemd/system/relay-action-restart-nginx.service")); err == nil {
		t.Error("--with-action reboot also installed restart-nginx")
	}
	if got := in.rule(); !slices.Equal(got, []string{"relay-action-reboot.service"}) {
		t.Errorf("got rule units %q, want exactly relay-action-reboot.service", got)
	}
	// The config adds /reboot. Its socket is the system bus, which a test
	// host may not run: that, and only that, may fail to load.
	_, err := policy.Load(filepath.Join(in.root, "etc/relay/relay.yaml"))
	if err != nil {
		for _, l := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
			if !strings.Contains(l, "/run/dbus/system_bus_socket") && !strings.Contains(l, "is invalid") {
				t.Errorf("the config with /reboot does not load: %s", l)
			}
		}
	}
	cfgText, _ := os.ReadFile(filepath.Join(in.root, "etc/relay/relay.yaml"))
	if !strings.Contains(string(cfgText), "\n  reboot:\n") || !strings.Contains(string(cfgText), "reauth: true") {
		t.Errorf("the config lacks the /reboot command with reauth:\n%s", cfgText)
	}

	// The owner's own action unit, and one whose name the rule refuses.
	units := filepath.Join(in.root, "etc/systemd/system")
	must(t, os.WriteFile(filepath.Join(units, "relay-action-backup.service"), []byte("[Service]\nExecStart=/bin/true\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(units, "relay-action-Bad@.service"), []byte("[Service]\nExecStart=/bin/true\n"), 0o644))
	out := in.mustRun(in.bin)
	if got := in.rule(); !slices.Equal(got, []string{"relay-action-backup.service", "relay-action-reboot.service"}) {
		t.Errorf("got rule units %q, want backup and reboot", got)
	}
	if !strings.Contains(out, "relay-action-Bad@.service is not named relay-action-NAME.service") {
		t.Errorf("got no warning for a unit the rule leaves out:\n%s", out)
	}
	must(t, os.Remove(filepath.Join(units, "relay-action-Bad@.service")))
	must(t, os.Remove(filepath.Join(units, "relay-action-backup.service")))
	in.mustRun(in.bin)
	if got := in.rule(); !slices.Equal(got, []string{"relay-action-reboot.service"}) {
		t.Errorf("after deleting backup: got rule units %q, want reboot alone", got)
	}
	must(t, os.Remove(filepath.Join(units, "relay-action-reboot.service")))
	out = in.mustRun(in.bin)
	if got := in.rule(); got != nil {
		t.Errorf("with no action unit left: got rule units %q, want no rule", got)
	}
	if !strings.Contains(out, "remove /etc/polkit-1/rules.d/50-relay.rules") {
		t.Errorf("got %q, want the rule's removal said", out)
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
	want := []string{"chmod 0700 /var/log/relay", "install /etc/systemd/system/relay.service (mode 0644)", "skip (DESTDIR): systemctl daemon-reload"}
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
	out, err := in.run("", "--owner-id", "99", "--with-action", "restart-nginx", in.bin)
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(cfg); !bytes.Equal(got, mine) {
		t.Errorf("got config %q after a re-install, want the owner's %q", got, mine)
	}
	if !strings.Contains(out, "set auth.owner_id there yourself") {
		t.Errorf("got %q, want a note that --owner-id was not applied to the existing config", out)
	}
	if !strings.Contains(out, "add the /restart_nginx command from") {
		t.Errorf("got %q, want a note naming the command to add for the action", out)
	}
}

// TestInstallDryRun: --dry-run reports what it would do and touches nothing.
func TestInstallDryRun(t *testing.T) {
	in := newInstall(t)
	out := in.mustRun("--dry-run", "--with-action", "reboot", in.bin)
	for _, want := range []string{"would install /etc/systemd/system/relay.service", "would install /etc/systemd/system/relay-action-reboot.service",
		"would install /etc/polkit-1/rules.d/50-relay.rules", "would skip (DESTDIR): systemctl daemon-reload"} {
		if !strings.Contains(out, want) {
			t.Errorf("got dry-run output without %q:\n%s", want, out)
		}
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
		{"unknown action", "", []string{"--with-action", "shutdown", in.bin}, "--with-action shutdown: no such action (have: reboot restart-nginx)"},
		{"action without a name", "", []string{"--with-action"}, "--with-action needs a value"},
		{"uninstall with a binary", "", []string{"--uninstall", in.bin}, "--uninstall takes no binary"},
		{"uninstall with actions", "", []string{"--uninstall", "--with-action", "reboot"}, "--uninstall takes no"},
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

// TestUninstall: --uninstall removes everything install.sh put into the
// tree and keeps the audit log; a dry run first changes nothing; a second
// uninstall has nothing to do.
func TestUninstall(t *testing.T) {
	in := newInstall(t)
	in.mustRun("--with-action", "reboot", in.bin)
	log := filepath.Join(in.root, "var/log/relay/audit-000001.jsonl")
	must(t, os.WriteFile(log, []byte("{}\n"), 0o600))
	// An owner's own action unit is not install.sh's to remove.
	mine := filepath.Join(in.root, "etc/systemd/system/relay-action-mine.service")
	must(t, os.WriteFile(mine, []byte("[Service]\nExecStart=/bin/true\n"), 0o644))

	before := in.snapshot()
	dry := in.mustRun("--dry-run", "--uninstall")
	if diff := diffSnapshots(before, in.snapshot()); diff != "" {
		t.Errorf("a dry uninstall changed the tree:\n%s", diff)
	}
	for _, want := range []string{"would remove /usr/local/bin/relay", "would remove /etc/relay", "would skip (DESTDIR): systemctl daemon-reload"} {
		if !strings.Contains(dry, want) {
			t.Errorf("dry uninstall lacks %q:\n%s", want, dry)
		}
	}
	out := in.mustRun("--uninstall")
	if !strings.Contains(out, "kept the audit log in /var/log/relay") || !strings.Contains(out, "keep /etc/systemd/system/relay-action-mine.service") {
		t.Errorf("uninstall did not say what it kept:\n%s", out)
	}
	var left []string
	for p, v := range in.snapshot() {
		if !strings.HasPrefix(v, "d") {
			left = append(left, p)
		}
	}
	sort.Strings(left)
	if want := []string{"/etc/systemd/system/relay-action-mine.service", "/var/log/relay/audit-000001.jsonl"}; !slices.Equal(left, want) {
		t.Errorf("got files left after uninstall %q, want only %q", left, want)
	}
	if again := in.mustRun("--uninstall"); !strings.Contains(again, "nothing to do") {
		t.Errorf("got second uninstall %q, want \"nothing to do\"", again)
	}
}

// TestInstallAppArmor: the profile is installed (and would be loaded) only
// where AppArmor is on and mediates user namespaces; the tree's own /sys
// stands in for the kernel's.
func TestInstallAppArmor(t *testing.T) {
	in := newInstall(t)
	in.mustRun(in.bin)
	if _, err := os.Stat(filepath.Join(in.root, "etc/apparmor.d/relay")); err == nil {
		t.Fatal("installed the AppArmor profile on a host without AppArmor")
	}
	enabled := filepath.Join(in.root, "sys/module/apparmor/parameters/enabled")
	must(t, os.MkdirAll(filepath.Dir(enabled), 0o755))
	must(t, os.WriteFile(enabled, []byte("Y\n"), 0o644))
	in.mustRun(in.bin)
	if _, err := os.Stat(filepath.Join(in.root, "etc/apparmor.d/relay")); err == nil {
		t.Fatal("installed the AppArmor profile where AppArmor does not mediate user namespaces")
	}
	userns := filepath.Join(in.root, "sys/kernel/security/apparmor/features/namespaces/userns_create")
	must(t, os.MkdirAll(filepath.Dir(userns), 0o755))
	must(t, os.WriteFile(userns, []byte("yes\n"), 0o644))
	out := in.mustRun(in.bin)
	got, err := os.ReadFile(filepath.Join(in.root, "etc/apparmor.d/relay"))
	want, _ := os.ReadFile("../../deploy/apparmor/relay")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got profile %q (%v), want deploy/apparmor/relay", got, err)
	}
	if !strings.Contains(out, "skip (DESTDIR): apparmor_parser -r /etc/apparmor.d/relay") {
		t.Errorf("got %q, want the profile's load named", out)
	}
	if out := in.mustRun("--uninstall"); !strings.Contains(out, "remove /etc/apparmor.d/relay") {
		t.Errorf("uninstall left the profile:\n%s", out)
	}
}

// TestShellcheck: the installer, the .deb build and its maintainer
// scripts pass shellcheck where it is installed.
func TestShellcheck(t *testing.T) {
	if _, err := osexec.LookPath("shellcheck"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck is missing, and CI must run this test: install shellcheck")
		}
		t.Skip("shellcheck is not installed (Debian: shellcheck)")
	}
	// The deployment's scripts (scripts/test and .ci/run predate this
	// check and are not held to it yet).
	scripts := []string{installScript, "../../scripts/build-deb"}
	debian, _ := filepath.Glob("../../deploy/debian/*")
	for _, f := range debian {
		if b, err := os.ReadFile(f); err == nil && bytes.HasPrefix(b, []byte("#!/bin/sh")) {
			scripts = append(scripts, f)
		}
	}
	out, err := osexec.Command("shellcheck", append([]string{"-x"}, scripts...)...).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck %v: %v\n%s", scripts, err, out)
	}
}
