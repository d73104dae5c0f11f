package deploytest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const polkitTemplate = "../../deploy/polkit/50-relay.rules.in"

// TestPolkitTemplateShape: the template grants by exact name only, through
// the list install.sh fills in; no pattern can slip back in.
func TestPolkitTemplateShape(t *testing.T) {
	b, err := os.ReadFile(polkitTemplate)
	if err != nil {
		t.Fatal(err)
	}
	src := stripComments(string(b))
	for _, want := range []string{
		`action.id !== "org.freedesktop.systemd1.manage-units"`,
		`subject.user !== "relay"`,
		`var units = [@UNITS@];`,
		`action.lookup("verb") === "start"`,
		`units.indexOf(action.lookup("unit")) >= 0`,
		`return polkit.Result.NO;`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("rule lacks %s", want)
		}
	}
	for _, bad := range []string{".test(", "match(", "RegExp", "indexOf(\"relay-action", "Result.AUTH_", `"restart"`, `"stop"`, `"reload"`} {
		if strings.Contains(src, bad) {
			t.Errorf("rule contains %s: it must grant start of exact names only", bad)
		}
	}
}

// stripComments drops // comments so that explanations may name verbs.
func stripComments(src string) string {
	var b strings.Builder
	for _, l := range strings.Split(src, "\n") {
		if i := strings.Index(l, "//"); i >= 0 {
			l = l[:i]
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// oldRule is the rule before exact names: any relay-action-*.service. It
// is kept here to show that the real-polkitd test catches the transient
// unit attack it allowed.
const oldRule = `polkit.addRule(function(action, subject) {
    if (action.id !== "org.freedesktop.systemd1.manage-units" ||
        subject.user !== "relay") {
        return polkit.Result.NOT_HANDLED;
    }
    var unit = action.lookup("unit");
    var verb = action.lookup("verb");
    if (verb === "start" &&
        typeof unit === "string" &&
        /^relay-action-[a-z0-9]+(-[a-z0-9]+)*\.service$/.test(unit)) {
        return polkit.Result.YES;
    }
    return polkit.Result.NO;
});
`

// polkitd is a real polkitd with a given rules directory, on a private
// system bus, with a passwd that has the users relay and mallory.
type polkitd struct {
	t   *testing.T
	bus string // DBUS_SYSTEM_BUS_ADDRESS
	dir string
}

const (
	relayUID   = 64200
	malloryUID = 64201
)

func needPolkit(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the polkitd test needs root: it bind-mounts the rules directory and passwd in a private mount namespace")
	}
	for _, tool := range []string{"dbus-daemon", "pkcheck", "unshare", "setpriv", "/usr/lib/polkit-1/polkitd"} {
		if _, err := osexec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing, and CI must run this test: install dbus-daemon and polkitd", tool)
			}
			t.Skipf("%s is not installed (Debian: dbus-daemon, polkitd)", tool)
		}
	}
}

// startPolkitd starts dbus-daemon and polkitd, each ready when it says so
// (no sleeps), and stops both when the test ends.
func startPolkitd(t *testing.T, rules map[string]string) *polkitd {
	t.Helper()
	// polkitd drops to its own user, which must reach the bus socket
	// and the rules: a 0755 directory, not the test's 0700 one.
	dir, err := os.MkdirTemp("", "relay-polkit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	for _, d := range []string{"rules", "empty"} {
		must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	for name, body := range rules {
		must(t, os.WriteFile(filepath.Join(dir, "rules", name), []byte(body), 0o644))
	}
	pw, err := os.ReadFile("/etc/passwd")
	must(t, err)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(pw)), "\n") {
		if !strings.HasPrefix(l, "relay:") && !strings.HasPrefix(l, "mallory:") {
			lines = append(lines, l)
		}
	}
	lines = append(lines,
		fmt.Sprintf("relay:x:%d:%d::/nonexistent:/usr/sbin/nologin", relayUID, relayUID),
		fmt.Sprintf("mallory:x:%d:%d::/nonexistent:/usr/sbin/nologin", malloryUID, malloryUID))
	must(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	sock := filepath.Join(dir, "system_bus_socket")
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=` + sock + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`
	must(t, os.WriteFile(filepath.Join(dir, "bus.conf"), []byte(conf), 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	bus := osexec.Command("dbus-daemon", "--config-file="+filepath.Join(dir, "bus.conf"), "--nofork", "--print-address=1")
	addr := waitLine(t, ctx, bus, "unix:")
	p := &polkitd{t: t, bus: strings.TrimSpace(addr), dir: dir}

	script := strings.Join([]string{
		"mount --bind " + filepath.Join(dir, "rules") + " /etc/polkit-1/rules.d",
		"mount --bind " + filepath.Join(dir, "empty") + " /usr/share/polkit-1/rules.d",
		"mount --bind " + filepath.Join(dir, "passwd") + " /etc/passwd",
		"exec /usr/lib/polkit-1/polkitd",
	}, " && ")
	if _, err := os.Stat("/etc/polkit-1/rules.d"); err != nil {
		t.Skipf("no /etc/polkit-1/rules.d to bind the test's rules onto: %v", err)
	}
	pk := osexec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	pk.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+p.bus)
	waitLine(t, ctx, pk, "Acquired the name org.freedesktop.PolicyKit1")
	return p
}

// waitLine starts cmd and returns the first line of its output (stdout and
// stderr) that contains want; the process runs on until the test ends.
func waitLine(t *testing.T, ctx context.Context, cmd *osexec.Cmd, want string) string {
	t.Helper()
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		w.Close()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sent := false
		for sc.Scan() {
			if !sent && strings.Contains(sc.Text(), want) {
				found <- sc.Text()
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case l, ok := <-found:
		if !ok {
			t.Fatalf("%s exited without printing %q", cmd.Path, want)
		}
		return l
	case <-ctx.Done():
		t.Fatalf("%s never printed %q", cmd.Path, want)
	}
	return ""
}

// subject starts a process running as uid, for pkcheck to ask about, and
// returns its pid once it runs as that uid.
func (p *polkitd) subject(uid int) int {
	p.t.Helper()
	cmd := osexec.Command("setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups",
		"/bin/sh", "-c", "echo running; exec cat")
	stdin, err := cmd.StdinPipe()
	must(p.t, err)
	p.t.Cleanup(func() { stdin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitLine(p.t, ctx, cmd, "running")
	return cmd.Process.Pid
}

// check asks polkitd whether pid may manage unit with verb, as systemd
// asks it, and returns pkcheck's exit status: 0 authorized, 1 not
// authorized, 2 only with authentication.
func (p *polkitd) check(pid int, unit, verb string) (int, string) {
	p.t.Helper()
	cmd := osexec.Command("pkcheck", "--action-id", "org.freedesktop.systemd1.manage-units",
		"--process", fmt.Sprint(pid), "--detail", "unit", unit, "--detail", "verb", verb)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+p.bus)
	out, err := cmd.CombinedOutput()
	var ee *osexec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	p.t.Fatalf("pkcheck: %v\n%s", err, out)
	return -1, ""
}

// TestPolkitRuleInRealPolkitd asks the real polkitd, with its JavaScript
// engine and the rule install.sh writes for --with-action reboot and
// restart-nginx, what systemd would ask: the relay user may start exactly
// those two units; not relay-action-anything.service (what systemd >= 257
// asks for a transient unit of that name, which would run as root), not
// another verb, and no other user. The rule before exact names allowed the
// transient unit, and this test says so.
func TestPolkitRuleInRealPolkitd(t *testing.T) {
	needPolkit(t)
	in := newInstall(t)
	in.mustRun("--with-action", "reboot", "--with-action", "restart-nginx", in.bin)
	rule, err := os.ReadFile(filepath.Join(in.root, "etc/polkit-1/rules.d/50-relay.rules"))
	must(t, err)

	t.Run("installed rule", func(t *testing.T) {
		p := startPolkitd(t, map[string]string{"50-relay.rules": string(rule)})
		relay, mallory := p.subject(relayUID), p.subject(malloryUID)
		for _, c := range []struct {
			who  int
			unit string
			verb string
			want int
		}{
			{relay, "relay-action-reboot.service", "start", 0},
			{relay, "relay-action-restart-nginx.service", "start", 0},
			// The transient-unit attack: a name no unit file has.
			{relay, "relay-action-anything.service", "start", 1},
			{relay, "relay-action-reboot.service", "restart", 1},
			{relay, "relay-action-reboot.service", "stop", 1},
			{relay, "relay-action-reboot.service", "reload", 1},
			{relay, "relay.service", "start", 1},
			{relay, "nginx.service", "restart", 1},
			{relay, "relay-action-reboot.service\n", "start", 1},
			{relay, "relay-action-reboot.servic", "start", 1},
			// Not the rule's to grant: the defaults (auth_admin) decide.
			{mallory, "relay-action-reboot.service", "start", 2},
		} {
			got, out := p.check(c.who, c.unit, c.verb)
			if got != c.want {
				t.Errorf("pid %d unit %q verb %s: got pkcheck exit %d, want %d\n%s", c.who, c.unit, c.verb, got, c.want, out)
			}
		}
	})
	t.Run("the pattern rule it replaces", func(t *testing.T) {
		p := startPolkitd(t, map[string]string{"50-relay.rules": oldRule})
		if got, _ := p.check(p.subject(relayUID), "relay-action-anything.service", "start"); got != 0 {
			t.Errorf("got exit %d for the old rule and a transient unit name, want 0 (allowed): the test cannot see the attack", got)
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
