package sandbox

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/policy"
)

// runJob runs argv as one job of the runner, as the relay does, and returns
// its output and result.
func runJob(t *testing.T, p *Profile, argv, env []string) (string, *exec.Result) {
	t.Helper()
	r := exec.NewRunner(4)
	job, err := r.Start(context.Background(), "t", 4, exec.Spec{Argv: argv, Env: env, Timeout: time.Minute, MaxOutput: 1 << 20, Sandbox: p, RequireSandbox: true})
	if err != nil {
		t.Fatal(err)
	}
	res := job.Wait()
	defer res.Output.Close()
	out, _ := io.ReadAll(must(res.Output.Open()))
	return string(out), res
}

// TestWarmTrampolines: jobs handed to trampolines started ahead behave
// exactly as cold ones: the environment, the status, the view, the
// escapees; and the next job's trampoline is waiting before it is asked.
func TestWarmTrampolines(t *testing.T) {
	l := NewLauncher()
	defer l.Close()
	p := newProfile(t, policy.Sandbox{}, Options{Launcher: l})

	out, res := runJob(t, p, []string{"/usr/bin/env"}, []string{"A=1", "B=two words"})
	if res.ExitCode != 0 || out != "A=1\nB=two words\n" {
		t.Errorf("env: got exit %d, output %q", res.ExitCode, out)
	}
	waitFor(t, "a warm trampoline", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.idle[p.key()] != nil
	})
	l.mu.Lock()
	warmPid := l.idle[p.key()].proc.Pid
	l.mu.Unlock()
	out, res = runJob(t, p, sh(`echo $$; kill -SEGV $$`), nil)
	if pid, _ := strconv.Atoi(strings.TrimSpace(out)); res.Signal != "SIGSEGV" || pid < 2 || pid > 64 {
		t.Errorf("the warm job: got %q, signal %q, want the command as a small pid of its own namespace dying of SIGSEGV", out, res.Signal)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(warmPid)); err == nil {
		// Still there: it must be the one that just ran, now a zombie or gone.
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(warmPid) + "/stat"); !strings.Contains(string(b), ") Z") {
			t.Errorf("the trampoline waiting before the job (pid %d) is still running after it", warmPid)
		}
	}

	marker := "31415926"
	out, _ = runJob(t, p, sh(`(/usr/bin/setsid /bin/sleep `+marker+` &); ( (/bin/sleep `+marker+` &) & ); ls -A /tmp; echo x > /tmp/mine`), nil)
	if strings.TrimSpace(out) != "" {
		t.Errorf("a warm job's /tmp was not empty: %q", out)
	}
	waitFor(t, "the escapees of a warm job dead", func() bool { return len(pidsWith(marker)) == 0 })
}

// TestPrewarm: prewarming many profiles of one kind starts one trampoline
// for it, not one per profile, and the first job takes that one.
func TestPrewarm(t *testing.T) {
	l := NewLauncher()
	defer l.Close()
	p := newProfile(t, policy.Sandbox{}, Options{Launcher: l})
	for range 8 {
		q := newProfile(t, policy.Sandbox{}, Options{Launcher: l})
		q.Prewarm()
	}
	l.wg.Wait()
	l.mu.Lock()
	w, n := l.idle[p.key()], len(l.idle)
	l.mu.Unlock()
	if w == nil || n != 1 {
		t.Fatalf("after prewarming 8 profiles of one kind: %d waiting, want exactly 1, of that kind", n)
	}
	if n := l.started.Load(); n != 1 {
		t.Errorf("%d trampolines started, want 1", n)
	}
	if _, res := runJob(t, p, []string{"/usr/bin/true"}, nil); res.ExitCode != 0 {
		t.Fatalf("true: %s", res.Status())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.idle[p.key()] == w {
		t.Error("the first job did not take the prewarmed trampoline")
	}
}

// TestWarmJobsAreApart: two jobs running at once through the launcher have
// namespaces, /tmp and job of their own.
func TestWarmJobsAreApart(t *testing.T) {
	l := NewLauncher()
	defer l.Close()
	p := newProfile(t, policy.Sandbox{}, Options{Launcher: l})
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _ = runJob(t, p, sh(`readlink /proc/self/ns/pid /proc/self/ns/mnt /proc/self/ns/net /proc/self/ns/user; ls -A /tmp; echo x > /tmp/f; sleep 0.3`), nil)
		}()
	}
	wg.Wait()
	if outs[0] == "" || outs[0] == outs[1] {
		t.Errorf("two concurrent jobs: got %q and %q, want namespaces of their own", outs[0], outs[1])
	}
	for _, o := range outs {
		if strings.Contains(o, "\nf\n") || strings.HasSuffix(o, "f\n") {
			t.Errorf("a job saw the other's /tmp: %q", o)
		}
	}
}

// TestLauncherCloseKillsWaiting: a relay that stops leaves no trampoline
// waiting for a job.
func TestLauncherCloseKillsWaiting(t *testing.T) {
	l := NewLauncher()
	p := newProfile(t, policy.Sandbox{}, Options{Launcher: l})
	runJob(t, p, []string{"/bin/true"}, nil)
	waitFor(t, "a warm trampoline", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.idle[p.key()] != nil
	})
	l.mu.Lock()
	pid := l.idle[p.key()].proc.Pid
	l.mu.Unlock()
	l.Close()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the waiting trampoline %d is alive after Close", pid)
	}
	if _, err := p.Wrap([]string{"/bin/true"}, nil); err == nil {
		t.Error("Wrap through a closed launcher: got no error")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually(t, what, cond)
}

// pidsWith lists the live host pids whose command line holds marker.
func pidsWith(marker string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(b), marker) {
			continue
		}
		if st, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); strings.Contains(string(st), ") Z") {
			continue
		}
		if n, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}
