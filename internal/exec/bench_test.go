package exec

import (
	"bufio"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkTrue runs /bin/true through the Runner and through bare
// os/exec, alternating in one loop so that both see the same machine, and
// reports the ratio of the medians; the target is Runner <= 1.3x bare.
//
//	go test -run '^$' -bench True -benchtime 2000x ./internal/exec
func BenchmarkTrue(b *testing.B) {
	r := NewRunner(1)
	s := Spec{Argv: []string{"/bin/true"}, Dir: "/", Timeout: hangGuard, MaxOutput: 1 << 20, SpoolDir: b.TempDir()}
	var bare, runner []time.Duration
	for b.Loop() {
		t0 := time.Now()
		cmd := osexec.Command("/bin/true")
		cmd.Env = []string{}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		j, err := r.Start(context.Background(), "true", 1, s)
		if err != nil {
			b.Fatal(err)
		}
		res := j.Wait()
		res.Output.Close()
		if res.ExitCode != 0 {
			b.Fatal(res.ExitCode)
		}
		bare, runner = append(bare, t1.Sub(t0)), append(runner, time.Since(t1))
	}
	mb, mr := medianOf(bare), medianOf(runner)
	b.ReportMetric(float64(mb.Microseconds()), "bare-µs")
	b.ReportMetric(float64(mr.Microseconds()), "runner-µs")
	b.ReportMetric(float64(mr)/float64(mb), "runner/bare")
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkPeakRSS measures how far the relay's peak RSS rises while a
// command prints 1 GiB with a 16 MiB cap; the target is < 32 MiB. VmHWM is
// process-wide, so a fresh child test process does the measuring.
func BenchmarkPeakRSS(b *testing.B) {
	for b.Loop() {
		cmd := osexec.Command(testExe(b), "-test.run=^$")
		cmd.Env = []string{"RELAY_EXEC_HELPER=rss", "RELAY_SPOOL=" + b.TempDir()}
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		var base, peak, written int64
		if _, err := fmt.Sscanf(string(out), "%d %d %d", &base, &peak, &written); err != nil {
			b.Fatalf("child said %q", out)
		}
		b.ReportMetric(float64(peak-base)/(1<<20), "MiB-above-baseline")
		b.ReportMetric(float64(written)/(1<<30), "GiB-written")
	}
}

func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// rssChild runs in the child process of BenchmarkPeakRSS.
func rssChild() {
	r := NewRunner(1)
	warm := Spec{Argv: []string{"/bin/true"}, Dir: "/", Timeout: hangGuard, MaxOutput: 16 << 20, SpoolDir: os.Getenv("RELAY_SPOOL")}
	j, _ := r.Start(context.Background(), "warm", 1, warm)
	j.Wait().Output.Close()
	base := vmHWM()
	s := warm
	s.Argv = []string{"/usr/bin/head", "-c", "1G", "/dev/zero"}
	j, err := r.Start(context.Background(), "big", 1, s)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	res := j.Wait()
	res.Output.Close()
	fmt.Println(base, vmHWM(), res.OutputBytes)
}
