package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
	for _, ns := range []bool{false, true} {
		for _, env := range [][]string{nil, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "GREETING=hello world"}} {
			t.Run(fmt.Sprintf("namespaces=%v/vars=%d", ns, len(env)), func(t *testing.T) {
				p := newProfile(t, policy.Sandbox{Namespaces: ns}, Options{})
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
		arg    string // "" means the private temp dir
		want   bool
	}{
		{"undeclared dir denied", policy.Sandbox{}, `echo x > "$1/f"`, outside, false},
		{"undeclared dir denied with namespaces", policy.Sandbox{Namespaces: true}, `echo x > "$1/f"`, outside, false},
		{"declared dir allowed", policy.Sandbox{Write: []string{declared}}, `echo x > "$1/f" && mkdir "$1/d" && rm "$1/f"`, declared, true},
		{"private temp dir allowed", policy.Sandbox{}, `echo x > "$1/f" && cat "$1/f"`, "", true},
		{"read-only file not truncated", policy.Sandbox{Read: []string{readOnly}}, `: > "$1/file"`, readOnly, false},
		{"read-only file not appended", policy.Sandbox{Read: []string{readOnly}}, `echo x >> "$1/file"`, readOnly, false},
		{"/etc not writable", policy.Sandbox{}, `echo x > /etc/relay-sandbox-test`, "", false},
		{"no exec from a writable dir", policy.Sandbox{Write: []string{declared}}, `cp /bin/true "$1/t" && "$1/t"`, declared, false},
		{"exec from a read dir", policy.Sandbox{Read: []string{readOnly}}, `/bin/true`, readOnly, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProfile(t, tc.sb, Options{})
			arg := tc.arg
			if arg == "" {
				arg = tempDir(t, p)
			}
			r := run(t, p, sh(tc.script, arg), nil)
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
		{"secret file denied with namespaces", policy.Sandbox{Read: []string{tree}, Namespaces: true}, []string{"/bin/cat", secret}, false},
		{"sibling of audit dir allowed", policy.Sandbox{Read: []string{tree}}, []string{"/bin/cat", filepath.Join(tree, "state", "public")}, true},
		{"sibling of secret allowed", policy.Sandbox{Read: []string{tree}}, []string{"/bin/cat", filepath.Join(tree, "secrets", "public")}, true},
		{"top of declared tree allowed", policy.Sandbox{Read: []string{tree}}, []string{"/bin/cat", filepath.Join(tree, "public")}, true},
		{"/root denied", policy.Sandbox{}, []string{"/bin/ls", "/root"}, false},
		{"undeclared dir denied", policy.Sandbox{}, []string{"/bin/cat", filepath.Join(other, "f")}, false},
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
	for _, tc := range []struct {
		name string
		sb   policy.Sandbox
		o    Options
	}{
		{"read equal", policy.Sandbox{Read: []string{state}}, Options{}},
		{"read inside", policy.Sandbox{Read: []string{inner}}, Options{}},
		{"write inside", policy.Sandbox{Write: []string{inner}}, Options{}},
		{"write through a symlink", policy.Sandbox{Write: []string{link}}, Options{}},
		{"temp dir inside", policy.Sandbox{}, Options{TempDir: inner}},
		{"relative read", policy.Sandbox{Read: []string{"etc"}}, Options{}},
		{"missing read", policy.Sandbox{Read: []string{filepath.Join(state, "nope")}}, Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Protected = []string{state}
			o.SelfExe = selfExe(t)
			o.Timeout = time.Second
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
}

func TestNewRefusesWhatTheKernelCannotEnforce(t *testing.T) {
	full := Capabilities{LandlockABI: 7, UserNS: true, NetNS: true, Root: true}
	with := func(f func(*Capabilities)) Capabilities { c := full; f(&c); return c }
	for _, tc := range []struct {
		name string
		caps Capabilities
		sb   policy.Sandbox
		want bool // enforceable
	}{
		{"full kernel", full, policy.Sandbox{}, true},
		{"landlock missing", with(func(c *Capabilities) { c.LandlockABI, c.LandlockErr = 0, "not built in" }), policy.Sandbox{}, false},
		{"landlock missing with namespaces", with(func(c *Capabilities) { c.LandlockABI = 0 }), policy.Sandbox{Namespaces: true}, false},
		{"landlock missing with network", with(func(c *Capabilities) { c.LandlockABI = 0 }), policy.Sandbox{Network: true}, false},
		{"abi 2 has no truncate rule", with(func(c *Capabilities) { c.LandlockABI = 2 }), policy.Sandbox{Namespaces: true}, false},
		{"abi 3 cannot do connect_ports", with(func(c *Capabilities) { c.LandlockABI = 3 }), policy.Sandbox{ConnectPorts: []uint16{443}, Namespaces: true}, false},
		{"abi 5 cannot scope signals without a pid namespace", with(func(c *Capabilities) { c.LandlockABI = 5 }), policy.Sandbox{}, false},
		{"abi 5 with all namespaces", with(func(c *Capabilities) { c.LandlockABI = 5 }), policy.Sandbox{Namespaces: true}, true},
		{"abi 5 cannot scope abstract sockets on the host network", with(func(c *Capabilities) { c.LandlockABI = 5 }), policy.Sandbox{Namespaces: true, Network: true}, false},
		{"namespaces without user namespaces", with(func(c *Capabilities) { c.UserNS = false }), policy.Sandbox{Namespaces: true}, false},
		{"no network as root without user namespaces", with(func(c *Capabilities) { c.UserNS = false }), policy.Sandbox{}, true},
		{"no network without a network namespace", with(func(c *Capabilities) { c.UserNS, c.NetNS, c.Root = false, false, false }), policy.Sandbox{}, false},
		{"connect_ports without a network namespace", with(func(c *Capabilities) { c.UserNS, c.NetNS, c.Root = false, false, false }), policy.Sandbox{ConnectPorts: []uint16{443}}, true},
		{"network without a network namespace", with(func(c *Capabilities) { c.UserNS, c.NetNS, c.Root = false, false, false }), policy.Sandbox{Network: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caps := tc.caps
			_, err := New(tc.sb, Options{SelfExe: selfExe(t), Timeout: time.Second, TempDir: t.TempDir(), Probe: func() Capabilities { return caps }})
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.SelfExe = selfExe(t)
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
		{"denied with namespaces", policy.Sandbox{Namespaces: true}, false},
		{"allowed with network", policy.Sandbox{Network: true}, true},
		{"allowed with network and namespaces", policy.Sandbox{Network: true, Namespaces: true}, true},
		{"allowed port", policy.Sandbox{ConnectPorts: []uint16{port}}, true},
		{"other port denied", policy.Sandbox{ConnectPorts: []uint16{port + 1}}, false},
		{"other port denied with namespaces", policy.Sandbox{ConnectPorts: []uint16{port + 1}, Namespaces: true}, false},
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

// TestLandlockDeniesSameUIDAccess isolates Landlock from file permissions:
// the target runs under the command's own identity, so only the sandbox
// stands between them. The unsandboxed control proves the probe works.
func TestLandlockDeniesSameUIDAccess(t *testing.T) {
	bin := helperBinary(t)
	for _, op := range []string{"ptrace", "kill0"} {
		t.Run(op, func(t *testing.T) {
			target := startAs(t, "/bin/sleep", "1000")
			pid := strconv.Itoa(target.Process.Pid)
			if r := runAs(t, bin, helperArg, op, pid); !r.ok() {
				t.Skipf("unsandboxed control failed, the kernel forbids it anyway: %q", r.out)
			}
			p := newProfile(t, policy.Sandbox{Read: []string{filepath.Dir(bin)}}, Options{})
			r := run(t, p, []string{bin, helperArg, op, pid}, nil)
			if r.ok() || !strings.HasPrefix(r.out, "denied:") {
				t.Errorf("%s of a same-uid process: got status %v, output %q, want denied", op, r.ws, r.out)
			}
		})
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
	for _, sb := range []policy.Sandbox{{Network: true}, {}, {Namespaces: true}} {
		sb.Read = []string{filepath.Dir(bin)}
		p := newProfile(t, sb, Options{})
		r := run(t, p, []string{bin, helperArg, "unix", name}, nil)
		if r.ok() || !strings.HasPrefix(r.out, "denied:") {
			t.Errorf("%+v: connect to a host abstract socket: got status %v, output %q, want denied", sb, r.ws, r.out)
		}
	}
}

func TestFileSizeLimitReported(t *testing.T) {
	p := newProfile(t, policy.Sandbox{FileSize: 64 << 10}, Options{})
	r := run(t, p, sh(`exec head -c 1000000 /dev/zero > "$1/big"`, tempDir(t, p)), nil)
	if !FileSizeExceeded(r.ws) {
		t.Fatalf("got status %v (output %q), want killed by SIGXFSZ", r.ws, r.out)
	}
	if got := Explain(r.ws); !strings.Contains(got, "file size limit exceeded") {
		t.Errorf("Explain: got %q, want it to say file size limit exceeded", got)
	}
	if fi, err := os.Stat(filepath.Join(tempDir(t, p), "big")); err != nil || fi.Size() > 64<<10 {
		t.Errorf("file written past the limit: %v, %v", fi, err)
	}
	t.Run("through a shell", func(t *testing.T) {
		r := run(t, p, sh(`head -c 1000000 /dev/zero > "$1/big2"`, tempDir(t, p)), nil)
		if got := Explain(r.ws); !strings.Contains(got, "file size limit") {
			t.Errorf("Explain(%v): got %q, want it to name the file size limit", r.ws, got)
		}
	})
}

func TestLimitsAndIdentityInside(t *testing.T) {
	for _, ns := range []bool{false, true} {
		t.Run(fmt.Sprintf("namespaces=%v", ns), func(t *testing.T) { testLimitsAndIdentity(t, ns) })
	}
}

func testLimitsAndIdentity(t *testing.T, ns bool) {
	p := newProfile(t, policy.Sandbox{NoFile: 64, Procs: 50, FileSize: 1 << 20, AddressSpace: 2 << 30, CPU: 7 * time.Second, Namespaces: ns}, Options{})
	r := run(t, p, []string{"/bin/cat", "/proc/self/limits", "/proc/self/status"}, nil)
	if !r.ok() {
		t.Fatalf("cat: status %v, output %q", r.ws, r.out)
	}
	for _, want := range []string{
		`Max cpu time\s+7\s+8\s`,
		`Max open files\s+64\s+64\s`,
		`Max file size\s+1048576\s+1048576\s`,
		`Max core file size\s+0\s+0\s`,
		`Max processes\s+50\s+50\s`,
		`Max address space\s+2147483648\s+2147483648\s`,
		`NoNewPrivs:\s+1\n`,
		fmt.Sprintf(`Uid:\s+%d\s+%d\s+%d\s+%d\n`, childUID(), childUID(), childUID(), childUID()),
		`CapInh:\s+0000000000000000\n`,
		`CapPrm:\s+0000000000000000\n`,
		`CapEff:\s+0000000000000000\n`,
		`CapAmb:\s+0000000000000000\n`,
	} {
		if !matches(want, r.out) {
			t.Errorf("got no line matching %q in:\n%s", want, r.out)
		}
	}
	if os.Geteuid() == 0 && !matches(`Groups:\s*\n`, r.out) {
		t.Errorf("got supplementary groups, want none:\n%s", r.out)
	}
}

func TestNoStrayDescriptors(t *testing.T) {
	p := newProfile(t, policy.Sandbox{}, Options{})
	cmd := command(t, p, sh(`echo leak >&3`), nil)
	f, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("writing to an inherited fd 3 succeeded, want EBADF (output %q)", out)
	}
}

func TestTrampolineFailsClosed(t *testing.T) {
	dir := worldDir(t, true)
	marker := filepath.Join(dir, "ran")
	good := newProfile(t, policy.Sandbox{Write: []string{dir}}, Options{})
	w, err := good.Wrap(sh(`touch "$1"`, marker), nil)
	if err != nil {
		t.Fatal(err)
	}
	sep := slices.Index(w.Args, "--")
	s, err := tr.Decode(w.Args[2:sep])
	if err != nil {
		t.Fatal(err)
	}
	missing := *s
	missing.Rules = append(slices.Clone(s.Rules), tr.Rule{Path: filepath.Join(dir, "gone"), Access: accRead})
	future := *s
	future.ABI = tr.MaxKnownABI + 1
	header := s.Encode()[0]
	for _, tc := range []struct {
		name string
		prof []string
	}{
		{"garbage profile", []string{"{"}},
		{"no profile", nil},
		{"unknown field", []string{header + " bogus=1"}},
		{"duplicate field", []string{header + " uid=0"}},
		{"other version", []string{"v0" + strings.TrimPrefix(header, "v1")}},
		{"bad rule", []string{header, "zz r /usr"}},
		{"missing required path", missing.Encode()},
		{"unknown abi", future.Encode()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, good, []string{"/bin/true"}, nil)
			cmd.Args = append(append([]string{w.Args[0], w.Args[1]}, tc.prof...), w.Args[sep:]...)
			out, _ := cmd.CombinedOutput()
			ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
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
}

func TestSelfTest(t *testing.T) {
	for _, sb := range []policy.Sandbox{{}, {Namespaces: true}, {Network: true}} {
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
	p, err := New(policy.Sandbox{}, Options{Timeout: time.Second, TempDir: worldDir(t, false)})
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
	for _, want := range []string{"landlock", "landlock tcp", "landlock scope", "namespaces", "network namespace", "rlimits"} {
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
