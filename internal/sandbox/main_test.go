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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
	code := m.Run()
	if helperDir != "" {
		os.RemoveAll(helperDir)
	}
	os.Exit(code)
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

var (
	helperOnce sync.Once
	helperDir  string
	helperBin  string
	helperErr  error
)

// helperBinary is a copy of the test binary in a world-readable directory,
// so that it can run as nobody when the tests run as root.
func helperBinary(t *testing.T) string {
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
		o.SelfExe = selfExe(t)
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.TempDir == "" {
		o.TempDir = t.TempDir()
		os.Chmod(filepath.Dir(o.TempDir), 0o755)
		os.Chmod(o.TempDir, 0o755)
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
	cmd := &exec.Cmd{Path: w.Path, Args: w.Args, Env: w.Env, SysProcAttr: w.SysProcAttr}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return cmd
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
	return result{out: out.String(), ws: cmd.ProcessState.Sys().(syscall.WaitStatus)}
}

func sh(script string, args ...string) []string {
	return append([]string{"/bin/sh", "-c", script, "sh"}, args...)
}

// childUID is the uid commands run as.
func childUID() int {
	if os.Geteuid() == 0 {
		return nobodyID
	}
	return os.Getuid()
}

// startAs starts argv outside any sandbox under the command's identity.
func startAs(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}}
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
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}}}
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

// groupProcs lists the live (not zombie) pids in process group pgid.
func groupProcs(t *testing.T, pgid int) []int {
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
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
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
