package audit

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// genLog writes, straight into dir, the log that InitWith followed by Open
// and n-1 Appends of rec(1), rec(2), ... would write with the clock now and
// the rotation size rotate: the same lines, files and key state, without an
// fsync per record or a key state write per record, so that benchmarks can
// build a 1M-record log in seconds. TestGenLogMatchesWriter holds it to the
// real writer byte for byte.
func genLog(tb testing.TB, dir string, k0 []byte, n int, rotate int64, now func() time.Time, rec func(i int) Record) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	s := newSealer(k0)
	defer s.zero()
	var (
		fileNo int
		name   string
		f      *os.File
		w      *bufio.Writer
		size   int64
		seq    uint64
		prev   [macHex]byte
		hprev  [32]byte
		buf    []byte
		lh     = newLinkHash()
	)
	openNext := func() {
		if f != nil {
			if err := w.Flush(); err != nil {
				tb.Fatal(err)
			}
			f.Close()
		}
		fileNo++
		name = nameFor(fileNo)
		var err error
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			tb.Fatal(err)
		}
		w, size = bufio.NewWriterSize(f, 1<<20), 0
	}
	write := func(r *Record) {
		body, err := encodeBody(r)
		if err != nil {
			tb.Fatal(err)
		}
		var p []byte
		if seq > 0 {
			p = prev[:]
		}
		buf, hprev, err = appendLine(buf[:0], s, lh, seq+1, now(), p, &hprev, body)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(buf)
		size += int64(len(buf))
		seq++
		copy(prev[:], buf[len(buf)-suffixLen+len(prefixMAC):])
		s.next()
	}
	openNext()
	write(&Record{Type: "init", Outcome: "ok", Detail: "new audit log"})
	for i := 1; i < n; i++ {
		r := rec(i)
		body, err := encodeBody(&r)
		if err != nil {
			tb.Fatal(err)
		}
		if rotate > 0 && size > 0 && size+int64(len(body)+suffixLen+200) > rotate {
			prevName, prevSize := name, size
			openNext()
			write(&Record{Type: "rotate", Outcome: "ok", Detail: fmt.Sprintf("continues %s (%d bytes)", prevName, prevSize)})
		}
		write(&r)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	st := &keyState{Seq: seq, Key: append([]byte(nil), s.key[:]...), MAC: string(prev[:]), File: name, Size: size}
	defer st.zero()
	if err := os.WriteFile(filepath.Join(dir, StateFile), st.encode(), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// benchRecord is the mix of records the figures use: mostly commands and
// their results, a login now and then, and denials, with sizes close to
// what a relay writes (about 350 bytes a line).
func benchRecord(i int) Record {
	exit := i % 3
	switch {
	case i%100 == 0:
		return Record{Type: "login", Outcome: "ok", UserID: 42, ChatID: 42, Detail: "totp"}
	case i%100 == 1:
		return Record{Type: "request", Outcome: "denied", UserID: 42, ChatID: 42, Command: "reboot", Reason: "no session"}
	case i%2 == 0:
		return Record{Type: "request", Outcome: "ok", UserID: 42, ChatID: 42, Command: "uptime",
			Argv: []string{"/usr/bin/uptime"}, Workdir: "/", Sandbox: "default", Job: fmt.Sprintf("j%d", i)}
	}
	return Record{Type: "exec_end", Outcome: "ok", Command: "uptime", Job: fmt.Sprintf("j%d", i-1), Exit: &exit, DurationMS: 12,
		OutputBytes: 120, OutputSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
}

// stepClock returns a clock that starts at t0 and moves by step per call.
func stepClock(t0 time.Time, step time.Duration) func() time.Time {
	t := t0
	return func() time.Time { t = t.Add(step); return t }
}

func randomKey(tb testing.TB) []byte {
	k := make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestGenLogMatchesWriter proves that the benchmarks' fast generator
// writes exactly what the real writer writes, rotation included, so that
// figures measured on its output are figures for a real log.
func TestGenLogMatchesWriter(t *testing.T) {
	const n = 700
	const rotate = 40_000
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k0 := randomKey(t)

	real := filepath.Join(t.TempDir(), "real")
	clk := stepClock(t0, 1500*time.Microsecond)
	got, err := InitWith(real, nil, InitOptions{Now: clk, Rand: bytes.NewReader(k0)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, k0) {
		t.Fatal("InitWith did not take K0 from Rand")
	}
	l, err := Open(real, Options{RotateBytes: rotate, Now: clk, noSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		mustAppend(t, l, benchRecord(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	gen := filepath.Join(t.TempDir(), "gen")
	genLog(t, gen, k0, n, rotate, stepClock(t0, 1500*time.Microsecond), benchRecord)

	realFiles, genFiles := Files(real), Files(gen)
	if len(realFiles) < 3 || len(realFiles) != len(genFiles) {
		t.Fatalf("got %d generated files, want %d (and at least 3, to cover rotation)", len(genFiles), len(realFiles))
	}
	for i := range realFiles {
		a, _ := os.ReadFile(realFiles[i])
		b, _ := os.ReadFile(genFiles[i])
		if filepath.Base(realFiles[i]) != filepath.Base(genFiles[i]) || !bytes.Equal(a, b) {
			t.Fatalf("generated %s differs from the writer's %s", genFiles[i], realFiles[i])
		}
	}
	a, _ := os.ReadFile(filepath.Join(real, StateFile))
	b, _ := os.ReadFile(filepath.Join(gen, StateFile))
	if !bytes.Equal(a, b) {
		t.Fatalf("generated key state\n%s\ndiffers from the writer's\n%s", b, a)
	}
	mustVerify(t, gen, k0)
}
