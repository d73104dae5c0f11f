package sandbox

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	tr "github.com/relaychat/relay/internal/sandbox/trampoline"
	"github.com/relaychat/relay/policy"
)

func TestEnvironmentIsExactlyWhatWasGiven(t *testing.T) {
	for _, env := range [][]string{nil, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "GREETING=hello world"}} {
		t.Run(fmt.Sprintf("vars=%d", len(env)), func(t *testing.T) {
			p := newProfile(t, policy.Sandbox{}, Options{})
			r := run(t, p, []string{"/usr/bin/env"}, env)
			if !r.ok() {
				t.Fatalf("env: status %v, output %q", r.ws, r.out)
			}
			got := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
			if r.out == "" {
				got = nil
			}
			if !slices.Equal(got, env) {
				t.Errorf("got environment %q, want %q", got, env)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	outside := worldDir(t, true)
	declared := worldDir(t, true)
	readOnly := worldDir(t, true)
	roFile := filepath.Join(readOnly, "file")
	if err := os.WriteFile(roFile, []byte("keep"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		sb     policy.Sandbox
		script string
		arg    string
		want   bool
	}{
		{"undeclared dir denied", policy.Sandbox{}, `echo x > "$1/f"`, outside, false},
		{"declared dir allowed", policy.Sandbox{Write: []string{declared}}, `echo x > "$1/f" && mkdir "$1/d" && rm "$1/f"`, declared, true},
		{"private /tmp allowed", policy.Sandbox{}, `echo x > "$1/f" && cat "$1/f"`, "/tmp", true},
		{"private /var/tmp shares /tmp", policy.Sandbox{}, `echo x > /tmp/f && cat "$1/f"`, "/var/tmp", true},
		{"private /run read-only", policy.Sandbox{}, `echo x > "$1/f"`, "/run", false},
		{"private /dev/shm allowed", policy.Sandbox{}, `echo x > "$1/f"`, "/dev/shm", true},
		{"read-only file not truncated", policy.Sandbox{Read: []string{readOnly}}, `: > "$1/file"`, readOnly, false},
		{"read-only file not appended", policy.Sandbox{Read: []string{readOnly}}, `echo x >> "$1/file"`, readOnly, false},
		{"/etc not writable", policy.Sandbox{}, `echo x > /etc/relay-sandbox-test`, "", false},
		{"the view's root not writable", policy.Sandbox{}, `mkdir /new`, "", false},
		{"no exec from a writable dir", policy.Sandbox{Write: []string{declared}}, `cp /bin/true "$1/t" && "$1/t"`, declared, false},
		{"no exec from /tmp", policy.Sandbox{}, `cp /bin/true /tmp/t && chmod +x /tmp/t && /tmp/t`, "", false},
		{"exec from a read dir", policy.Sandbox{Read: []string{readOnly}}, `/bin/true`, readOnly, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProfile(t, tc.sb, Options{})
			r := run(t, p, sh(tc.script, tc.arg), nil)
			if r.ok() != tc.want {
				t.Errorf("got success %v, want %v (status %v, output %q)", r.ok(), tc.want, r.ws, r.out)
			}
		})
	}
	if b, _ := os.ReadFile(roFile); string(b) != "keep" {
		t.Errorf("read-only file holds %q, want %q", b, "keep")
	}
	if _, err := os.Stat(filepath.Join(outside, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("undeclared dir: file exists after a denied write (stat error %v)", err)
	}
	if _, err := os.Stat("/etc/relay-sandbox-test"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/etc was written (stat error %v)", err)
	}
}

// TestPrivateTempIsPrivate: two jobs at once each see their own /tmp, and
// the host's /tmp (with its sockets and other users' files) is not there.
func TestPrivateTempIsPrivate(t *testing.T) {
	hostDir, err := os.MkdirTemp("/tmp", "relay-host-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(hostDir)
	os.Chmod(hostDir, 0o755)
	hostFile := filepath.Join(hostDir, "host-secret")
	if err := os.WriteFile(hostFile, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runAs(t, "/bin/cat", hostFile); !r.ok() {
		t.Fatalf("unsandboxed control: got %v %q, want the file readable", r.ws, r.out)
	}
	a := newProfile(t, policy.Sandbox{}, Options{})
	b := newProfile(t, policy.Sandbox{}, Options{})
	ca := command(t, a, sh(`echo a > /tmp/mine; sleep 0.5; cat /tmp/mine; ls -A /tmp; test ! -e "$1"`, hostFile), nil)
	outA, err := ca.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Start(); err != nil {
		t.Fatal(err)
	}
	r := run(t, b, sh(`echo b > /tmp/mine; cat /tmp/mine; ls -A /tmp`), nil)
	if !r.ok() || r.out != "b\nmine\n" {
		t.Errorf("job b: got status %v, output %q, want b and only its own file", r.ws, r.out)
	}
	got, _ := io.ReadAll(outA)
	if err := ca.Wait(); err != nil || string(got) != "a\nmine\n" {
		t.Errorf("job a: got %v, output %q, want a and only its own file, the host's /tmp unseen", err, got)
	}
}

// TestViewHidesTheHost: what the policy does not declare does not exist for
// the command: not denied, absent.
func TestViewHidesTheHost(t *testing.T) {
	p := newProfile(t, policy.Sandbox{}, Options{})
	var probes []string
	for _, d := range []string{"/home", "/root", "/var/lib", "/var/log", "/srv", "/opt", "/mnt", "/media", "/boot", "/sys", "/run/user", "/run/dbus", "/var/run"} {
		if _, err := os.Lstat(d); err == nil {
			probes = append(probes, d)
		}
	}
	script := `for d in "$@"; do if [ -e "$d" ] || [ -L "$d" ]; then echo "visible: $d"; fi; done; ls -d /proc/*[0-9] | wc -l`
	r := run(t, p, sh(script, probes...), nil)
	if !r.ok() {
		t.Fatalf("status %v, output %q", r.ws, r.out)
	}
	if strings.Contains(r.out, "visible:") {
		t.Errorf("host paths exist in the view:\n%s", r.out)
	}
	// The shell, ls and wc, and the trampoline's init: a handful of pids,
	// never the host's.
	if n, _ := strconv.Atoi(strings.TrimSpace(r.out)); n < 2 || n > 6 {
		t.Errorf("got %d processes in /proc, want the job's own few", n)
	}
}

func TestRead(t *testing.T) {
	// A tree the command may read, holding the relay's audit dir and a
	// secret file, all world-readable so that only the sandbox stands in
	// the way.
	tree := worldDir(t, false)
	audit := filepath.Join(tree, "state", "audit")
	secret := filepath.Join(tree, "secrets", "token")
	for _, d := range []string{audit, filepath.Dir(secret)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(audit, "audit.log"), secret, filepath.Join(tree, "state", "public"), filepath.Join(tree, "secrets", "public"), filepath.Join(tree, "public")} {
		if err := os.WriteFile(f, []byte("data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := worldDir(t, false)
	if err := os.WriteFile(filepath.Join(other, "f"), []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prot := Options{Protected: []string{audit, secret}}
	for _, tc := range []struct {
		name string
		sb   policy.Sandbox
		argv []string
		want bool
	}{
		{"audit log denied", policy.Sandbox{Read: []string{tree}}, []string{"/bin/cat", filepath.Join(audit, "audit.log")}, false},
		{"audit dir listing denied", policy.Sandbox{Read: []string{tree}}, []string{"/bin/ls", audit}, false},
		{"secret file denied", policy.Sandbox{Read: []string{tree}}, []string{"/bin/cat", secret}, false},
		{"sibling of audit dir allowed", policy.Sandbox{Read: []string{tree}}, []string{"/bin/cat", filepath.Join(tree, "state", "public")}, true},
		{"sibling of secret allowed", policy.Sandbox{Read: []string{tree}}, []string{"/bin/cat", filepath.Join(tree, "secrets", "public")}, true},
		{"top of declared tree allowed", policy.Sandbox{Read: []string{tree}}, []string{"/bin/cat", filepath.Join(tree, "public")}, true},
		{"/root absent", policy.Sandbox{}, []string{"/bin/ls", "/root"}, false},
		{"undeclared dir absent", policy.Sandbox{}, []string{"/bin/cat", filepath.Join(other, "f")}, false},
		{"declared dir allowed", policy.Sandbox{Read: []string{other}}, []string{"/bin/cat", filepath.Join(other, "f")}, true},
		{"/etc allowed by default", policy.Sandbox{}, []string{"/bin/cat", "/etc/hostname"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProfile(t, tc.sb, prot)
			r := run(t, p, tc.argv, nil)
			if r.ok() != tc.want {
				t.Errorf("got success %v, want %v (status %v, output %q)", r.ok(), tc.want, r.ws, r.out)
			}
		})
	}
	t.Run("/root allowed when declared", func(t *testing.T) {
		if r := runAs(t, "/bin/ls", "/root"); !r.ok() {
			t.Skipf("/root is not readable by uid %d even unsandboxed", childUID())
		}
		p := newProfile(t, policy.Sandbox{Read: []string{"/root"}}, Options{})
		if r := run(t, p, []string{"/bin/ls", "/root"}, nil); !r.ok() {
			t.Errorf("got status %v, want success (output %q)", r.ws, r.out)
		}
	})
}

// TestProtectedPathsAreMasked: the relay's files inside a tree the command
// sees are covered, not merely denied: an empty directory or an empty file
// from another filesystem stands where they are, so even a hole in the
// Landlock rules would reveal nothing.
func TestProtectedPathsAreMasked(t *testing.T) {
	tree := worldDir(t, false)
	state := filepath.Join(tree, "state")
	token := filepath.Join(tree, "token")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(state, "auth.json"), token} {
		if err := os.WriteFile(f, []byte("secret\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var treeDev syscall.Stat_t
	if err := syscall.Stat(tree, &treeDev); err != nil {
		t.Fatal(err)
	}
	p := newProfile(t, policy.Sandbox{Read: []string{tree}}, Options{Protected: []string{state, token}})
	r := run(t, p, sh(`stat -c '%s %d %h' "$1"; stat -c '%s %d' "$2"; cat "$1/auth.json" "$2" 2>/dev/null; exit 0`, state, token), nil)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 2 {
		t.Fatalf("got output %q, want two stat lines and no secret", r.out)
	}
	if strings.Contains(r.out, "secret") {
		t.Fatalf("a protected file was read: %q", r.out)
	}
	dir := strings.Fields(lines[0])
	file := strings.Fields(lines[1])
	hostDev := strconv.FormatUint(uint64(treeDev.Dev), 10)
	if len(dir) != 3 || dir[1] == hostDev || dir[2] != "2" {
		t.Errorf("protected dir: got stat %q, want an empty directory of another filesystem (host device %s)", lines[0], hostDev)
	}
	if len(file) != 2 || file[0] != "0" || file[1] == hostDev {
		t.Errorf("protected file: got stat %q, want an empty file of another filesystem (host device %s)", lines[1], hostDev)
	}
}

// TestHostSocketsUnreachable: a world-connectable pathname socket outside
// every declared path does not exist for the command; declared under
// sandbox.sockets, exactly that socket does.
func TestHostSocketsUnreachable(t *testing.T) {
	bin := helperBinary(t)
	dir := worldDir(t, true)
	sock := filepath.Join(dir, "host.sock")
	other := filepath.Join(dir, "other.sock")
	for _, s := range []string{sock, other} {
		ln, err := net.Listen("unix", s)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		os.Chmod(s, 0o777)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	if r := runAs(t, bin, helperArg, "unix", sock); !r.ok() {
		t.Fatalf("unsandboxed control: got %q, want connected", r.out)
	}
	read := []string{filepath.Dir(bin)}
	for _, tc := range []struct {
		name string
		sb   policy.Sandbox
		path string
		want bool
	}{
		{"undeclared", policy.Sandbox{Read: read}, sock, false},
		{"undeclared with network", policy.Sandbox{Read: read, Network: true}, sock, false},
		{"declared", policy.Sandbox{Read: read, Sockets: []string{sock}}, sock, true},
		{"a neighbour of a declared one", policy.Sandbox{Read: read, Sockets: []string{sock}}, other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProfile(t, tc.sb, Options{})
			r := run(t, p, []string{bin, helperArg, "unix", tc.path}, nil)
			if r.ok() != tc.want {
				t.Errorf("connect %s: got status %v, output %q, want connected %v", tc.path, r.ws, r.out, tc.want)
			}
		})
	}
	t.Run("a declared socket must be a socket", func(t *testing.T) {
		if _, err := New(policy.Sandbox{Sockets: []string{dir}}, Options{SelfExe: selfExe(t), Timeout: time.Second, CommandUser: &testCommandUser}); err == nil {
			t.Error("New: got no error for a directory in sandbox.sockets")
		}
	})
}

func TestNewRefusesPathsInsideProtected(t *testing.T) {
	state := t.TempDir()
	inner := filepath.Join(state, "spool")
	if err := os.Mkdir(inner, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(inner, link); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(state, "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hostTmp, err := os.MkdirTemp("/tmp", "relay-host-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(hostTmp)
	for _, tc := range []struct {
		name string
		sb   policy.Sandbox
		o    Options
	}{
		{"read equal", policy.Sandbox{Read: []string{state}}, Options{}},
		{"read inside", policy.Sandbox{Read: []string{inner}}, Options{}},
		{"write inside", policy.Sandbox{Write: []string{inner}}, Options{}},
		{"write through a symlink", policy.Sandbox{Write: []string{link}}, Options{}},
		{"the control socket", policy.Sandbox{Sockets: []string{filepath.Join(state, "control.sock")}}, Options{}},
		{"workdir inside", policy.Sandbox{}, Options{Workdir: inner}},
		{"workdir outside the view", policy.Sandbox{}, Options{Workdir: t.TempDir()}},
		{"workdir under a private directory", policy.Sandbox{}, Options{Workdir: "/tmp/x"}},
		{"write the host's /tmp", policy.Sandbox{Write: []string{"/tmp"}}, Options{}},
		{"read under the host's /tmp", policy.Sandbox{Read: []string{hostTmp}}, Options{}},
		{"read under /dev/shm", policy.Sandbox{Read: []string{"/dev/shm"}}, Options{}},
		{"relative read", policy.Sandbox{Read: []string{"etc"}}, Options{}},
		{"missing read", policy.Sandbox{Read: []string{filepath.Join(state, "nope")}}, Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Protected = []string{state}
			o.SelfExe = selfExe(t)
			o.Timeout = time.Second
			o.CommandUser = &testCommandUser
			if _, err := New(tc.sb, o); err == nil {
				t.Errorf("New: got no error, want one")
			}
		})
	}
}

func TestProtectedExpansion(t *testing.T) {
	tree := t.TempDir()
	for _, d := range []string{"a/b/prot", "a/b/sib", "a/c", "d"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "a", "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(tree, "a/b/prot"), filepath.Join(tree, "a", "b", "alias")); err != nil {
		t.Fatal(err)
	}
	prot := filepath.Join(tree, "a/b/prot")
	p := newProfile(t, policy.Sandbox{Read: []string{tree}}, Options{Protected: []string{prot}})
	rules, err := p.grant(root{path: tree, access: accReadExec, declared: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, strings.TrimPrefix(r.Path, tree))
		if within(prot, r.Path) {
			t.Errorf("rule %q covers the protected path", r.Path)
		}
		if r.Path == filepath.Join(tree, "a", "file") && r.Access&^fileRights != 0 {
			t.Errorf("file rule carries directory rights %#x", r.Access)
		}
	}
	slices.Sort(got)
	want := []string{"/a/b/sib", "/a/c", "/a/file", "/d"}
	if !slices.Equal(got, want) {
		t.Errorf("got rules %q, want %q", got, want)
	}
	// The trampoline's own directories hold nothing of the host's, so a
	// protected path under the host's /tmp never splits the private one.
	rules, err = p.grant(root{private: true, path: "/tmp", access: accReadWrite})
	if err != nil || len(rules) != 1 || rules[0].Path != "/tmp" {
		t.Errorf("private /tmp: got rules %+v (%v), want /tmp itself", rules, err)
	}
}

func TestNewRefusesWhatTheHostCannotEnforce(t *testing.T) {
	full := Capabilities{LandlockABI: 7, UserNS: true, Seccomp: true, Root: false}
	with := func(f func(*Capabilities)) Capabilities { c := full; f(&c); return c }
	for _, tc := range []struct {
		name string
		caps Capabilities
		sb   policy.Sandbox
		o    Options
		want bool // enforceable
	}{
		{"full host", full, policy.Sandbox{}, Options{}, true},
		{"landlock missing", with(func(c *Capabilities) { c.LandlockABI, c.LandlockErr = 0, "not built in" }), policy.Sandbox{}, Options{}, false},
		{"landlock missing with network", with(func(c *Capabilities) { c.LandlockABI = 0 }), policy.Sandbox{Network: true}, Options{}, false},
		{"abi 2 has no truncate rule", with(func(c *Capabilities) { c.LandlockABI = 2 }), policy.Sandbox{}, Options{}, false},
		{"abi 3 cannot do connect_ports", with(func(c *Capabilities) { c.LandlockABI = 3 }), policy.Sandbox{ConnectPorts: []uint16{443}}, Options{}, false},
		{"abi 5 without network", with(func(c *Capabilities) { c.LandlockABI = 5 }), policy.Sandbox{}, Options{}, true},
		{"abi 5 cannot scope abstract sockets on the host network", with(func(c *Capabilities) { c.LandlockABI = 5 }), policy.Sandbox{Network: true}, Options{}, false},
		{"no user namespaces", with(func(c *Capabilities) { c.UserNS, c.UserNSErr = false, "sysctl" }), policy.Sandbox{}, Options{}, false},
		{"no user namespaces with network", with(func(c *Capabilities) { c.UserNS = false }), policy.Sandbox{Network: true}, Options{}, false},
		{"no seccomp", with(func(c *Capabilities) { c.Seccomp, c.SeccompErr = false, "no filter" }), policy.Sandbox{}, Options{}, false},
		{"root without a command user", with(func(c *Capabilities) { c.Root = true }), policy.Sandbox{}, Options{}, false},
		{"root with a command user", with(func(c *Capabilities) { c.Root = true }), policy.Sandbox{}, Options{CommandUser: &testCommandUser}, true},
		{"root with nobody", with(func(c *Capabilities) { c.Root = true }), policy.Sandbox{}, Options{CommandUser: &Identity{UID: 65534, GID: 65534}}, false},
		{"root with root", with(func(c *Capabilities) { c.Root = true }), policy.Sandbox{}, Options{CommandUser: &Identity{UID: 0, GID: 0}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caps := tc.caps
			o := tc.o
			o.SelfExe, o.Timeout, o.Probe = selfExe(t), time.Second, func() Capabilities { return caps }
			_, err := New(tc.sb, o)
			if got := err == nil; got != tc.want {
				t.Fatalf("New: got enforceable %v (err %v), want %v", got, err, tc.want)
			}
			if err != nil && !errors.Is(err, ErrUnenforceable) {
				t.Errorf("got error %v, want one wrapping ErrUnenforceable", err)
			}
		})
	}
}

func TestNewRefusesDisabledAndBadLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		sb   policy.Sandbox
		o    Options
	}{
		{"disabled", policy.Sandbox{Disabled: true}, Options{Timeout: time.Second}},
		{"no cpu limit", policy.Sandbox{}, Options{}},
		{"nofile too low", policy.Sandbox{NoFile: 3}, Options{Timeout: time.Second}},
		{"negative fsize", policy.Sandbox{FileSize: -1}, Options{Timeout: time.Second}},
		{"negative tmp_size", policy.Sandbox{TmpSize: -1}, Options{Timeout: time.Second}},
		{"unknown syscall to allow", policy.Sandbox{AllowSyscalls: []string{"write"}}, Options{Timeout: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.SelfExe = selfExe(t)
			o.CommandUser = &testCommandUser
			if _, err := New(tc.sb, o); err == nil {
				t.Errorf("New: got no error, want one")
			}
		})
	}
}

func TestWrapRefusesUnreachableCommand(t *testing.T) {
	dir := worldDir(t, true)
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := newProfile(t, policy.Sandbox{Write: []string{dir}}, Options{})
	for _, argv := range [][]string{nil, {"true"}, {bin}} {
		if _, err := p.Wrap(argv, nil); err == nil {
			t.Errorf("Wrap(%q): got no error, want one", argv)
		}
	}
}

func TestWorkdir(t *testing.T) {
	dir := worldDir(t, true)
	for _, tc := range []struct {
		sb      policy.Sandbox
		workdir string
		want    string
	}{
		{policy.Sandbox{}, "", "/"},
		{policy.Sandbox{}, "/tmp", "/tmp"},
		{policy.Sandbox{}, "/etc", "/etc"},
		{policy.Sandbox{Write: []string{dir}}, dir, dir},
	} {
		p := newProfile(t, tc.sb, Options{Workdir: tc.workdir})
		r := run(t, p, []string{"/bin/pwd"}, nil)
		if got := strings.TrimSpace(r.out); !r.ok() || got != tc.want {
			t.Errorf("workdir %q: got %q (status %v), want %q", tc.workdir, got, r.ws, tc.want)
		}
	}
}

func TestNetwork(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	got := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b := make([]byte, 16)
			n, _ := c.Read(b)
			got <- string(b[:n])
			c.Close()
		}
	}()
	script := `exec 3<>"/dev/tcp/127.0.0.1/$1" && printf hello >&3`
	for _, tc := range []struct {
		name string
		sb   policy.Sandbox
		want bool
	}{
		{"denied by default", policy.Sandbox{}, false},
		{"allowed with network", policy.Sandbox{Network: true}, true},
		{"allowed port", policy.Sandbox{ConnectPorts: []uint16{port}}, true},
		{"other port denied", policy.Sandbox{ConnectPorts: []uint16{port + 1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProfile(t, tc.sb, Options{})
			r := run(t, p, append([]string{"/bin/bash", "-c", script, "bash"}, strconv.Itoa(int(port))), nil)
			if r.ok() != tc.want {
				t.Fatalf("got success %v, want %v (status %v, output %q)", r.ok(), tc.want, r.ws, r.out)
			}
			if tc.want {
				if m := <-got; m != "hello" {
					t.Errorf("listener got %q, want %q", m, "hello")
				}
			}
		})
	}
	select {
	case m := <-got:
		t.Errorf("listener got an unexpected connection carrying %q", m)
	default:
	}
}

func TestPtraceOfTheRelayDenied(t *testing.T) {
	bin := helperBinary(t)
	p := newProfile(t, policy.Sandbox{Read: []string{filepath.Dir(bin)}}, Options{})
	r := run(t, p, []string{bin, helperArg, "ptrace", strconv.Itoa(os.Getpid())}, nil)
	if r.ok() || !strings.HasPrefix(r.out, "denied:") {
		t.Errorf("ptrace of the relay: got status %v, output %q, want denied", r.ws, r.out)
	}
}

// TestOtherProcessesOfTheSameUIDUnreachable isolates the sandbox from file
// permissions: the target runs under the command's own identity, so only
// the sandbox stands between them. The unsandboxed control proves the
// probe works.
func TestOtherProcessesOfTheSameUIDUnreachable(t *testing.T) {
	bin := helperBinary(t)
	for _, sb := range []policy.Sandbox{{}, {Network: true}} {
		for _, op := range []string{"ptrace", "kill0"} {
			t.Run(fmt.Sprintf("%s/network=%v", op, sb.Network), func(t *testing.T) {
				target := startAs(t, "/bin/sleep", "1000")
				pid := strconv.Itoa(target.Process.Pid)
				if r := runAs(t, bin, helperArg, op, pid); !r.ok() {
					t.Skipf("unsandboxed control failed, the kernel forbids it anyway: %q", r.out)
				}
				sb.Read = []string{filepath.Dir(bin)}
				p := newProfile(t, sb, Options{})
				r := run(t, p, []string{bin, helperArg, op, pid}, nil)
				if r.ok() || !strings.HasPrefix(r.out, "denied:") {
					t.Errorf("%s of a same-uid process: got status %v, output %q, want denied", op, r.ws, r.out)
				}
			})
		}
	}
}

func TestAbstractUnixSocketDenied(t *testing.T) {
	bin := helperBinary(t)
	name := fmt.Sprintf("@relay-sandbox-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if r := runAs(t, bin, helperArg, "unix", name); !r.ok() {
		t.Fatalf("unsandboxed control: got %q, want connected", r.out)
	}
	// network: true keeps the host's network namespace, where the
	// abstract socket lives: only Landlock's scope stands in the way.
	for _, sb := range []policy.Sandbox{{Network: true}, {}} {
		sb.Read = []string{filepath.Dir(bin)}
		p := newProfile(t, sb, Options{})
		r := run(t, p, []string{bin, helperArg, "unix", name}, nil)
		if r.ok() || !strings.HasPrefix(r.out, "denied:") {
			t.Errorf("%+v: connect to a host abstract socket: got status %v, output %q, want denied", sb, r.ws, r.out)
		}
	}
}

// TestKernelSurfaceRefused: a real program inside the default profile tries
// the system calls a compromised command would use against the kernel or
// its neighbours, and gets EPERM for each (ENOSYS for clone3, whose flags a
// filter cannot read); re-allowed by name, one of them goes through.
func TestKernelSurfaceRefused(t *testing.T) {
	bin := helperBinary(t)
	calls := []string{"ptrace", "keyctl", "unshare", "bpf", "perf_event_open", "io_uring_setup", "mount", "userfaultfd", "clone_newuser", "clone3", "tiocsti", "personality"}
	control := runAs(t, append([]string{bin, helperArg, "syscalls"}, calls...)...)
	p := newProfile(t, policy.Sandbox{Read: []string{filepath.Dir(bin)}}, Options{})
	r := run(t, p, append([]string{bin, helperArg, "syscalls"}, calls...), nil)
	if !r.ok() {
		t.Fatalf("status %v, output %q", r.ws, r.out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			got[k] = v
		}
	}
	unfiltered := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(control.out), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			unfiltered[k] = v
		}
	}
	for _, c := range calls {
		want := "EPERM"
		if c == "clone3" {
			want = "ENOSYS"
		}
		if got[c] != want {
			t.Errorf("%s: got %q, want %s", c, got[c], want)
		}
		if unfiltered[c] == want && c != "clone_newuser" && c != "unshare" && c != "mount" {
			t.Logf("%s also gives %s outside the sandbox (%q)", c, want, unfiltered[c])
		}
	}
	t.Run("re-allowed by name", func(t *testing.T) {
		p := newProfile(t, policy.Sandbox{Read: []string{filepath.Dir(bin)}, AllowSyscalls: []string{"keyctl"}}, Options{})
		r := run(t, p, []string{bin, helperArg, "syscalls", "keyctl"}, nil)
		if strings.TrimSpace(r.out) == "keyctl EPERM" || !r.ok() {
			t.Errorf("keyctl re-allowed: got status %v, output %q, want something other than EPERM", r.ws, r.out)
		}
	})
}

func TestFileSizeLimitReported(t *testing.T) {
	dir := worldDir(t, true)
	p := newProfile(t, policy.Sandbox{FileSize: 64 << 10, Write: []string{dir}}, Options{})
	r := run(t, p, sh(`exec head -c 1000000 /dev/zero > "$1/big"`, dir), nil)
	if !FileSizeExceeded(r.ws) {
		t.Fatalf("got status %v (output %q), want killed by SIGXFSZ", r.ws, r.out)
	}
	if got := Explain(r.ws); !strings.Contains(got, "file size limit exceeded") {
		t.Errorf("Explain: got %q, want it to say file size limit exceeded", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "big")); err != nil || fi.Size() > 64<<10 {
		t.Errorf("file written past the limit: %v, %v", fi, err)
	}
	t.Run("through a shell", func(t *testing.T) {
		r := run(t, p, sh(`head -c 1000000 /dev/zero > "$1/big2"`, dir), nil)
		if got := Explain(r.ws); !strings.Contains(got, "file size limit") {
			t.Errorf("Explain(%v): got %q, want it to name the file size limit", r.ws, got)
		}
	})
}

// TestStatusIsTheCommands: the init of the command's pid namespace
// reports the command's own wait status, signals included.
func TestStatusIsTheCommands(t *testing.T) {
	p := newProfile(t, policy.Sandbox{}, Options{})
	for _, tc := range []struct {
		script string
		check  func(syscall.WaitStatus) bool
	}{
		{`exit 0`, func(ws syscall.WaitStatus) bool { return ws.Exited() && ws.ExitStatus() == 0 }},
		{`exit 7`, func(ws syscall.WaitStatus) bool { return ws.Exited() && ws.ExitStatus() == 7 }},
		{`kill -SEGV $$`, func(ws syscall.WaitStatus) bool { return ws.Signaled() && ws.Signal() == syscall.SIGSEGV }},
		{`kill -TERM $$`, func(ws syscall.WaitStatus) bool { return ws.Signaled() && ws.Signal() == syscall.SIGTERM }},
	} {
		if r := run(t, p, sh(tc.script), nil); !tc.check(r.ws) {
			t.Errorf("%s: got status %v", tc.script, r.ws)
		}
	}
}

func TestLimitsAndIdentityInside(t *testing.T) {
	p := newProfile(t, policy.Sandbox{NoFile: 64, Procs: 50, FileSize: 1 << 20, AddressSpace: 2 << 30, CPU: 7 * time.Second}, Options{})
	r := run(t, p, []string{"/bin/cat", "/proc/self/limits", "/proc/self/status"}, nil)
	if !r.ok() {
		t.Fatalf("cat: status %v, output %q", r.ws, r.out)
	}
	for _, want := range []string{
		`Max cpu time\s+7\s+8\s`,
		`Max open files\s+64\s+64\s`,
		`Max file size\s+1048576\s+1048576\s`,
		`Max core file size\s+0\s+0\s`,
		`Max address space\s+2147483648\s+2147483648\s`,
		`NoNewPrivs:\s+1\n`,
		`Seccomp:\s+2\n`,
		fmt.Sprintf(`Uid:\s+%d\s+%d\s+%d\s+%d\n`, childUID(), childUID(), childUID(), childUID()),
		`CapInh:\s+0000000000000000\n`,
		`CapPrm:\s+0000000000000000\n`,
		`CapEff:\s+0000000000000000\n`,
		`CapBnd:\s+0000000000000000\n`,
		`CapAmb:\s+0000000000000000\n`,
	} {
		if !matches(want, r.out) {
			t.Errorf("got no line matching %q in:\n%s", want, r.out)
		}
	}
	if os.Geteuid() == 0 && !matches(`Groups:\s*\n`, r.out) {
		t.Errorf("got supplementary groups, want none:\n%s", r.out)
	}
	// RLIMIT_NPROC counts the init's threads too, so it is the profile's
	// 50 plus those.
	m := regexp.MustCompile(`Max processes\s+(\d+)\s+(\d+)\s`).FindStringSubmatch(r.out)
	if m == nil || m[1] != m[2] {
		t.Fatalf("no soft = hard Max processes line in:\n%s", r.out)
	}
	if n, _ := strconv.Atoi(m[1]); n < 50 || n > 50+64 {
		t.Errorf("got RLIMIT_NPROC %d, want 50 plus the init's few threads", n)
	}
}

func TestNoStrayDescriptors(t *testing.T) {
	p := newProfile(t, policy.Sandbox{}, Options{})
	r := run(t, p, sh(`ls /proc/self/fd`), nil)
	// 0-2 and the descriptor ls reads the directory with.
	if got := strings.Fields(r.out); !r.ok() || len(got) != 4 {
		t.Errorf("got descriptors %q (status %v), want 0, 1, 2 and ls's own", got, r.ws)
	}
}

func TestPty(t *testing.T) {
	for _, pty := range []bool{false, true} {
		p := newProfile(t, policy.Sandbox{Pty: pty}, Options{})
		r := run(t, p, sh(`test -c /dev/ptmx && test -d /dev/pts && exec 3<>/dev/ptmx`), nil)
		if r.ok() != pty {
			t.Errorf("pty %v: got a usable /dev/ptmx %v (status %v, output %q)", pty, r.ok(), r.ws, r.out)
		}
	}
}

func TestTrampolineFailsClosed(t *testing.T) {
	dir := worldDir(t, true)
	marker := filepath.Join(dir, "ran")
	good := newProfile(t, policy.Sandbox{Write: []string{dir}}, Options{})
	s := good.spec
	s.Rules = nil
	missing := s
	missing.Rules = append(slices.Clone(s.Rules), tr.Rule{Path: filepath.Join(dir, "gone"), Access: accRead})
	future := s
	future.ABI = tr.MaxKnownABI + 1
	otherID := s
	otherID.UID++
	header := s.Encode()[0]
	for _, tc := range []struct {
		name string
		prof []string
	}{
		{"garbage profile", []string{"{"}},
		{"no profile", nil},
		{"unknown field", []string{header + " bogus=1"}},
		{"duplicate field", []string{header + " uid=0"}},
		{"other version", []string{"v0" + strings.TrimPrefix(header, "v2")}},
		{"bad rule", append([]string{header, "l zz r /usr"}, s.Encode()[1:]...)},
		{"missing required path", missing.Encode()},
		{"unknown abi", future.Encode()},
		{"another identity", otherID.Encode()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, good, sh(`touch "$1"`, marker), nil)
			prof, err := memfd(strings.Join(tc.prof, "\x00"))
			if err != nil {
				t.Fatal(err)
			}
			cmd.ExtraFiles[1] = prof
			out, _ := cmd.CombinedOutput()
			ws := commandStatus(cmd)
			if !ws.Exited() || ws.ExitStatus() != ExitSetupFailed || !strings.HasPrefix(string(out), "relay-sandbox: ") {
				t.Errorf("got status %v, output %q, want exit %d with a relay-sandbox: line", ws, out, ExitSetupFailed)
			}
			if !strings.Contains(Explain(ws), "sandbox setup failed") {
				t.Errorf("Explain: got %q, want sandbox setup failed", Explain(ws))
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the command ran after a failed setup")
			}
		})
	}
	t.Run("profile in an unsealed file", func(t *testing.T) {
		cmd := command(t, good, sh(`touch "$1"`, marker), nil)
		f, err := os.CreateTemp(t.TempDir(), "profile")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := good.spec.Marshal()
		f.Write(b)
		cmd.ExtraFiles[1] = f
		out, _ := cmd.CombinedOutput()
		if ws := commandStatus(cmd); ws.ExitStatus() != ExitSetupFailed || !strings.Contains(string(out), "sealed") {
			t.Errorf("got status %v, output %q, want a refusal of an unsealed profile", ws, out)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("the command ran after a failed setup")
		}
	})
}

func TestSelfTest(t *testing.T) {
	for _, sb := range []policy.Sandbox{{}, {Network: true}, {Pty: true}} {
		p := newProfile(t, sb, Options{})
		if err := p.SelfTest(); err != nil {
			t.Errorf("SelfTest(%+v): %v", sb, err)
		}
	}
	// A trampoline that cannot set up fails the self-test with its reason.
	p := newProfile(t, policy.Sandbox{}, Options{})
	p.spec.AS = 0
	if err := p.SelfTest(); err == nil || !strings.Contains(err.Error(), "relay-sandbox: ") {
		t.Errorf("SelfTest of a broken profile: got %v, want the trampoline's relay-sandbox: line", err)
	}
}

func TestDefaultSelfExeIsTheRunningBinary(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("as root the command user cannot execute the test binary in its private build directory")
	}
	p, err := New(policy.Sandbox{}, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w, err := p.Wrap([]string{"/bin/true"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Path != "/proc/self/exe" {
		t.Errorf("got Path %q, want /proc/self/exe", w.Path)
	}
	if r := run(t, p, []string{"/bin/true"}, nil); !r.ok() {
		t.Errorf("got status %v (output %q), want success", r.ws, r.out)
	}
}

func TestProbeAndReport(t *testing.T) {
	c := Probe()
	if (c.LandlockABI == 0) == (c.LandlockErr == "") {
		t.Errorf("got ABI %d with reason %q: want a reason exactly when Landlock is unusable", c.LandlockABI, c.LandlockErr)
	}
	if c.UserNS == (c.UserNSErr != "") || c.Seccomp == (c.SeccompErr != "") {
		t.Errorf("got %+v: want a reason exactly when a feature is missing", c)
	}
	if c.Root != (os.Geteuid() == 0) {
		t.Errorf("got Root %v, want %v", c.Root, os.Geteuid() == 0)
	}
	seen := map[string]bool{}
	for _, l := range c.Report() {
		if l.Name == "" || l.Detail == "" || seen[l.Name] {
			t.Errorf("bad report line %+v", l)
		}
		seen[l.Name] = true
	}
	for _, want := range []string{"landlock", "landlock tcp", "landlock scope", "namespaces", "seccomp", "identity", "rlimits"} {
		if !seen[want] {
			t.Errorf("report lacks %q", want)
		}
	}
	missing := Capabilities{LandlockErr: "not built in"}.Report()
	if missing[0].OK || !strings.Contains(missing[0].Detail, "not built in") {
		t.Errorf("report of a kernel without Landlock: got %+v, want a failed line with the reason", missing[0])
	}
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		ws   syscall.WaitStatus
		want string
	}{
		{syscall.WaitStatus(syscall.SIGXFSZ), "file size limit exceeded"},
		{syscall.WaitStatus(syscall.SIGXCPU), "cpu time limit exceeded"},
		{syscall.WaitStatus(ExitSetupFailed << 8), "sandbox setup failed"},
		{syscall.WaitStatus(153 << 8), "file size limit"},
		{syscall.WaitStatus(1 << 8), ""},
		{syscall.WaitStatus(syscall.SIGKILL), ""},
	} {
		got := Explain(tc.ws)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("Explain(%v): got %q, want %q", tc.ws, got, tc.want)
		}
	}
}
