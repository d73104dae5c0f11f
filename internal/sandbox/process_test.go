package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/cgroup"
	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/policy"
)

// procSession returns the session id of pid, or -1 if it is gone.
func procSession(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 4 || f[0] == "Z" {
		return -1
	}
	sid, _ := strconv.Atoi(f[3])
	return sid
}

// eventually polls cond; the deadline is only a hang guard.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestForkBombContained(t *testing.T) {
	const procs = 20
	bomb := `(i=0; while [ $i -lt 2000 ]; do /bin/sleep 1000 & i=$((i+1)); done) 2>/dev/null; echo done; exec /bin/sleep 1000`
	{
		{
			p := newProfile(t, policy.Sandbox{Procs: procs}, Options{})
			cmd := command(t, p, sh(bomb), nil)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			killed := false
			kill := func() {
				if !killed {
					killed = true
					syscall.Kill(-pid, syscall.SIGKILL) // what the runner does on timeout
					cmd.Wait()
				}
			}
			defer kill()
			nsLink, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
			// The trampoline's init counts against the limit too.
			count := func() int { return len(nsProcs(t, nsLink)) - 1 }
			waitLine(t, out, "done")

			n := count()
			if n > procs {
				t.Errorf("got %d processes in the sandbox, want at most %d", n, procs)
			}
			if os.Geteuid() == 0 && n < procs/2 {
				t.Errorf("got %d processes in the sandbox: the bomb never reached its limit of %d", n, procs)
			}
			if err := osexec.Command("/bin/true").Run(); err != nil {
				t.Errorf("the relay cannot start a process while the bomb is contained: %v", err)
			}

			kill()
			eventually(t, "every process of the bomb is dead", func() bool { return len(nsProcs(t, nsLink)) == 0 })
		}
	}
}

// TestEscapeesDie: a setsid child and a double fork leave the command's
// session and process group, and still die with the job: when the runner
// kills it (a timeout, /kill, /lock), and when the command exits by itself.
func TestEscapeesDie(t *testing.T) {
	for _, how := range []string{"killed", "exits"} {
		t.Run(how, func(t *testing.T) { testEscapeesDie(t, how) })
	}
}

func testEscapeesDie(t *testing.T, how string) {
	p := newProfile(t, policy.Sandbox{}, Options{})
	last := `exec /bin/sleep 1000`
	if how == "exits" {
		last = `read line; exit 0`
	}
	cmd := command(t, p, sh(`(/usr/bin/setsid /bin/sleep 1000 &); ( (/bin/sleep 1000 &) & ); echo started; `+last), nil)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { syscall.Kill(-pid, syscall.SIGKILL); cmd.Wait() }()
	nsLink, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "started")

	// Find the child that escaped the session, and the double-forked one
	// whose parent is gone.
	escaped, orphans := 0, 0
	eventually(t, "the setsid child and the orphan are running", func() bool {
		escaped, orphans = 0, 0
		for _, q := range nsProcs(t, nsLink) {
			if s := procSession(q); s != -1 && s != procSession(pid) {
				escaped = q
			}
			if procParent(q) == pid && procComm(q) == "sleep" {
				orphans++
			}
		}
		return escaped != 0 && orphans >= 1
	})

	if how == "killed" {
		// The timeout: the runner kills the process group.
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	} else {
		stdin.Close()
	}
	cmd.Wait()
	eventually(t, "every process of the job is dead", func() bool {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", escaped))
		return l != nsLink && len(nsProcs(t, nsLink)) == 0
	})
}

// procParent returns the parent pid of pid, or -1 if it is gone.
func procParent(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return -1
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func procComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// testCgroups returns a cgroup subtree for the test's jobs, or skips where
// this host gives none.
func testCgroups(t *testing.T) *cgroup.Tree {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	mount := ""
	for _, l := range strings.Split(string(b), "\n") {
		if _, post, ok := strings.Cut(l, " - "); ok && strings.HasPrefix(post, "cgroup2 ") {
			mount = strings.Fields(l)[4]
			break
		}
	}
	if mount == "" {
		t.Skip("no cgroup2 mount on this host")
	}
	dir, err := os.MkdirTemp(mount, "relay-sandbox-test-")
	if err != nil {
		t.Skipf("cannot make a test cgroup under %s: %v", mount, err)
	}
	tree, err := cgroup.Open(dir)
	if err != nil {
		os.Remove(dir)
		t.Skipf("test cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return tree
}

// TestJobCgroup: where the relay has a cgroup subtree, every job is born in
// a cgroup of its own, its accounting reaches the result, and the cgroup is
// gone once the job is.
func TestJobCgroup(t *testing.T) {
	tree := testCgroups(t)
	p := newProfile(t, policy.Sandbox{}, Options{Cgroups: tree})
	r := exec.NewRunner(1)
	spec := exec.Spec{Argv: sh(`grep '^0::' /proc/self/cgroup; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 0.5`), Timeout: time.Minute, MaxOutput: 1 << 20, Sandbox: p, RequireSandbox: true}
	job, err := r.Start(context.Background(), "t", 1, spec)
	if err != nil {
		t.Fatal(err)
	}
	members := 0
	eventually(t, "the job runs in a job cgroup of the tree", func() bool {
		ents, _ := os.ReadDir(tree.Path())
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), cgroup.JobPrefix) {
				b, _ := os.ReadFile(filepath.Join(tree.Path(), e.Name(), "cgroup.procs"))
				members = len(strings.Fields(string(b)))
			}
		}
		return members >= 2 // the trampoline's init and the shell
	})
	res := job.Wait()
	defer res.Output.Close()
	out, _ := io.ReadAll(must(res.Output.Open()))
	// Inside its cgroup namespace the job's cgroup is the root.
	if res.ExitCode != 0 || strings.TrimSpace(string(out)) != "0::/" {
		t.Errorf("got exit %d, cgroup %q, want 0::/ (the job's own cgroup as its root)", res.ExitCode, out)
	}
	if res.CPU <= 0 {
		t.Errorf("got CPU %v, want the job's accounted CPU time", res.CPU)
	}
	ents, _ := os.ReadDir(tree.Path())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), cgroup.JobPrefix) {
			t.Errorf("job cgroup %s left behind", e.Name())
		}
	}
	if ok, why := tree.Has(cgroup.Memory); ok != (res.MemoryPeak >= 0) {
		t.Errorf("memory controller %v (%s), got MemoryPeak %d", ok, why, res.MemoryPeak)
	}
}

// TestJobCgroupLimits: a memory bomb and a fork bomb are held by the job's
// cgroup where its controllers exist.
func TestJobCgroupLimits(t *testing.T) {
	tree := testCgroups(t)
	for _, c := range []cgroup.Controller{cgroup.Memory, cgroup.Pids} {
		t.Run(string(c), func(t *testing.T) {
			if ok, why := tree.Has(c); !ok {
				t.Skip(why)
			}
			sb := policy.Sandbox{Memory: 64 << 20, AddressSpace: 8 << 30, Procs: 40}
			script := `head -c 300000000 /dev/zero | tail -c 1 >/dev/null; echo survived`
			if c == cgroup.Pids {
				script = `(i=0; while [ $i -lt 500 ]; do /bin/sleep 30 & i=$((i+1)); done) 2>/dev/null; ls /proc | grep -c '^[0-9]'`
			}
			p := newProfile(t, sb, Options{Cgroups: tree})
			r := exec.NewRunner(1)
			job, err := r.Start(context.Background(), "t", 1, exec.Spec{Argv: sh(script), Timeout: time.Minute, MaxOutput: 1 << 20, Sandbox: p, RequireSandbox: true})
			if err != nil {
				t.Fatal(err)
			}
			res := job.Wait()
			defer res.Output.Close()
			out, _ := io.ReadAll(must(res.Output.Open()))
			switch c {
			case cgroup.Memory:
				if strings.Contains(string(out), "survived") && res.OOMKills < 1 {
					t.Errorf("a 300 MB buffer fit in 64 MiB: output %q, oom kills %d", out, res.OOMKills)
				}
			case cgroup.Pids:
				if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); n > 56 {
					t.Errorf("got %d processes, want at most pids.max", n)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
