package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKillEscapees: a job whose children leave its session, its process
// group and its parentage is killed whole, by each way a job ends, and its
// cgroup is removed.
func TestKillEscapees(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*Job) error
	}{
		{"cgroup.kill", (*Job).Kill},
		{"Close alone", (*Job).Close},
		// The path for kernels before cgroup.kill (Linux 5.14).
		{"freeze and pidfd signals", func(j *Job) error { return kill(j.fd, j.dir, false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := openTree(t)
			j, err := tr.NewJob("escape", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if err := attack(j, tc.stop); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if _, err := os.Stat(j.Path()); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("job cgroup after Close: got %v, want it gone", err)
			}
			if err := j.Close(); err != nil {
				t.Fatalf("second Close: got %v, want nil", err)
			}
			if err := j.Kill(); err != nil {
				t.Fatalf("Kill after Close: got %v, want nil", err)
			}
			if fd := j.FD(); fd != -1 {
				t.Fatalf("FD after Close: got %d, want -1", fd)
			}
		})
	}
}

// TestProcessGroupKillIsNotEnough shows what TestKillEscapees attacks:
// killing the leader's process group, as a timeout did before job cgroups,
// leaves the setsid child running.
func TestProcessGroupKillIsNotEnough(t *testing.T) {
	tr := openTree(t)
	j := newJob(t, tr, "pgrp", Limits{})
	cmd, procs, err := startEscapees(j)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range procs {
			unix.Close(p.fd)
		}
	}()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	if !alive(procs[0].fd, 0) {
		t.Fatal("setsid child died with the process group: the escape test would prove nothing")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(procs[0].fd, 10*time.Second) {
		t.Fatal("setsid child survived Close")
	}
}

// TestNestedCgroupKilled: a job that makes a cgroup of its own inside its
// job cgroup (possible when it runs as the relay's uid) is killed there too.
func TestNestedCgroupKilled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		killFile bool
	}{{"cgroup.kill", true}, {"freeze and pidfd signals", false}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := openTree(t)
			j := newJob(t, tr, "nest", Limits{})
			inner := mkcg(t, filepath.Join(j.Path(), "inner"))
			cmd := startSleep(t, inner)
			pfd := pidfd(t, cmd.Process.Pid)
			if err := kill(j.fd, j.dir, tc.killFile); err != nil {
				t.Fatal(err)
			}
			if alive(pfd, 10*time.Second) {
				t.Fatal("process in a nested cgroup survived")
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(j.Path()); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("job cgroup after Close: got %v, want it gone", err)
			}
		})
	}
}

// TestFDNotInherited: the job's process does not get the descriptor of
// its own cgroup, through which it could reach the tree's files.
func TestFDNotInherited(t *testing.T) {
	tr := openTree(t)
	j := newJob(t, tr, "fd", Limits{})
	cmd := exec.Command("/bin/sh", "-c", `for f in /proc/$$/fd/*; do readlink "$f"; done; true`)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: j.FD()}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), j.Path()) || strings.Contains(string(out), tr.Path()+"\n") {
		t.Fatalf("job inherited a cgroup descriptor: %s", out)
	}
	if fl, err := unix.FcntlInt(uintptr(j.FD()), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Fatalf("FD flags: got %#x (%v), want FD_CLOEXEC", fl, err)
	}
}

// TestStats: a job that burns 200ms of CPU is charged at least about that,
// and a counter of a missing controller reads -1, never 0.
func TestStats(t *testing.T) {
	tr := openTree(t)
	j := newJob(t, tr, "stats", Limits{})
	if out, ok := runIn(t, j, "burn", "200ms"); !ok {
		t.Fatalf("burn: %s", out)
	}
	if err := j.Kill(); err != nil {
		t.Fatal(err)
	}
	s, err := j.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", s)
	if s.CPU < 150*time.Millisecond || s.CPU > time.Minute {
		t.Errorf("CPU: got %v, want about 200ms", s.CPU)
	}
	if ok, _ := tr.Has(Memory); !ok && (s.MemoryPeak != -1 || s.OOMKills != -1) {
		t.Errorf("without the memory controller: got peak %d, oom kills %d, want -1, -1", s.MemoryPeak, s.OOMKills)
	}
	if ok, _ := tr.Has(Pids); !ok && s.PidsPeak != -1 {
		t.Errorf("without the pids controller: got peak %d, want -1", s.PidsPeak)
	}
	if s.MemoryPeak == 0 || s.PidsPeak == 0 {
		t.Errorf("a job that ran reports zero peaks: %+v", s)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Stats(); err == nil {
		t.Error("Stats after Close: got nil error")
	}
}

// TestMemoryMax: a memory bomb is OOM-killed at memory.max, whole.
func TestMemoryMax(t *testing.T) {
	tr := openTree(t)
	needs(t, tr, Memory)
	j := newJob(t, tr, "membomb", Limits{MemoryMax: 64 << 20})
	cmd := helperCmd(t, j, "membomb")
	out, _ := cmd.CombinedOutput()
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("memory bomb: got %v (%s), want killed by SIGKILL", cmd.ProcessState, out)
	}
	j.Kill()
	s, err := j.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.OOMKills < 1 {
		t.Errorf("OOMKills: got %d, want at least 1", s.OOMKills)
	}
	if s.MemoryPeak > 80<<20 {
		t.Errorf("MemoryPeak: got %d, want at most about 64 MiB", s.MemoryPeak)
	}
}

// TestPidsMax: a fork bomb is held at pids.max: fork fails with EAGAIN.
func TestPidsMax(t *testing.T) {
	tr := openTree(t)
	needs(t, tr, Pids)
	const max = 32
	j := newJob(t, tr, "forkbomb", Limits{PidsMax: max})
	out, ok := runIn(t, j, "forkbomb")
	if !ok {
		t.Fatalf("fork bomb: got %q, want held with EAGAIN", out)
	}
	var n int
	if _, err := fmt.Sscanf(out, "held after %d forks", &n); err != nil || n >= max {
		t.Fatalf("fork bomb: got %q, want fewer than %d forks", out, max)
	}
	if s, err := j.Stats(); err != nil || s.PidsPeak > max {
		t.Fatalf("PidsPeak: got %+v (%v), want at most %d", s, err, max)
	}
}

// TestCPUMax: a job over its cpu.max is throttled. Throttling is counted by
// the kernel, so nothing here depends on wall-clock timing.
func TestCPUMax(t *testing.T) {
	tr := openTree(t)
	needs(t, tr, CPU)
	j := newJob(t, tr, "cpu", Limits{CPUMax: 20 * time.Millisecond})
	if b, err := os.ReadFile(filepath.Join(j.Path(), "cpu.max")); err != nil || strings.TrimSpace(string(b)) != "2000 100000" {
		t.Fatalf("cpu.max: got %q (%v), want 2000 100000", b, err)
	}
	if out, ok := runIn(t, j, "burn", "100ms"); !ok {
		t.Fatalf("burn: %s", out)
	}
	b, err := os.ReadFile(filepath.Join(j.Path(), "cpu.stat"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := field(string(b), "nr_throttled"); v == "" || v == "0" {
		t.Fatalf("nr_throttled: got %q, want at least 1 (%s)", v, b)
	}
}

// TestNewJobRefusesMissingControllers: in a tree without controllers every
// limit is refused, with the reason, and no cgroup is made: a limit is never
// reported as enforced when it is not.
func TestNewJobRefusesMissingControllers(t *testing.T) {
	// The parent enables nothing, so the tree has no controllers at all.
	tr, err := Open(mkcg(t, filepath.Join(newParent(t, false), "bare")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile("/proc/self/cgroup")
	pc, _ := parseProcCgroup(string(b))
	for _, tc := range []struct {
		c Controller
		l Limits
	}{
		{Memory, Limits{MemoryMax: 1 << 30}},
		{Pids, Limits{PidsMax: 100}},
		{CPU, Limits{CPUMax: time.Second}},
	} {
		t.Run(string(tc.c), func(t *testing.T) {
			ok, why := tr.Has(tc.c)
			if ok || why == "" {
				t.Fatalf("Has(%s): got %v %q, want false and a reason", tc.c, ok, why)
			}
			if slices.Contains(pc.v1, string(tc.c)) && !strings.Contains(why, "cgroup v1") {
				t.Errorf("reason: got %q, want it to name the cgroup v1 binding", why)
			}
			j, err := tr.NewJob("x", tc.l)
			if err == nil {
				j.Close()
				t.Fatal("NewJob: got nil error")
			}
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), why) {
				t.Errorf("NewJob: got %v, want ErrUnavailable with %q", err, why)
			}
			if _, err := os.Stat(filepath.Join(tr.Path(), JobPrefix+"x")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused job left a cgroup: %v", err)
			}
		})
	}
	// No limits: still a job, killable and accounted.
	j := newJob(t, tr, "nolimits", Limits{})
	if err := attack(j, (*Job).Kill); err != nil {
		t.Fatal(err)
	}
}

// TestNewJobRefusesNames: a job name cannot name another path.
func TestNewJobRefusesNames(t *testing.T) {
	tr := openTree(t)
	parent := filepath.Dir(tr.Path())
	before, beforeParent := ls(t, tr.Path()), ls(t, parent)
	for _, name := range []string{"", "..", ".", "../x", "../../tree", "a/b", "/abs", "x\n0::/", "x y", "x.y", "-\x00", strings.Repeat("a", 65), "ü"} {
		if j, err := tr.NewJob(name, Limits{}); err == nil {
			j.Close()
			t.Errorf("NewJob(%q): got nil error", name)
		}
	}
	if got := ls(t, tr.Path()); !slices.Equal(got, before) {
		t.Errorf("tree after refused names: got %v, want %v", got, before)
	}
	if got := ls(t, parent); !slices.Equal(got, beforeParent) {
		t.Errorf("parent after refused names: got %v, want %v", got, beforeParent)
	}
	newJob(t, tr, "Job_42-a", Limits{})
	if _, err := tr.NewJob("Job_42-a", Limits{}); err == nil {
		t.Error("NewJob of an existing job: got nil error, want a refusal to reuse a cgroup")
	}
}

func TestNewJobRefusesBadLimits(t *testing.T) {
	tr := openTree(t)
	for _, l := range []Limits{{MemoryMax: -1}, {PidsMax: -1}, {CPUMax: -time.Second}, {CPUMax: 5 * time.Millisecond}} {
		if j, err := tr.NewJob("bad", l); err == nil {
			j.Close()
			t.Errorf("NewJob(%+v): got nil error", l)
		}
	}
}

// TestOpenRemovesStale: a crashed relay's job cgroups, with live processes
// and a nested cgroup, are killed and removed on Open; other children are
// left alone.
func TestOpenRemovesStale(t *testing.T) {
	dir := mkcg(t, filepath.Join(newParent(t, false), "tree"))
	stale := mkcg(t, filepath.Join(dir, JobPrefix+"7"))
	nested := mkcg(t, filepath.Join(stale, "inner"))
	other := mkcg(t, filepath.Join(dir, "other"))
	var fds []int
	for _, cg := range []string{stale, nested} {
		fds = append(fds, pidfd(t, startSleep(t, cg).Process.Pid))
	}
	keep := pidfd(t, startSleep(t, other).Process.Pid)

	if _, err := Open(dir); err != nil {
		t.Fatalf("Open: %v", err)
	}
	for i, fd := range fds {
		if alive(fd, 10*time.Second) {
			t.Errorf("stale process %d survived Open", i)
		}
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale job cgroup after Open: got %v, want it gone", err)
	}
	if !alive(keep, 0) {
		t.Error("Open killed a process in a cgroup that is not a job's")
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("Open removed a cgroup that is not a job's: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, dir := range []string{"relative/cgroup", t.TempDir()} {
		if _, err := Open(dir); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Open(%q): got %v, want ErrUnavailable", dir, err)
		}
	}
}

// TestDelegated: a relay started in a delegated cgroup moves itself into
// the leaf and runs a job there; a second relay in the same cgroup is
// refused, since its Open would remove the first one's jobs.
func TestDelegated(t *testing.T) {
	dir := mkcg(t, filepath.Join(newParent(t, false), "relay.service"))
	if out, ok := runHelper(t, dir, -1, "delegated", dir); !ok || out != "ok" {
		t.Fatalf("helper: got %q, want ok", out)
	}
	leaf := filepath.Join(dir, LeafName)
	startSleep(t, leaf)
	out, ok := runHelper(t, dir, -1, "delegated", dir)
	if ok || !strings.Contains(out, "unavailable=true") || !strings.Contains(out, "in use by another relay") {
		t.Fatalf("second relay: got %q, want refused as in use by another relay", out)
	}
}

// TestDelegatedUnprivileged: a relay that is not root manages a subtree
// handed to its uid the way systemd's Delegate=yes does, and is refused one
// that is not, with a message naming the fix.
func TestDelegatedUnprivileged(t *testing.T) {
	parent := newParent(t, false)
	dir := mkcg(t, filepath.Join(parent, "relay.service"))
	chownDelegate(t, dir, unusedUID)
	if out, ok := runHelper(t, dir, unusedUID, "delegated", dir); !ok || out != "ok" {
		t.Fatalf("helper as uid %d: got %q, want ok", unusedUID, out)
	}

	notDelegated := mkcg(t, filepath.Join(parent, "plain.service"))
	out, ok := runHelper(t, notDelegated, unusedUID, "delegated", notDelegated)
	if ok || !strings.Contains(out, "unavailable=true") || !strings.Contains(out, "not delegated to uid 64123") || !strings.Contains(out, "set Delegate=yes") {
		t.Fatalf("Delegated in a cgroup owned by root: got %q, want ErrUnavailable naming Delegate=yes", out)
	}
	out, ok = runHelper(t, notDelegated, unusedUID, "open", notDelegated)
	if ok || !strings.Contains(out, "unavailable=true") || !strings.Contains(out, "not delegated to uid 64123") {
		t.Fatalf("Open of a cgroup owned by root: got %q, want ErrUnavailable", out)
	}
}

// TestDelegatedUnderSystemd: where systemd manages cgroups, writable is not
// delegated: root needs systemd's delegate xattr, and so does a user whose
// cgroup's parent is also theirs (the user manager's tree), while a cgroup
// chowned to a user under a parent they cannot write was handed over.
func TestDelegatedUnderSystemd(t *testing.T) {
	parent := newParent(t, false)
	t.Run("root", func(t *testing.T) {
		dir := mkcg(t, filepath.Join(parent, "root.service"))
		out, ok := runHelper(t, dir, -1, "delegated-systemd", dir)
		if ok || !strings.Contains(out, "unavailable=true") || !strings.Contains(out, "managed by systemd but not delegated") {
			t.Fatalf("unmarked: got %q, want refused", out)
		}
		setxattr(t, dir, "trusted.delegate")
		if out, ok := runHelper(t, dir, -1, "delegated-systemd", dir); !ok {
			t.Fatalf("marked: got %q, want ok", out)
		}
	})
	t.Run("system service with User=", func(t *testing.T) {
		dir := mkcg(t, filepath.Join(parent, "user.service"))
		chownDelegate(t, dir, unusedUID)
		if out, ok := runHelper(t, dir, unusedUID, "delegated-systemd", dir); !ok {
			t.Fatalf("got %q, want ok", out)
		}
	})
	t.Run("user manager", func(t *testing.T) {
		mgr := mkcg(t, filepath.Join(parent, "user@64123.service"))
		chownDelegate(t, mgr, unusedUID)
		dir := mkcg(t, filepath.Join(mgr, "relay.service"))
		chownDelegate(t, dir, unusedUID)
		out, ok := runHelper(t, dir, unusedUID, "delegated-systemd", dir)
		if ok || !strings.Contains(out, "managed by systemd but not delegated") {
			t.Fatalf("unmarked: got %q, want refused", out)
		}
		setxattr(t, dir, "user.delegate")
		if out, ok := runHelper(t, dir, unusedUID, "delegated-systemd", dir); !ok {
			t.Fatalf("marked: got %q, want ok", out)
		}
	})
}

func setxattr(t *testing.T, dir, attr string) {
	t.Helper()
	if err := unix.Setxattr(dir, attr, []byte("1"), 0); err != nil {
		t.Skipf("cannot set %s on a cgroup here: %v", attr, err)
	}
}

// startSleep starts sleep in the cgroup dir, killed when the test ends.
func startSleep(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: openFD(t, dir)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func pidfd(t *testing.T, pid int) int {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// helperCmd is the helper in mode, to be started inside j.
func helperCmd(t *testing.T, j *Job, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(selfExe(t), append([]string{helperArg}, args...)...)
	cmd.Env = []string{"GOMAXPROCS=1", "GOGC=off"}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: j.FD()}
	return cmd
}

// runIn runs the helper inside j and returns its output and whether it
// exited 0.
func runIn(t *testing.T, j *Job, args ...string) (string, bool) {
	t.Helper()
	out, err := helperCmd(t, j, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err == nil
}

func selfExe(t *testing.T) string {
	t.Helper()
	e, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ls(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestConcurrentUse: Kill, Stats and FD from other goroutines while Close
// runs neither race (go test -race) nor use a closed descriptor.
func TestConcurrentUse(t *testing.T) {
	tr := openTree(t)
	j := newJob(t, tr, "concurrent", Limits{})
	startSleep(t, j.Path())
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 10 {
		wg.Add(3)
		go func() { defer wg.Done(); errs <- j.Kill() }()
		go func() { defer wg.Done(); j.FD() }()
		go func() {
			defer wg.Done()
			if _, err := j.Stats(); err != nil && !strings.Contains(err.Error(), "is closed") {
				errs <- err
			}
		}()
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
