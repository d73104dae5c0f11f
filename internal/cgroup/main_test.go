package cgroup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperArg runs the test binary as a helper: a relay calling Delegated
// from inside a test cgroup, or a hostile job.
const helperArg = "__cgroup-test-helper"

// unusedUID owns the subtrees of the unprivileged tests.
const unusedUID = 64123

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		os.Exit(helper(os.Args[2], os.Args[3:]))
	}
	code := m.Run()
	if helperDir != "" {
		os.RemoveAll(helperDir)
	}
	os.Exit(code)
}

func helper(mode string, args []string) int {
	switch mode {
	case "delegated", "delegated-systemd":
		// args: the tree Delegated must find.
		if mode == "delegated-systemd" {
			systemdRunning = func() bool { return true }
		}
		if err := delegatedHelper(args[0]); err != nil {
			fmt.Printf("unavailable=%v: %v\n", errors.Is(err, ErrUnavailable), err)
			return 1
		}
		fmt.Println("ok")
		return 0
	case "open":
		if _, err := Open(args[0]); err != nil {
			fmt.Printf("unavailable=%v: %v\n", errors.Is(err, ErrUnavailable), err)
			return 1
		}
		fmt.Println("ok")
		return 0
	case "burn":
		// Burn CPU until this process has used the given amount.
		want, _ := time.ParseDuration(args[0])
		for {
			var ru unix.Rusage
			unix.Getrusage(unix.RUSAGE_SELF, &ru)
			if time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) >= want {
				return 0
			}
		}
	case "membomb":
		var keep [][]byte
		for range 4096 {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Printf("not held: %d MiB\n", len(keep))
		return 1
	case "forkbomb":
		// A raw fork keeps the Go runtime out of it: no new thread, and
		// the child only ever blocks in ppoll.
		for i := range 100000 {
			pid, _, e := unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
			if e != 0 {
				fmt.Printf("held after %d forks: %v\n", i, e)
				if e == unix.EAGAIN {
					return 0
				}
				return 1
			}
			if pid == 0 {
				// Let go of the test's output pipe, which would
				// otherwise stay open, and the test waiting on
				// it, until the job is killed after the wait.
				unix.RawSyscall(unix.SYS_CLOSE, 1, 0, 0)
				unix.RawSyscall(unix.SYS_CLOSE, 2, 0, 0)
				for {
					unix.RawSyscall6(unix.SYS_PPOLL, 0, 0, 0, 0, 0, 0)
				}
			}
		}
		fmt.Println("not held")
		return 1
	}
	return 2
}

// delegatedHelper is a relay starting in a delegated cgroup: Delegated
// (twice: a second call must find the same tree), then a job attacked by
// escaping children.
func delegatedHelper(want string) error {
	t1, err := Delegated()
	if err != nil {
		return err
	}
	t2, err := Delegated()
	if err != nil {
		return fmt.Errorf("second Delegated: %w", err)
	}
	if t1.Path() != want || t2.Path() != want {
		return fmt.Errorf("got trees %s and %s, want %s", t1.Path(), t2.Path(), want)
	}
	b, _ := os.ReadFile("/proc/self/cgroup")
	if pc, err := parseProcCgroup(string(b)); err != nil || filepath.Base(pc.path) != LeafName {
		return fmt.Errorf("relay is in cgroup %q (%v), want its leaf %s", pc.path, err, LeafName)
	}
	j, err := t1.NewJob("1", Limits{})
	if err != nil {
		return err
	}
	if err := attack(j, (*Job).Kill); err != nil {
		return err
	}
	if err := j.Close(); err != nil {
		return err
	}
	if _, err := os.Stat(j.Path()); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("job cgroup after Close: got %v, want it gone", err)
	}
	return nil
}

// escapeScript starts two children that leave the leader's reach: one in a
// new session (and so a new process group), one double-forked and
// reparented away from the leader. Each prints its role and pid before it
// becomes sleep.
const escapeScript = `setsid sh -c 'echo setsid $$; exec sleep 1000' &
(sh -c 'echo double $$; exec sleep 1000' &)
echo leader $$
exec sleep 1000`

// attack starts escapeScript in j, checks that its children really escaped
// the leader's process group, session and parentage, runs stop, and
// checks that every one of them is dead. Processes are watched through
// pidfds, so a reused pid cannot pass for a live one.
func attack(j *Job, stop func(*Job) error) error {
	cmd, procs, err := startEscapees(j)
	if err != nil {
		return err
	}
	defer cmd.Process.Kill()
	defer func() {
		for _, p := range procs {
			unix.Close(p.fd)
		}
	}()
	if err := stop(j); err != nil {
		return err
	}
	for _, p := range procs {
		if alive(p.fd, 10*time.Second) {
			return fmt.Errorf("pid %d (%s) survived", p.pid, p.what)
		}
	}
	cmd.Wait()
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("leader: got %v, want killed by SIGKILL", cmd.ProcessState)
	}
	return nil
}

type proc struct {
	pid  int
	fd   int // pidfd
	what string
}

// startEscapees starts escapeScript inside j and returns its processes,
// having checked that each is in j and that the children escaped.
func startEscapees(j *Job) (*exec.Cmd, []proc, error) {
	cmd := exec.Command("/bin/sh", "-c", escapeScript)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, UseCgroupFD: true, CgroupFD: j.FD()}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start in job cgroup: %w", err)
	}
	var procs []proc
	fail := func(err error) (*exec.Cmd, []proc, error) {
		cmd.Process.Kill()
		cmd.Wait()
		for _, p := range procs {
			unix.PidfdSendSignal(p.fd, unix.SIGKILL, nil, 0)
			unix.Close(p.fd)
		}
		return nil, nil, err
	}
	sc := bufio.NewScanner(out)
	pids := map[string]int{}
	for len(pids) < 3 && sc.Scan() {
		what, n, _ := strings.Cut(sc.Text(), " ")
		pid, err := strconv.Atoi(n)
		if err != nil {
			return fail(fmt.Errorf("reading pids: %q", sc.Text()))
		}
		pids[what] = pid
	}
	for _, what := range []string{"setsid", "double", "leader"} {
		if pids[what] == 0 {
			return fail(fmt.Errorf("no pid from the %s process (%v)", what, sc.Err()))
		}
		fd, err := unix.PidfdOpen(pids[what], 0)
		if err != nil {
			return fail(fmt.Errorf("pidfd_open %d: %w", pids[what], err))
		}
		procs = append(procs, proc{pid: pids[what], fd: fd, what: what})
	}
	leader := cmd.Process.Pid
	if procs[2].pid != leader {
		return fail(fmt.Errorf("leader printed pid %d, started %d", procs[2].pid, leader))
	}
	// Taken while the pidfds pin the processes; alive afterwards means
	// the numbers still name them.
	st := map[int][]string{}
	for _, p := range procs {
		b, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
		c, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.pid))
		if err := errors.Join(err1, err2); err != nil || !alive(p.fd, 0) {
			return fail(fmt.Errorf("%s %d: %v", p.what, p.pid, err))
		}
		if pc, err := parseProcCgroup(string(c)); err != nil || filepath.Base(pc.path) != filepath.Base(j.Path()) {
			return fail(fmt.Errorf("%s %d is in cgroup %q (%v), want %s", p.what, p.pid, pc.path, err, j.Path()))
		}
		// pid (comm) state ppid pgrp session ...
		st[p.pid] = strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	}
	lead := st[leader]
	if s := st[procs[0].pid]; s[3] == lead[3] || s[2] == lead[2] {
		return fail(fmt.Errorf("setsid child shares the leader's session or group: %v vs %v", s, lead))
	}
	if s := st[procs[1].pid]; s[1] == strconv.Itoa(leader) {
		return fail(fmt.Errorf("double-forked child is still the leader's child: %v", s))
	}
	return cmd, procs, nil
}

// alive reports whether the process behind pidfd is still running after
// waiting up to d for it to exit. A pidfd polls readable once the process
// has exited, zombie or not.
func alive(pidfd int, d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d/time.Millisecond))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n == 0
	}
}

// mountRoot is the root directory of the cgroup2 hierarchy, where tests
// make their own subtrees; it skips the test when it cannot.
func mountRoot(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make test cgroups")
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := parseMountinfo(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.fstype == "cgroup2" && m.root == "/" && isCgroup2(m.point) && writable(m.point) == nil {
			return m.point
		}
	}
	t.Skip("no writable cgroup2 mount")
	return ""
}

// newParent makes a fresh cgroup under the hierarchy's root, removed with
// everything in it when the test ends. With enable, it passes on to its
// children the controllers its parent gives it.
func newParent(t testing.TB, enable bool) string {
	t.Helper()
	root := mountRoot(t)
	b := make([]byte, 6)
	rand.Read(b)
	p := filepath.Join(root, "relaytest-"+hex.EncodeToString(b))
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Skipf("cannot make a test cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := destroy(p); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	if enable {
		avail, _ := os.ReadFile(filepath.Join(p, "cgroup.controllers"))
		for _, c := range strings.Fields(string(avail)) {
			if slices.Contains(controllers, Controller(c)) {
				os.WriteFile(filepath.Join(p, "cgroup.subtree_control"), []byte("+"+c), 0)
			}
		}
	}
	return p
}

// mkcg makes the cgroup dir.
func mkcg(t testing.TB, dir string) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openTree opens a fresh tree that gets whatever controllers the host can
// give a test.
func openTree(t testing.TB) *Tree {
	t.Helper()
	tr, err := Open(mkcg(t, filepath.Join(newParent(t, true), "tree")))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return tr
}

func newJob(t *testing.T, tr *Tree, name string, l Limits) *Job {
	t.Helper()
	j, err := tr.NewJob(name, l)
	if err != nil {
		t.Fatalf("NewJob: %v", err)
	}
	t.Cleanup(func() {
		if err := j.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return j
}

// needs skips the test, saying why, unless tr has controller c.
func needs(t *testing.T, tr *Tree, c Controller) {
	t.Helper()
	if ok, why := tr.Has(c); !ok {
		t.Skipf("no %s controller here: %s", c, why)
	}
}

// openFD opens the cgroup dir as CgroupFD wants it.
func openFD(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

var (
	helperOnce sync.Once
	helperDir  string
	helperBin  string
	helperErr  error
)

// helperBinary is a copy of the test binary that unusedUID can run.
func helperBinary(t *testing.T) string {
	t.Helper()
	helperOnce.Do(func() {
		if helperDir, helperErr = os.MkdirTemp("", "cgroup-helper-"); helperErr != nil {
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

// runHelper runs the helper in the cgroup dir, as uid when uid >= 0, and
// returns its output and whether it exited 0.
func runHelper(t *testing.T, dir string, uid int, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(helperBinary(t), append([]string{helperArg}, args...)...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: openFD(t, dir)}
	if uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run helper: %v", err)
	}
	return strings.TrimSpace(string(out)), err == nil
}

// chownDelegate hands dir to uid the way systemd's Delegate=yes does.
func chownDelegate(t *testing.T, dir string, uid int) {
	t.Helper()
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(dir, f), uid, uid); err != nil {
			t.Fatal(err)
		}
	}
}
