package cgroup

import (
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTrue is what a job cgroup adds to a command's start-to-exit:
// each iteration runs /bin/true plain (A) and then through NewJob, a start
// inside the job, Close (B), so that both see the same machine; it reports
// each side's time and B/A.
func BenchmarkTrue(b *testing.B) {
	tr := openTree(b)
	var plain, job time.Duration
	for i := range b.N {
		start := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		j, err := tr.NewJob("bench"+strconv.Itoa(i), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: j.FD()}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
		plain, job = plain+mid.Sub(start), job+time.Since(mid)
	}
	b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N), "plain-ns/op")
	b.ReportMetric(float64(job.Nanoseconds())/float64(b.N), "job-ns/op")
	b.ReportMetric(float64(job)/float64(plain), "job/plain")
}
