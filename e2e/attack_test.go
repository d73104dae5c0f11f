package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests attack the default sandbox profile as a compromised command
// would, through the real relay binary and the chat: a real session bus
// with a real gnome-keyring holding a secret, the relay's own control
// socket, a world-connectable host socket, an abstract socket, children
// that leave the command's session, the kernel's attack surface, and
// /proc. Each runs with the relay as root (commands as the command user)
// and as an unprivileged user (commands keep its uid), and the results
// must be the same.

// fixtureDir is a directory outside /tmp (every command gets its own
// /tmp, and a host path under it cannot be declared) that the command's
// identity can traverse.
func fixtureDir(t *testing.T) string {
	t.Helper()
	parent := "/srv"
	if os.Geteuid() != 0 {
		var err error
		if parent, err = os.UserCacheDir(); err != nil {
			t.Skip("no directory for fixtures outside /tmp")
		}
	}
	must(t, os.MkdirAll(parent, 0o755))
	d, err := os.MkdirTemp(parent, "relay-e2e-")
	must(t, err)
	must(t, os.Chmod(d, 0o755))
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// attackMode is who the relay runs as, and so who its commands run as.
type attackMode struct {
	name     string
	relayUID int // 0: the test's own identity
	cmdUID   int
}

func attackModes(t *testing.T) []attackMode {
	if os.Geteuid() != 0 {
		return []attackMode{{"unprivileged", 0, os.Getuid()}}
	}
	uid, _ := strconv.Atoi(strings.Split(testCommandUser, ":")[0])
	return []attackMode{{"root", 0, uid}, {"unprivileged", 64124, 64124}}
}

// asUser returns the command that runs argv as uid. The test uids have no
// account, and D-Bus refuses a uid without one, so as root argv runs in a
// mount namespace of its own where /etc/passwd lists the uid: nothing on
// the host changes.
func asUser(t *testing.T, uid int, env []string, argv ...string) *osexec.Cmd {
	t.Helper()
	if uid == os.Getuid() {
		cmd := osexec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		return cmd
	}
	passwd := filepath.Join(t.TempDir(), "passwd")
	host, err := os.ReadFile("/etc/passwd")
	must(t, err)
	home := "/"
	for _, e := range env {
		if h, ok := strings.CutPrefix(e, "HOME="); ok {
			home = h
		}
	}
	must(t, os.WriteFile(passwd, append(host, fmt.Sprintf("relay-e2e-%d:x:%d:%d::%s:/usr/sbin/nologin\n", uid, uid, uid, home)...), 0o644))
	script := `mount --bind "$1" /etc/passwd && uid=$2 && shift 2 && exec setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"`
	args := append([]string{"-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", passwd, strconv.Itoa(uid)}, argv...)
	cmd := osexec.Command("/usr/bin/unshare", args...)
	cmd.Env = env
	return cmd
}

// startAs starts argv as uid and stops it when the test ends.
func startAs(t *testing.T, uid int, env []string, stdin string, argv ...string) *osexec.Cmd {
	t.Helper()
	cmd := asUser(t, uid, env, argv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, cmd.Start())
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd
}

// keyring starts a private session bus and a gnome-keyring-daemon on it as
// uid, stores secret in it, and returns the bus socket's path.
func keyring(t *testing.T, dir string, uid int, secret string) string {
	t.Helper()
	for _, p := range []string{"dbus-daemon", "gnome-keyring-daemon", "secret-tool"} {
		if _, err := osexec.LookPath(p); err != nil {
			t.Skipf("%s not installed", p)
		}
	}
	home := filepath.Join(dir, "home")
	must(t, os.MkdirAll(home, 0o700))
	must(t, os.Chown(home, uid, uid))
	sock := filepath.Join(home, "bus")
	bus := "unix:path=" + sock
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin", "DBUS_SESSION_BUS_ADDRESS=" + bus, "XDG_RUNTIME_DIR=" + home}
	startAs(t, uid, env, "", "dbus-daemon", "--session", "--nofork", "--nopidfile", "--address="+bus)
	waitFor(t, "the session bus", func() bool { _, err := os.Stat(sock); return err == nil })
	kr := asUser(t, uid, env, "gnome-keyring-daemon", "--unlock", "--components=secrets")
	kr.Stdin = strings.NewReader("relay-e2e")
	if out, err := kr.CombinedOutput(); err != nil {
		t.Skipf("gnome-keyring-daemon: %v: %s", err, out)
	}
	store := asUser(t, uid, env, "secret-tool", "store", "--label=relay e2e", "service", "relay-e2e", "key", "token")
	store.Stdin = strings.NewReader(secret)
	if out, err := store.CombinedOutput(); err != nil {
		t.Fatalf("secret-tool store: %v: %s", err, out)
	}
	return sock
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// serveUnix listens on a pathname or abstract unix socket anyone may
// connect to and answers every connection with a greeting.
func serveUnix(t *testing.T, name string) {
	t.Helper()
	ln, err := net.Listen("unix", name)
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	if !strings.HasPrefix(name, "@") {
		must(t, os.Chmod(name, 0o777))
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Read the request first: closing on a client still
				// writing it resets the connection.
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 4096)
				for got := ""; !strings.Contains(got, "\r\n\r\n"); {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					got += string(buf[:n])
				}
				fmt.Fprint(c, "HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nreached")
			}()
		}
	}()
}

// livePids lists the host pids whose command line contains marker.
func livePids(marker string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(b), marker) {
			if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
				if f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:])); len(f) > 0 && f[0] == "Z" {
					continue
				}
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestSandboxAttacks(t *testing.T) {
	for _, m := range attackModes(t) {
		t.Run(m.name, func(t *testing.T) { testSandboxAttacks(t, m) })
	}
}

func testSandboxAttacks(t *testing.T, m attackMode) {
	fx := fixtureDir(t)
	const secret = "s3cret-from-the-keyring"
	bus := keyring(t, fx, m.cmdUID, secret)
	hostSock := filepath.Join(fx, "host.sock")
	serveUnix(t, hostSock)
	abstract := fmt.Sprintf("relay-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())
	serveUnix(t, "@"+abstract)
	busEnv := "unix:path=" + bus
	curl := func(args string) string {
		return fmt.Sprintf(`argv: [/usr/bin/curl, -sS, --max-time, "5", %s, "http://relay/"]`, args)
	}
	marker := strconv.FormatInt(1000000+time.Now().UnixNano()%1000000, 10)
	escapees := fmt.Sprintf(`argv: [/bin/sh, -c, "(/usr/bin/setsid /bin/sleep %[1]s &); ( (/bin/sleep %[1]s &) & ); echo started; exec /bin/sleep %[1]s"]`, marker)
	var stateDir string
	r := startRelay(t, options{uid: m.relayUID, before: func(r *relay) { stateDir = filepath.Join(r.dir, "state") }, commands: `
  keyring:
    argv: [/usr/bin/secret-tool, lookup, service, relay-e2e, key, token]
    env: {DBUS_SESSION_BUS_ADDRESS: "` + busEnv + `"}
  keyring_declared:
    argv: [/usr/bin/secret-tool, lookup, service, relay-e2e, key, token]
    env: {DBUS_SESSION_BUS_ADDRESS: "` + busEnv + `"}
    sandbox: {sockets: [` + bus + `]}
  control:
    ` + curl(`--unix-socket, "{sock}"`) + `
    params: [{name: sock, type: string, pattern: "^/[a-zA-Z0-9/._-]*$", max_len: 200}]
  hostsock:
    ` + curl(`--unix-socket, "`+hostSock+`"`) + `
  hostsock_declared:
    ` + curl(`--unix-socket, "`+hostSock+`"`) + `
    sandbox: {sockets: [` + hostSock + `]}
  abstract:
    ` + curl(`--abstract-unix-socket, "`+abstract+`"`) + `
  abstract_net:
    ` + curl(`--abstract-unix-socket, "`+abstract+`"`) + `
    sandbox: {network: true}
  unshare:
    argv: [/usr/bin/unshare, -U, /bin/true]
  procs:
    argv: [/bin/sh, -c, "ls /proc | grep -c '^[0-9]'; cat /proc/{pid}/cmdline"]
    params: [{name: pid, type: int, min: 1, max: 4194304}]
  escape:
    ` + escapees + `
    timeout: 3s
  escape_long:
    ` + escapees + `
    timeout: 10m
`})
	r.login()

	t.Run("keyring unreachable", func(t *testing.T) {
		r.say("/keyring")
		msg := r.expect("/keyring")
		if strings.Contains(msg.Text, secret) || !strings.Contains(msg.Text, "exit 1") {
			t.Errorf("got %q, want no secret and a failed lookup", msg.Text)
		}
	})
	t.Run("keyring reachable only when declared", func(t *testing.T) {
		r.say("/keyring_declared")
		if msg := r.expect("/keyring_declared"); !strings.Contains(msg.Text, secret) {
			t.Errorf("got %q, want the secret: a declared socket is reachable", msg.Text)
		}
	})
	t.Run("the relay's control socket", func(t *testing.T) {
		r.say("/control " + filepath.Join(stateDir, "control.sock"))
		msg := r.expect("/control")
		if strings.Contains(msg.Text, `"ok"`) || !strings.Contains(msg.Text, "exit 7") {
			t.Errorf("got %q, want curl unable to connect (exit 7)", msg.Text)
		}
	})
	for _, c := range []struct{ name, want string }{
		{"hostsock", "exit 7"}, {"abstract", "exit 7"}, {"abstract_net", "exit 7"}, {"hostsock_declared", "reached"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r.say("/" + c.name)
			msg := r.expect("/" + c.name + " ·")
			if !strings.Contains(msg.Text, c.want) || (c.want != "reached" && strings.Contains(msg.Text, "reached")) {
				t.Errorf("got %q, want %q", msg.Text, c.want)
			}
		})
	}
	t.Run("user namespaces refused", func(t *testing.T) {
		r.say("/unshare")
		if msg := r.expect("/unshare"); !strings.Contains(msg.Text, "Operation not permitted") {
			t.Errorf("got %q, want EPERM from unshare", msg.Text)
		}
	})
	t.Run("/proc shows only the job", func(t *testing.T) {
		r.say(fmt.Sprintf("/procs %d", r.cmd.Process.Pid))
		msg := r.expect("/procs")
		if !strings.Contains(msg.Text, "No such file") || strings.Contains(msg.Text, "relay") && strings.Contains(msg.Text, "--config") {
			t.Errorf("got %q, want the relay's pid absent from the job's /proc", msg.Text)
		}
	})
	escapeGone := func(t *testing.T, how string) {
		t.Helper()
		waitFor(t, "every escapee dead after "+how, func() bool { return len(livePids(marker)) == 0 })
	}
	started := func(t *testing.T) {
		t.Helper()
		waitFor(t, "the escapees to start", func() bool { return len(livePids(marker)) >= 3 })
	}
	t.Run("escapees die at the timeout", func(t *testing.T) {
		r.say("/escape")
		started(t)
		r.expect("timed out")
		escapeGone(t, "the timeout")
	})
	t.Run("escapees die at /kill", func(t *testing.T) {
		r.say("/escape_long")
		started(t)
		r.say("/kill j" + strconv.Itoa(jobNumber(t, r)))
		r.expect("killing job")
		escapeGone(t, "/kill")
		r.expect("/escape_long · killed") // the job has ended, and its slot is free
	})
	t.Run("escapees die at /lock", func(t *testing.T) {
		r.say("/escape_long")
		started(t)
		r.say("/lock")
		r.expect("locked")
		escapeGone(t, "/lock")
	})
}

// jobNumber finds the running job's number in /ps.
func jobNumber(t *testing.T, r *relay) int {
	t.Helper()
	r.say("/ps")
	msg := r.expect("escape_long")
	for _, f := range strings.Fields(msg.Text) {
		if n, err := strconv.Atoi(strings.TrimPrefix(f, "j")); err == nil && strings.HasPrefix(f, "j") {
			return n
		}
	}
	t.Fatalf("no job in %q", msg.Text)
	return 0
}

// TestEscapeesDieWithTheRelay: a relay stopped by SIGTERM kills its jobs
// after the grace, and one killed by SIGKILL takes them with it, the
// children they started outside their session included.
func TestEscapeesDieWithTheRelay(t *testing.T) {
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			marker := strconv.FormatInt(int64(2000000+i*100000)+time.Now().UnixNano()%100000, 10)
			r := startRelay(t, options{args: []string{"--shutdown-grace", "1s"}, commands: fmt.Sprintf(`
  escape:
    argv: [/bin/sh, -c, "(/usr/bin/setsid /bin/sleep %[1]s &); ( (/bin/sleep %[1]s &) & ); echo started; exec /bin/sleep %[1]s"]
    timeout: 10m
`, marker)})
			r.login()
			r.say("/escape")
			waitFor(t, "the escapees to start", func() bool { return len(livePids(marker)) >= 3 })
			code := r.stop(sig)
			if sig == syscall.SIGTERM && code != 0 {
				t.Errorf("relay exited %d after SIGTERM, want 0", code)
			}
			waitFor(t, "every escapee dead after the relay's "+sig.String(), func() bool { return len(livePids(marker)) == 0 })
		})
	}
}
