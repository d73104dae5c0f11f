package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	rexec "github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/policy"
)

// buildBinary builds pkg (relative to the module root) into dir, or returns
// "" when it does not build right now.
func buildBinary(b *testing.B, dir, name, pkg string, static bool) string {
	b.Helper()
	_, file, _, _ := runtime.Caller(0)
	modRoot := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = modRoot
	if static {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Logf("build %s: %v\n%s", pkg, err, msg)
		return ""
	}
	return out
}

// childCPU reports the user+system CPU time of the children waited for
// during the loop, per op: on a shared, loaded machine it is steadier than
// wall time, which mostly measures the scheduler.
func childCPU(b *testing.B, loop func()) {
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &before)
	n := 0
	for b.Loop() {
		loop()
		n++
	}
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "child-cpu-µs/op")
}

// BenchmarkStartExit measures start-to-exit latency of true(1): bare,
// through the relay sandbox (New, Wrap, start, wait, Close, as the relay
// does per command) with each trampoline binary, and through bwrap. The
// trampoline binaries: this test binary; the smallest program that runs the
// trampoline, built with CGO_ENABLED=0; and the relay itself, as built by
// default (cgo, dynamically linked) and with CGO_ENABLED=0.
func BenchmarkStartExit(b *testing.B) {
	trueBin, err := filepath.EvalSymlinks("/usr/bin/true")
	if err != nil {
		b.Skip("no /usr/bin/true")
	}
	// World-readable, so that the command user can run them when the
	// benchmark runs as root.
	dir := b.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	tramps := []struct{ name, exe string }{
		{"testbin", helperBinary(b)},
		{"tiny-static", buildBinary(b, dir, "tiny", "./internal/sandbox/testdata/trampoline", true)},
		{"relay", buildBinary(b, dir, "relay", "./cmd/relay", false)},
		{"relay-static", buildBinary(b, dir, "relay-static", "./cmd/relay", true)},
	}
	runWrapped := func(b *testing.B, sb policy.Sandbox, exe string) {
		childCPU(b, func() {
			p, err := New(sb, benchOptions(exe))
			if err != nil {
				b.Fatal(err)
			}
			w, err := p.Wrap([]string{trueBin}, nil)
			if err != nil {
				b.Fatal(err)
			}
			cmd := &exec.Cmd{Path: w.Path, Args: w.Args, Env: w.Env, Dir: w.Dir, SysProcAttr: w.SysProcAttr}
			cmd.SysProcAttr.Setpgid = true
			sr, sw, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			cmd.ExtraFiles = append([]*os.File{sw}, w.ExtraFiles...)
			out, err := cmd.CombinedOutput()
			sw.Close()
			sr.Close()
			if err != nil {
				b.Fatalf("%v: %s", err, out)
			}
			p.Close()
		})
	}

	b.Run("bare", func(b *testing.B) {
		childCPU(b, func() {
			if err := exec.Command(trueBin).Run(); err != nil {
				b.Fatal(err)
			}
		})
	})
	for _, tr := range tramps {
		if tr.exe == "" {
			continue
		}
		b.Run("sandbox-network-"+tr.name, func(b *testing.B) {
			runWrapped(b, policy.Sandbox{Network: true}, tr.exe)
		})
		b.Run("sandbox-"+tr.name, func(b *testing.B) {
			runWrapped(b, policy.Sandbox{}, tr.exe)
		})
	}
	b.Run("bwrap", func(b *testing.B) {
		bwrap, err := exec.LookPath("bwrap")
		if err != nil {
			b.Skip("bwrap not installed")
		}
		if out, err := exec.Command(bwrap, "--unshare-all", "--ro-bind", "/", "/", trueBin).CombinedOutput(); err != nil {
			b.Skipf("bwrap cannot run here: %v: %s", err, out)
		}
		childCPU(b, func() {
			if err := exec.Command(bwrap, "--unshare-all", "--ro-bind", "/", "/", trueBin).Run(); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// BenchmarkNewWrapClose is the relay's own per-command bookkeeping, without
// starting a process.
func BenchmarkNewWrapClose(b *testing.B) {
	for b.Loop() {
		p, err := New(policy.Sandbox{}, benchOptions(helperBinary(b)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Wrap([]string{"/usr/bin/true"}, nil); err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}

func benchOptions(exe string) Options {
	o := Options{SelfExe: exe, Timeout: 10 * time.Second}
	if os.Geteuid() == 0 {
		o.CommandUser = &testCommandUser
	}
	return o
}

// bwrapView is bubblewrap with a filesystem view comparable to the default
// profile's: read-only /usr and /etc, the merged-/usr links, a fresh /proc,
// a minimal /dev, private /tmp, /var/tmp and /run, and every namespace.
var bwrapView = []string{"--unshare-all", "--die-with-parent", "--new-session",
	"--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
	"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
	"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp", "--tmpfs", "/run", "--remount-ro", "/"}

// BenchmarkDefaultVsBwrap runs true(1) through the default profile as the
// relay does (New, Wrap, the runner, the result), with the static relay
// binary as the trampoline as released, both with a trampoline started
// ahead of the job (warm: the daemon's way) and without (cold: relay
// exec's), and through bubblewrap with a comparable view, alternating cold,
// warm, bwrap in one run. It reports the median of the rounds' wall-time
// ratios against bwrap, and each arm's mean child CPU, the warm arm's
// including the trampoline started ahead for it.
//
//	go test -run '^$' -bench DefaultVsBwrap -benchtime 200x ./internal/sandbox
func BenchmarkDefaultVsBwrap(b *testing.B) {
	trueBin, err := filepath.EvalSymlinks("/usr/bin/true")
	if err != nil {
		b.Skip("no /usr/bin/true")
	}
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		b.Skip("bwrap not installed")
	}
	bwArgs := append(slices.Clone(bwrapView), trueBin)
	if out, err := exec.Command(bwrap, bwArgs...).CombinedOutput(); err != nil {
		b.Skipf("bwrap cannot run here: %v: %s", err, out)
	}
	dir := b.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	relay := os.Getenv("BENCH_RELAY") // a binary kept for perf to find its symbols
	if relay == "" {
		relay = buildBinary(b, dir, "relay-static", "./cmd/relay", true)
	}
	if relay == "" {
		b.Skip("cannot build the relay")
	}
	l := NewLauncher()
	defer l.Close()
	runner := rexec.NewRunner(4)
	runRelay := func(launcher *Launcher) func() {
		return func() {
			o := benchOptions(relay)
			o.Launcher = launcher
			p, err := New(policy.Sandbox{}, o)
			if err != nil {
				b.Fatal(err)
			}
			job, err := runner.Start(context.Background(), "true", 4, rexec.Spec{Argv: []string{trueBin}, Timeout: time.Minute, MaxOutput: 1 << 20, Sandbox: p, RequireSandbox: true})
			if err != nil {
				b.Fatal(err)
			}
			res := job.Wait()
			res.Output.Close()
			p.Close()
			if res.ExitCode != 0 {
				b.Fatalf("true: %s", res.Status())
			}
		}
	}
	runBwrap := func() {
		cmd := exec.Command(bwrap, bwArgs...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("bwrap: %v: %s", err, out)
		}
	}
	arms := []struct {
		name string
		run  func()
	}{{"cold", runRelay(nil)}, {"warm", runRelay(l)}, {"bwrap", runBwrap}}
	wall := make([][]time.Duration, len(arms))
	cpu := make([]time.Duration, len(arms))
	runRelay(l)() // the first warm trampoline
	l.wg.Wait()
	for b.Loop() {
		for i, a := range arms {
			var before, after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_CHILDREN, &before)
			t0 := time.Now()
			a.run()
			wall[i] = append(wall[i], time.Since(t0))
			// The next warm trampoline starts when a job ends: let it
			// finish before the next arm, as it would between commands.
			l.wg.Wait()
			syscall.Getrusage(syscall.RUSAGE_CHILDREN, &after)
			cpu[i] += time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
		}
	}
	med := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	n := float64(len(wall[0]))
	last := len(arms) - 1
	for i, a := range arms {
		b.ReportMetric(float64(med(wall[i]).Microseconds()), a.name+"-µs")
		b.ReportMetric(float64(cpu[i])/n/1e3, a.name+"-cpu-µs")
		if i == last {
			continue
		}
		// Each round ran back to back under the same load: the median
		// of the rounds' ratios is steadier than the ratio of medians.
		ratios := make([]float64, len(wall[i]))
		for j := range ratios {
			ratios[j] = float64(wall[i][j]) / float64(wall[last][j])
		}
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], a.name+"/bwrap")
	}
}
