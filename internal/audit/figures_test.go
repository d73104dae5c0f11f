package audit

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// showHelperEnv makes the test binary act as "relay audit show -n 10" on
// the directory it names, so that the figures time show as a process, the
// way tail is timed.
const showHelperEnv = "RELAY_AUDIT_FIGURES_SHOW"

func TestMain(m *testing.M) {
	if dir := os.Getenv(showHelperEnv); dir != "" {
		os.Exit(showHelper(dir))
	}
	os.Exit(m.Run())
}

// servedBytes is how much RecordsSince serves after seq.
func servedBytes(files []string, seq uint64) int64 {
	var c countWriter
	RecordsSince(files, seq, &c)
	return int64(c)
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// showHelper prints what relay audit show -n 10 prints.
func showHelper(dir string) int {
	lines, err := Summarize(Files(dir), Filter{}, 10)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, ColumnsHeader)
	for _, l := range lines {
		fmt.Fprintln(w, l.Columns())
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	return 0
}

// cost is one timed run: wall time and the CPU time (user and system,
// from getrusage) of this process, or of the child for a process.
type cost struct{ wall, cpu time.Duration }

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func timed(fn func()) cost {
	c0, t0 := rusage(syscall.RUSAGE_SELF), time.Now()
	fn()
	return cost{time.Since(t0), rusage(syscall.RUSAGE_SELF) - c0}
}

// timedProcess runs a program and returns its cost and its output.
func timedProcess(tb testing.TB, env []string, name string, args ...string) (cost, []byte) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	t0 := time.Now()
	out, err := cmd.Output()
	wall := time.Since(t0)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return cost{wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}, out
}

func median(cs []cost) cost {
	w := make([]time.Duration, len(cs))
	c := make([]time.Duration, len(cs))
	for i := range cs {
		w[i], c[i] = cs[i].wall, cs[i].cpu
	}
	slices.Sort(w)
	slices.Sort(c)
	return cost{w[len(w)/2], c[len(c)/2]}
}

// floorCryptoHMAC does, for each record size, exactly the two HMACs that
// verify needs, with crypto/hmac as anyone would call it: one over the
// record's MAC input, one deriving the next key.
func floorCryptoHMAC(sizes []int32, k0 []byte) {
	buf := make([]byte, MaxRecordBytes+1)
	k := append([]byte(nil), k0...)
	var m [sha256.Size]byte
	for _, n := range sizes {
		h := hmac.New(sha256.New, k)
		h.Write(buf[:int(n)-suffixLen])
		h.Write(closeBrace)
		h.Sum(m[:0])
		h = hmac.New(sha256.New, k)
		h.Write(nextLabel)
		k = h.Sum(k[:0])
	}
}

// floorShared is the same two HMACs as cheaply as this package knows how:
// the sealer, with the pad states shared between a key's two uses.
func floorShared(sizes []int32, k0 []byte) {
	buf := make([]byte, MaxRecordBytes+1)
	s := newSealer(k0)
	defer s.zero()
	for _, n := range sizes {
		s.mac(buf[:int(n)-suffixLen], closeBrace)
		s.next()
	}
}

// floorV2 is the least hashing a format-2 record needs, with the
// package's own primitives: SHA-256 over hprev and T, then the two short
// HMACs (over h, and "next").
func floorV2(sizes []int32, k0 []byte) {
	buf := make([]byte, MaxRecordBytes+1)
	s := newSealer(k0)
	defer s.zero()
	lh := newLinkHash()
	var h [sha256.Size]byte
	for _, n := range sizes {
		h = lh.of(&h, buf[:int(n)-suffixLen-hashFieldLen])
		s.mac(lh.sum[:], nil)
		s.next()
	}
}

// witnessRecords is how many new records the catch-up figure covers.
const witnessRecords = 10_000

// figureRecords is the size of the log the figures are measured on.
const figureRecords = 1_000_000

// BenchmarkAuditFigures prints the audit log's figures on a 1M-record log
// it generates for the run (nothing is cached between runs), measuring
// each figure next to its reference in alternation, round after round, and
// printing medians and their ratios:
//
//	go test -run '^$' -bench BenchmarkAuditFigures -benchtime 1x ./internal/audit
//
// verify is put against the cost of the two HMAC-SHA256 every record
// needs and nothing else, show -n 10 against tail -n 10 of the newest file,
// both as processes, and a filtered show of the whole log against verify.
func BenchmarkAuditFigures(b *testing.B) {
	if b.N > 1 {
		b.Skip("the figures run once: use -benchtime 1x")
	}
	const rounds = 5
	dir := filepath.Join(b.TempDir(), "audit")
	k0 := randomKey(b)
	genStart := time.Now()
	genLog(b, dir, k0, figureRecords, DefaultRotateBytes, stepClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 37*time.Millisecond), benchRecord)
	genTime := time.Since(genStart)
	files := Files(dir)
	newest := files[len(files)-1]
	var sizes []int32
	var total int64
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReaderSize(f, 1<<20)
		for {
			l, err := br.ReadSlice('\n')
			if len(l) > 0 {
				sizes = append(sizes, int32(len(l)))
				total += int64(len(l))
			}
			if err != nil {
				break
			}
		}
		f.Close()
	}
	tailBin, err := exec.LookPath("tail")
	if err != nil {
		b.Skip("no tail on PATH to measure show -n 10 against")
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	helperEnv := []string{showHelperEnv + "=" + dir}

	// The witness figure: a store that last saw the log witnessRecords
	// records before its head, catching up.
	pub, err := AddCheckpointKey(dir, "bench/relay-audit/00000000", nil, false)
	if err != nil {
		b.Fatal(err)
	}
	head := uint64(len(sizes))
	oldNote := signedNoteAt(b, dir, head-witnessRecords)
	newNote := signedNoteAt(b, dir, head)
	fetch := func(since uint64) (io.ReadCloser, error) {
		var buf bytes.Buffer
		if _, err := RecordsSince(files, since, &buf); err != nil {
			return nil, err
		}
		return io.NopCloser(&buf), nil
	}

	var verify, verifyNoKey, fCrypto, fShared, fV2, showIn, showProc, tailProc, byType, byCommand, wHost, wWitness []cost
	var showOut []byte
	count := func(n *int) func(Line) error { return func(Line) error { *n++; return nil } }
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		verify = append(verify, timed(func() {
			sum, err := VerifyDir(dir, k0, nil)
			if err != nil || sum.Records != uint64(len(sizes)) {
				b.Fatalf("verify: %d records, %v; want %d", sum.Records, err, len(sizes))
			}
		}))
		fCrypto = append(fCrypto, timed(func() { floorCryptoHMAC(sizes, k0) }))
		fShared = append(fShared, timed(func() { floorShared(sizes, k0) }))
		fV2 = append(fV2, timed(func() { floorV2(sizes, k0) }))
		verifyNoKey = append(verifyNoKey, timed(func() {
			if _, err := VerifyDir(dir, nil, nil); err != nil {
				b.Fatal(err)
			}
		}))
		var served bytes.Buffer
		wHost = append(wHost, timed(func() {
			if n, err := RecordsSince(files, head-witnessRecords, &served); err != nil || n != witnessRecords {
				b.Fatalf("records since: %d, %v", n, err)
			}
		}))
		store, err := CreateWitnessStore(filepath.Join(b.TempDir(), "witness"), pub)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := store.Witness(oldNote, fetch); err != nil {
			b.Fatal(err)
		}
		wWitness = append(wWitness, timed(func() {
			res, err := store.Witness(newNote, func(uint64) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(served.Bytes())), nil
			})
			if err != nil || res.Records != witnessRecords {
				b.Fatalf("witness: %+v, %v", res, err)
			}
		}))
		store.Close()
		for i := 0; i < 10; i++ {
			showIn = append(showIn, timed(func() {
				lines, err := Summarize(files, Filter{}, 10)
				if err != nil || len(lines) != 10 {
					b.Fatalf("show -n 10: %d lines, %v", len(lines), err)
				}
				for _, l := range lines {
					io.WriteString(io.Discard, l.Columns())
				}
			}))
			c, out := timedProcess(b, helperEnv, self)
			showProc, showOut = append(showProc, c), out
			c, _ = timedProcess(b, nil, tailBin, "-n", "10", newest)
			tailProc = append(tailProc, c)
		}
		var nType, nCommand int
		byType = append(byType, timed(func() {
			if err := Scan(files, Filter{Types: []string{"login"}}, count(&nType)); err != nil {
				b.Fatal(err)
			}
		}))
		byCommand = append(byCommand, timed(func() {
			if err := Scan(files, Filter{Command: "reboot"}, count(&nCommand)); err != nil {
				b.Fatal(err)
			}
		}))
		// benchRecord makes record i a login when i%100 == 0 and a denied
		// reboot when i%100 == 1, for i from 1 (record 0 is init).
		if wantType, wantCommand := (figureRecords-1)/100, (figureRecords+98)/100; nType != wantType || nCommand != wantCommand {
			b.Fatalf("filters matched %d and %d records, want %d and %d", nType, nCommand, wantType, wantCommand)
		}
	}
	b.StopTimer()
	if got := strings.Count(string(showOut), "\n"); got != 11 {
		b.Fatalf("show -n 10 as a process printed %d lines, want a header and 10", got)
	}

	v, fc, fs, f2, vn := median(verify), median(fCrypto), median(fShared), median(fV2), median(verifyNoKey)
	wh, ww := median(wHost), median(wWitness)
	si, sp, tp := median(showIn), median(showProc), median(tailProc)
	ft, fcm := median(byType), median(byCommand)
	rate := func(c cost) string {
		return fmt.Sprintf("%.0fk records/CPU-s", float64(len(sizes))/c.cpu.Seconds()/1000)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	w := os.Stdout
	fmt.Fprintf(w, "\naudit figures: %d records in %d files (%.0f MB, generated in %s), %d rounds alternating, medians; CPU from getrusage\n\n",
		len(sizes), len(files), float64(total)/1e6, genTime.Round(time.Millisecond), rounds)
	fmt.Fprintf(w, "%-44s %10s %10s  %s\n", "what", "wall", "CPU", "")
	row := func(name string, c cost, extra string) {
		fmt.Fprintf(w, "%-44s %10s %10s  %s\n", name, ms(c.wall), ms(c.cpu), extra)
	}
	row("verify (VerifyDir with K0)", v, rate(v))
	row("verify without K0 (links and hashes)", vn, rate(vn))
	row("floor: 2 HMAC-SHA256/record, crypto/hmac", fc, rate(fc))
	row("floor: 2 HMAC-SHA256/record, pads shared", fs, rate(fs))
	row("floor, format 2: SHA-256(T) + 2 short HMACs", f2, rate(f2))
	row("show -n 10, in process", si, "")
	row("show -n 10, a process", sp, "")
	row("tail -n 10 of the newest file, a process", tp, "")
	row("show --type login (1% match), whole log", ft, "")
	row("show --command reboot (1% match), whole log", fcm, "")
	row("witness catch-up, host: records since (10k)", wh, fmt.Sprintf("%.1f MB served", float64(servedBytes(files, head-witnessRecords))/1e6))
	row("witness catch-up, witness: check + store (10k)", ww, "Extends, hashes and checkpoint fsynced")
	fmt.Fprintf(w, "\n%-52s %10s  %s\n", "ratio", "measured", "target")
	ratio := func(name string, x float64, target string) {
		fmt.Fprintf(w, "%-52s %9.2f×  %s\n", name, x, target)
	}
	ratio("verify rate / floor rate (crypto/hmac)", fc.cpu.Seconds()/v.cpu.Seconds(), "≥ 0.9×")
	ratio("verify rate / floor rate (pads shared)", fs.cpu.Seconds()/v.cpu.Seconds(), "≥ 0.9× (format-1 floor)")
	ratio("verify rate / format-2 floor rate", f2.cpu.Seconds()/v.cpu.Seconds(), "≥ 0.9×")
	ratio("show -n 10 / tail -n 10 (processes, wall)", sp.wall.Seconds()/tp.wall.Seconds(), fmt.Sprintf("show ≤ 20 ms (measured %s)", ms(sp.wall)))
	ratio("show --type login / verify (CPU)", ft.cpu.Seconds()/v.cpu.Seconds(), "≤ 2×")
	ratio("show --command reboot / verify (CPU)", fcm.cpu.Seconds()/v.cpu.Seconds(), "≤ 2×")
	fmt.Fprintln(w)
	b.ReportMetric(fc.cpu.Seconds()/v.cpu.Seconds(), "verify/floor")
	b.ReportMetric(fs.cpu.Seconds()/v.cpu.Seconds(), "verify/shared-floor")
	b.ReportMetric(float64(sp.wall)/float64(time.Millisecond), "show-n10-ms")
	b.ReportMetric(float64(tp.wall)/float64(time.Millisecond), "tail-n10-ms")
	b.ReportMetric(ft.cpu.Seconds()/v.cpu.Seconds(), "filtered/verify")
	b.ReportMetric(f2.cpu.Seconds()/v.cpu.Seconds(), "verify/v2-floor")
	b.ReportMetric(float64(wh.cpu+ww.cpu)/float64(time.Millisecond), "witness-10k-cpu-ms")
}
