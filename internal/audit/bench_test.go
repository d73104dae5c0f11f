package audit

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAppend puts the log's appends next to the disk's raw rate: the
// same-sized line written with one write(2) and fsynced, in the same run
// and directory. The target is append >= 80% of raw (ns/op of raw divided
// by ns/op of append).
func BenchmarkAppend(b *testing.B) {
	r := Record{Type: "exec_end", Outcome: "ok", Command: "uptime", Job: "j42", DurationMS: 12, OutputBytes: 120,
		OutputSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	b.Run("raw-write-fsync", func(b *testing.B) {
		_, _, l := newLog(b, Options{})
		h := mustAppend(b, l, r)
		line := readLines(b, filepath.Join(l.dir, h.File))[1]
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(int64(len(line)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := f.Write(line); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// interleaved alternates one raw write+fsync and one Append, so that
	// both see the same disk and the same neighbours; it reports each
	// one's mean and append's rate as a percentage of raw.
	b.Run("interleaved", func(b *testing.B) {
		_, _, l := newLog(b, Options{})
		h := mustAppend(b, l, r)
		line := readLines(b, filepath.Join(l.dir, h.File))[1]
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var raw, app time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if _, err := f.Write(line); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := l.Append(r); err != nil {
				b.Fatal(err)
			}
			raw += t1.Sub(t0)
			app += time.Since(t1)
		}
		b.StopTimer()
		l.Close()
		b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
		b.ReportMetric(float64(app.Nanoseconds())/float64(b.N), "append-ns/op")
		b.ReportMetric(100*float64(raw)/float64(app), "append%raw")
	})
	for _, sync := range []bool{false, true} {
		name := "append"
		if sync {
			name = "append-syncstate"
		}
		b.Run(name, func(b *testing.B) {
			_, _, l := newLog(b, Options{SyncState: sync})
			h := mustAppend(b, l, r)
			b.SetBytes(int64(len(readLines(b, filepath.Join(l.dir, h.File))[1])))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.Append(r); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			l.Close()
		})
	}
}

// BenchmarkVerify1M verifies a 1M-record log (written once, without fsync)
// and reports records per second; the target is >= 500,000 on one core.
func BenchmarkVerify1M(b *testing.B) {
	const n = 1_000_000
	dir, k0, l := newLog(b, Options{noSync: true})
	exit := 0
	for i := 1; i < n; i++ {
		if _, err := l.Append(Record{Type: "exec_end", Outcome: "ok", Command: "uptime", Job: "j42", Exit: &exit, DurationMS: 12,
			OutputBytes: 120, OutputSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	files := Files(dir)
	var size int64
	for _, f := range files {
		fi, _ := os.Stat(f)
		size += fi.Size()
	}
	b.SetBytes(size)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sum, err := Verify(files, k0, nil)
		if err != nil {
			b.Fatal(err)
		}
		if sum.Records < n {
			b.Fatalf("got %d records, want at least %d", sum.Records, n)
		}
	}
	b.StopTimer()
	// Wall time on a shared machine measures the neighbours too; CPU time
	// is what one core spends.
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(n)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
