package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/relaychat/relay/policy"
)

// helperArg runs the test binary as a small helper inside a sandbox.
const helperArg = "__sandbox-test-helper"

func TestMain(m *testing.M) {
	if IsTrampoline(os.Args) {
		Trampoline(os.Args)
	}
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		os.Exit(helper(os.Args[2:]))
	}
	// Every command gets a private /tmp, and a host path under it cannot
	// be declared: the tests' own directories live elsewhere.
	base, err := testBase()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox tests:", err)
		os.Exit(2)
	}
	os.Setenv("TMPDIR", base)
	code := m.Run()
	os.RemoveAll(base)
	os.Exit(code)
}

// testBase makes the directory the tests' temporary files go in: outside
// the view's private directories, and, as root, traversable by the command
// user.
func testBase() (string, error) {
	parent := os.Getenv("RELAY_TEST_BASE")
	if parent == "" {
		if os.Geteuid() == 0 {
			parent = "/srv"
		} else if parent, _ = os.UserCacheDir(); parent == "" {
			return "", errors.New("no directory for test files: set RELAY_TEST_BASE")
		}
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	d, err := os.MkdirTemp(parent, "relay-sandbox-test-")
	if err != nil {
		return "", err
	}
	return d, os.Chmod(d, 0o755)
}

// helper implements the sandboxed probes that shell tools cannot express.
func helper(args []string) int {
	switch args[0] {
	case "ptrace":
		pid, _ := strconv.Atoi(args[1])
		if err := unix.PtraceAttach(pid); err != nil {
			fmt.Printf("denied: %v\n", err)
			return 1
		}
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WALL, nil)
		unix.PtraceDetach(pid)
		fmt.Println("attached")
		return 0
	case "unix":
		c, err := net.Dial("unix", args[1])
		if err != nil {
			fmt.Printf("denied: %v\n", err)
			return 1
		}
		c.Close()
		fmt.Println("connected")
		return 0
	case "loopback":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Printf("listen: %v\n", err)
			return 1
		}
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("loopback ok\n"))
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fmt.Printf("dial: %v\n", err)
			return 1
		}
		b, _ := io.ReadAll(c)
		os.Stdout.Write(b)
		return 0
	case "syscalls":
		for _, name := range args[1:] {
			fmt.Printf("%s %s\n", name, trySyscall(name))
		}
		return 0
	case "kill0":
		pid, _ := strconv.Atoi(args[1])
		if err := unix.Kill(pid, 0); err != nil {
			fmt.Printf("denied: %v\n", err)
			return 1
		}
		fmt.Println("signalled")
		return 0
	}
	return 2
}

// trySyscall makes the named system call with harmless arguments and
// returns the errno's name, or "ok".
func trySyscall(name string) string {
	var e syscall.Errno
	switch name {
	case "ptrace":
		// PTRACE_TRACEME would leave this very process traced by the
		// test; asking about a pid that does not exist has no effect
		// (ESRCH) unless the call is refused.
		var info [128]byte
		_, _, e = syscall.RawSyscall6(syscall.SYS_PTRACE, unix.PTRACE_GETSIGINFO, 1<<22-1, 0, uintptr(unsafe.Pointer(&info[0])), 0, 0)
	case "keyctl":
		_, _, e = syscall.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, ^uintptr(2), 0) // KEY_SPEC_SESSION_KEYRING
	case "unshare":
		_, _, e = syscall.RawSyscall(syscall.SYS_UNSHARE, syscall.CLONE_NEWUSER, 0, 0)
	case "bpf":
		_, _, e = syscall.RawSyscall(unix.SYS_BPF, 0, 0, 0)
	case "perf_event_open":
		_, _, e = syscall.RawSyscall6(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0, 0)
	case "io_uring_setup":
		_, _, e = syscall.RawSyscall(unix.SYS_IO_URING_SETUP, 1, 0, 0)
	case "mount":
		_, _, e = syscall.RawSyscall6(syscall.SYS_MOUNT, 0, 0, 0, 0, 0, 0)
	case "userfaultfd":
		_, _, e = syscall.RawSyscall(unix.SYS_USERFAULTFD, 0, 0, 0)
	case "clone_newuser":
		// Go's own fork, as a compromised Go program would make it.
		pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}})
		if err == nil {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
			return "ok"
		}
		e, _ = err.(syscall.Errno)
	case "clone3":
		_, _, e = syscall.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	case "tiocsti":
		c := byte('x')
		// The high bits make the request 64-bit wide; the kernel only
		// reads the low 32, which is TIOCSTI (bubblewrap's CVE-2019-10063).
		_, _, e = syscall.RawSyscall(syscall.SYS_IOCTL, 0, 1<<32|syscall.TIOCSTI, uintptr(unsafe.Pointer(&c)))
	case "personality":
		_, _, e = syscall.RawSyscall(syscall.SYS_PERSONALITY, 0x0040000, 0, 0) // ADDR_NO_RANDOMIZE
		if e == 0 {
			syscall.RawSyscall(syscall.SYS_PERSONALITY, 0, 0, 0)
		}
	default:
		return "unknown"
	}
	if e == 0 {
		return "ok"
	}
	return unix.ErrnoName(e)
}

// memfd returns a sealed memfd holding s, as Wrap passes the profile.
func memfd(s string) (*os.File, error) {
	fd, err := unix.MemfdCreate("test-profile", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "test-profile")
	if _, err := f.WriteString(s); err != nil {
		return nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return nil, err
	}
	return f, nil
}

func matches(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

var (
	helperOnce sync.Once
	helperDir  string
	helperBin  string
	helperErr  error
)

// helperBinary is a copy of the test binary in a world-readable directory,
// so that it can run as nobody when the tests run as root.
func helperBinary(t testing.TB) string {
	t.Helper()
	helperOnce.Do(func() {
		helperDir, helperErr = os.MkdirTemp("", "sandbox-helper-")
		if helperErr != nil {
			return
		}
		if helperErr = os.Chmod(helperDir, 0o755); helperErr != nil {
			return
		}
		self, err := os.Executable()
		if err != nil {
			helperErr = err
			return
		}
		src, err := os.ReadFile(self)
		if err != nil {
			helperErr = err
			return
		}
		helperBin = filepath.Join(helperDir, "helper")
		helperErr = os.WriteFile(helperBin, src, 0o755)
	})
	if helperErr != nil {
		t.Fatalf("copy helper binary: %v", helperErr)
	}
	return helperBin
}

// worldDir returns a fresh directory that the command's identity can read
// and traverse (and write when writable), so that Landlock, not file
// permissions, is what a test exercises.
func worldDir(t *testing.T, writable bool) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if writable {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func selfExe(t testing.TB) string {
	t.Helper()
	e, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newProfile(t testing.TB, sb policy.Sandbox, o Options) *Profile {
	t.Helper()
	if o.SelfExe == "" {
		// A copy the command user can run when the tests run as root.
		o.SelfExe = helperBinary(t)
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.CommandUser == nil && os.Geteuid() == 0 {
		o.CommandUser = &testCommandUser
	}
	p, err := New(sb, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type result struct {
	out string
	ws  syscall.WaitStatus
}

func (r result) ok() bool { return r.ws.Exited() && r.ws.ExitStatus() == 0 }

// command builds the os/exec command for exactly what Wrap returned, with
// what internal/exec adds: a process group and a parent-death signal.
func command(t testing.TB, p *Profile, argv, env []string) *exec.Cmd {
	t.Helper()
	w, err := p.Wrap(argv, env)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	cmd := &exec.Cmd{Path: w.Path, Args: w.Args, Env: w.Env, Dir: w.Dir, SysProcAttr: w.SysProcAttr}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	sr, sw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sr.Close(); sw.Close() })
	cmd.ExtraFiles = append([]*os.File{sw}, w.ExtraFiles...)
	statusPipes[cmd] = sr
	return cmd
}

// statusPipes holds the read end of each command's status pipe, which
// run reads the command's own wait status from.
var statusPipes = map[*exec.Cmd]*os.File{}

// commandStatus returns the wait status of the command inside the
// sandbox, as the runner would report it.
func commandStatus(cmd *exec.Cmd) syscall.WaitStatus {
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	sr := statusPipes[cmd]
	delete(statusPipes, cmd)
	if sr == nil {
		return ws
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	var b [4]byte
	if n, _ := io.ReadFull(sr, b[:]); n == 4 {
		ws = syscall.WaitStatus(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
	}
	return ws
}

// run runs argv in the sandbox and returns its combined output and status.
func run(t *testing.T, p *Profile, argv, env []string) result {
	t.Helper()
	cmd := command(t, p, argv, env)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(2 * time.Minute): // hang guard only
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	err := cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	return result{out: out.String(), ws: commandStatus(cmd)}
}

func sh(script string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", script, "sh"}, args...)
}

// testCommandUser is who commands run as when the tests run as root: ids
// no account on a test machine uses.
var testCommandUser = Identity{UID: 64123, GID: 64123}

// childUID is the uid commands run as.
func childUID() int {
	if os.Geteuid() == 0 {
		return testCommandUser.UID
	}
	return os.Getuid()
}

// startAs starts argv outside any sandbox under the command's identity.
func startAs(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(testCommandUser.UID), Gid: uint32(testCommandUser.GID), Groups: []uint32{}}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// runAs runs argv outside any sandbox under the command's identity.
func runAs(t *testing.T, argv ...string) result {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(testCommandUser.UID), Gid: uint32(testCommandUser.GID), Groups: []uint32{}}}
	}
	out, _ := cmd.CombinedOutput()
	return result{out: string(out), ws: cmd.ProcessState.Sys().(syscall.WaitStatus)}
}

// nsProcs lists the pids that share the pid namespace inode ns.
func nsProcs(t *testing.T, ns string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && l == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitLine reads r until a line equal to want, or fails.
func waitLine(t *testing.T, r io.Reader, want string) {
	t.Helper()
	var buf []byte
	b := make([]byte, 256)
	for {
		n, err := r.Read(b)
		buf = append(buf, b[:n]...)
		for _, l := range strings.Split(string(buf), "\n") {
			if l == want {
				return
			}
		}
		if err != nil {
			t.Fatalf("waiting for %q: %v (got %q)", want, err, buf)
		}
	}
}
