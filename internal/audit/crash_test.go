package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func appendRaw(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func lastEntry(t *testing.T, path string) Entry {
	t.Helper()
	ls := readLines(t, path)
	e, err := ParseRecord(ls[len(ls)-2])
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A crash mid-write leaves a torn line; Open appends a recovery record that
// names it, never truncates, and verify accepts exactly that pattern.
func TestTornLastLineRecovered(t *testing.T) {
	dir, k0, l := newLog(t, Options{})
	mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	l.Close()
	file := filepath.Join(dir, "audit-000001.jsonl")
	before, _ := os.ReadFile(file)
	torn := []byte(`{"seq":3,"ts":"2026-03-01T12:00:09.000000000Z","prev":"ab`)
	appendRaw(t, file, torn)

	_, err := VerifyDir(dir, k0, nil)
	wantVerifyError(t, err, 3, "torn last line")

	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Healthy(); err != nil {
		t.Fatalf("got %v after recovery, want healthy", err)
	}
	mustAppend(t, l2, Record{Type: "start"})
	l2.Close()
	after, _ := os.ReadFile(file)
	if !bytes.HasPrefix(after, append(before, torn...)) {
		t.Fatal("the torn bytes were removed or changed, want them kept")
	}
	sum := mustVerify(t, dir, k0)
	if sum.Recoveries != 1 || sum.Head.Seq != 4 {
		t.Fatalf("got %+v, want 1 recovery and head seq 4", sum)
	}
	ls := readLines(t, file)
	rec, err := ParseRecord(ls[3])
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(torn)
	if rec.Type != "recovery" || rec.TornBytes != int64(len(torn)) || rec.TornSHA256 != hex.EncodeToString(want[:]) || rec.Seq != 3 {
		t.Fatalf("got recovery %+v, want seq 3 naming %d torn bytes", rec, len(torn))
	}

	// Removing the torn bytes afterwards is caught.
	writeLines(t, file, [][]byte{ls[0], ls[1], ls[3], ls[4]})
	_, err = VerifyDir(dir, k0, nil)
	wantVerifyError(t, err, 3, "none precede it")
	// So is editing them.
	writeLines(t, file, [][]byte{ls[0], ls[1], bytes.Replace(ls[2], []byte("ab"), []byte("cd"), 1), ls[3], ls[4]})
	_, err = VerifyDir(dir, k0, nil)
	wantVerifyError(t, err, 3, "torn")
}

// A write that stopped one byte short leaves the whole next record without
// its newline. The newline a recovery record would put after it makes it a
// valid record, so the writer adopts it instead of calling it torn.
func TestWriteOneByteShortAdopted(t *testing.T) {
	dir, k0, l := newLog(t, Options{})
	mustAppend(t, l, Record{Type: "start"})
	l.Close()
	file := filepath.Join(dir, "audit-000001.jsonl")
	prev := lastEntry(t, file)
	body, _ := encodeBody(&Record{Type: "request", Outcome: "ok", Command: "reboot"})
	var hprev [32]byte
	hex.Decode(hprev[:], []byte(prev.Hash))
	line, _, err := appendLine(nil, newSealer(stateKey(t, dir)), newLinkHash(), 3, newClock().Now(), []byte(prev.MAC), &hprev, body)
	if err != nil {
		t.Fatal(err)
	}
	appendRaw(t, file, line[:len(line)-1])
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	sum := mustVerify(t, dir, k0)
	if sum.Head.Seq != 4 {
		t.Fatalf("got head seq %d, want 4 (the adopted record and a recovery note)", sum.Head.Seq)
	}
	if e, _ := ParseRecord(readLines(t, file)[2]); e.Command != "reboot" {
		t.Fatalf("got %+v at line 3, want the adopted reboot request", e)
	}
}

// A fragment that is not the prefix of the next record cannot come from a
// crash: Open refuses rather than excuse it with a recovery record.
func TestOpenRefusesForeignFragment(t *testing.T) {
	dir, _, l := newLog(t, Options{})
	mustAppend(t, l, Record{Type: "start"})
	l.Close()
	file := filepath.Join(dir, "audit-000001.jsonl")
	ls := readLines(t, file)
	appendRaw(t, file, ls[1][:len(ls[1])-1]) // a copy of seq 2, unterminated
	if l2, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "does not extend the chain") {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("got %v, want a refusal", err)
	}
}

// After a crash between the log's fsync and the key state write the state
// lags; Open rolls it forward across records that verify under it.
func TestStateLagRolledForward(t *testing.T) {
	dir, k0, l := newLog(t, Options{})
	l.Sync()
	old, _ := os.ReadFile(filepath.Join(dir, StateFile))
	mustAppend(t, l, Record{Type: "start"})
	mustAppend(t, l, Record{Type: "stop"})
	l.Close()
	os.WriteFile(filepath.Join(dir, StateFile), old, 0o600) // state at seq 1, log at 3

	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("got %v, want the lagging state rolled forward", err)
	}
	if h := l2.Head(); h.Seq != 4 {
		t.Fatalf("got head %d, want 4 (3 records and a recovery note)", h.Seq)
	}
	l2.Close()
	mustVerify(t, dir, k0)
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"missing state", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, StateFile))
		}, "audit log not initialized"},
		{"state from another log", func(t *testing.T, dir string) {
			other, _, l := newLog(t, Options{})
			l.Close()
			b, _ := os.ReadFile(filepath.Join(other, StateFile))
			os.WriteFile(filepath.Join(dir, StateFile), b, 0o600)
		}, "does not match"},
		{"log records that do not verify after the state", func(t *testing.T, dir string) {
			other, _, l := newLog(t, Options{})
			mustAppend(t, l, Record{Type: "start"})
			l.Close()
			ls := readLines(t, filepath.Join(other, "audit-000001.jsonl"))
			appendRaw(t, filepath.Join(dir, "audit-000001.jsonl"), ls[1])
		}, "does not extend the chain"},
		{"group-readable directory", func(t *testing.T, dir string) {
			os.Chmod(dir, 0o750)
		}, "chmod 700"},
		{"world-readable log file", func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, "audit-000001.jsonl"), 0o644)
		}, "chmod 600"},
		{"state names a missing file", func(t *testing.T, dir string) {
			os.Rename(filepath.Join(dir, "audit-000001.jsonl"), filepath.Join(dir, "moved"))
		}, "not in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _, l := newLog(t, Options{})
			mustAppend(t, l, Record{Type: "start"})
			mustAppend(t, l, Record{Type: "start"})
			l.Close()
			tt.setup(t, dir)
			l2, err := Open(dir, Options{})
			if err == nil {
				l2.Close()
				t.Fatalf("got nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	dir, k0, l := newLog(t, Options{RotateBytes: 2000})
	for i := 0; i < 40; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	}
	files, _ := ListFiles(dir)
	if len(files) < 4 {
		t.Fatalf("got %d files, want at least 4", len(files))
	}
	first, _ := os.ReadFile(files[0])
	for i := 0; i < 40; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	}
	l.Close()
	if again, _ := os.ReadFile(files[0]); !bytes.Equal(first, again) {
		t.Fatal("a rotated file changed after rotation, want it untouched")
	}
	files, _ = ListFiles(dir)
	for i, f := range files {
		if filepath.Base(f) != nameFor(i+1) {
			t.Fatalf("file %d is %s, want %s", i, filepath.Base(f), nameFor(i+1))
		}
		fi, _ := os.Stat(f)
		if fi.Size() > 2000 {
			t.Errorf("%s is %d bytes, want at most 2000", f, fi.Size())
		}
		if i == 0 {
			continue
		}
		e, err := ParseRecord(readLines(t, f)[0])
		if err != nil {
			t.Fatal(err)
		}
		prev := lastEntry(t, files[i-1])
		if e.Type != "rotate" || e.Prev != prev.MAC || e.Seq != prev.Seq+1 {
			t.Fatalf("%s starts with %+v, want a rotate record linking seq %d", f, e, prev.Seq)
		}
	}
	sum := mustVerify(t, dir, k0)
	if sum.Files != len(files) {
		t.Fatalf("got %d files verified, want %d", sum.Files, len(files))
	}
}

// The log never needs more than append access to its files.
func TestAppendOnlyAttribute(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not installed")
	}
	dir, k0, l := newLog(t, Options{RotateBytes: 3000})
	l.Close()
	file := filepath.Join(dir, "audit-000001.jsonl")
	if out, err := exec.Command("chattr", "+a", file).CombinedOutput(); err != nil {
		t.Skipf("chattr +a not supported here (needs root and ext4/xfs/btrfs): %v: %s", err, out)
	}
	t.Cleanup(func() {
		files, _ := ListFiles(dir)
		for _, f := range files {
			exec.Command("chattr", "-a", f).Run()
		}
	})
	if err := os.WriteFile(file, []byte("x"), 0o600); err == nil {
		t.Fatal("rewrote an append-only file; the attribute is not in effect")
	}
	appendRaw(t, file, []byte(`{"seq":2,"ts`)) // a torn write, too
	l, err := Open(dir, Options{RotateBytes: 3000})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
		files, _ := ListFiles(dir)
		exec.Command("chattr", "+a", files[len(files)-1]).Run()
	}
	l.Close()
	if files, _ := ListFiles(dir); len(files) < 2 {
		t.Fatalf("got %d files, want a rotation under chattr +a", len(files))
	}
	mustVerify(t, dir, k0)
}

func TestConcurrentAppends(t *testing.T) {
	dir, k0, l := newLog(t, Options{RotateBytes: 8000})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if _, err := l.Append(Record{Type: "request", Outcome: "ok"}); err != nil {
					t.Error(err)
					return
				}
				_ = l.Head()
				_ = l.Healthy()
			}
		}()
	}
	wg.Wait()
	l.Close()
	sum := mustVerify(t, dir, k0)
	rotations := sum.Files - 1
	if want := uint64(1 + 200 + rotations); sum.Records != want {
		t.Fatalf("got %d records, want %d", sum.Records, want)
	}
}
