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
	"sync"
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

// polkitd is a real polkitd with only the given rules, on a private system
// bus, with a passwd that has the users relay and mallory.
type polkitd struct {
	t   *testing.T
	bus string // DBUS_SYSTEM_BUS_ADDRESS
	dir string
	log *lockedLog // polkitd's output
}

const (
	relayUID   = 64200
	malloryUID = 64201
)

func needPolkit(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the polkitd test needs root: it binds its own /etc over polkitd's in a private mount namespace")
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
	// polkitd's /etc is a copy with the test's rules and passwd, bound
	// over the whole directory: a bind over /etc/passwd alone would vanish
	// the moment anything on the host rewrote it (useradd renames a new
	// file over it, and the kernel detaches mounts on a replaced dentry).
	etc := filepath.Join(dir, "etc")
	if out, err := osexec.Command("cp", "-a", "/etc/.", etc+"/").CombinedOutput(); err != nil {
		t.Fatalf("copy /etc: %v\n%s", err, out)
	}
	must(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	rulesDir := filepath.Join(etc, "polkit-1/rules.d")
	os.RemoveAll(rulesDir)
	must(t, os.MkdirAll(rulesDir, 0o755))
	for name, body := range rules {
		must(t, os.WriteFile(filepath.Join(rulesDir, name), []byte(body), 0o644))
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
	must(t, os.WriteFile(filepath.Join(etc, "passwd"), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
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
	addr, _ := waitLine(t, ctx, bus, "unix:")
	p := &polkitd{t: t, bus: strings.TrimSpace(addr), dir: dir}

	script := strings.Join([]string{
		"mount --bind " + etc + " /etc",
		"mount --bind " + filepath.Join(dir, "empty") + " /usr/share/polkit-1/rules.d",
		"exec /usr/lib/polkit-1/polkitd",
	}, " && ")
	pk := osexec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	pk.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+p.bus)
	_, p.log = waitLine(t, ctx, pk, "Acquired the name org.freedesktop.PolicyKit1")
	return p
}

// waitLine starts cmd and returns the first line of its output (stdout and
// stderr) that contains want, and all it printed so far and later; the
// process runs on until the test ends.
func waitLine(t *testing.T, ctx context.Context, cmd *osexec.Cmd, want string) (string, *lockedLog) {
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
	log := &lockedLog{}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sent := false
		for sc.Scan() {
			log.add(sc.Text())
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
			t.Fatalf("%s exited without printing %q:\n%s", cmd.Path, want, log)
		}
		return l, log
	case <-ctx.Done():
		t.Fatalf("%s never printed %q:\n%s", cmd.Path, want, log)
	}
	return "", log
}

// lockedLog collects a process's lines while it runs.
type lockedLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lockedLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) < 1000 {
		l.lines = append(l.lines, s)
	}
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// subject is a process running as uid, for pkcheck to ask about.
type subject struct {
	pid int
	uid int
}

// subject starts a process running as uid and returns it once it runs as
// that uid.
func (p *polkitd) subject(uid int) *subject {
	p.t.Helper()
	cmd := osexec.Command("setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups",
		"/bin/sh", "-c", "echo running; exec cat")
	stdin, err := cmd.StdinPipe()
	must(p.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitLine(p.t, ctx, cmd, "running")
	s := &subject{pid: cmd.Process.Pid, uid: uid}
	p.t.Cleanup(func() { stdin.Close() })
	return s
}

// alive fails the test unless the subject still runs as its uid: an
// answer about a dead process (or a pid reused) would prove nothing.
func (s *subject) alive(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		t.Fatalf("subject %d is gone: %v", s.pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Uid:" {
			if f[1] != fmt.Sprint(s.uid) {
				t.Fatalf("subject %d runs as uid %s now, want %d", s.pid, f[1], s.uid)
			}
			return
		}
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "State:" && f[1] == "Z" {
			t.Fatalf("subject %d has exited", s.pid)
		}
	}
}

// check asks polkitd whether pid may manage unit with verb, as systemd
// asks it, and returns pkcheck's exit status: 0 authorized, 1 not
// authorized, 2 only with authentication.
func (p *polkitd) check(who *subject, unit, verb string) (int, string) {
	p.t.Helper()
	who.alive(p.t)
	defer who.alive(p.t)
	cmd := osexec.Command("pkcheck", "--action-id", "org.freedesktop.systemd1.manage-units",
		"--process", fmt.Sprint(who.pid), "--detail", "unit", unit, "--detail", "verb", verb)
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
			who  *subject
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
				t.Errorf("uid %d unit %q verb %s: got pkcheck exit %d, want %d\n%s\npolkitd:\n%s", c.who.uid, c.unit, c.verb, got, c.want, out, p.log)
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
