package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAppendVerifyReopen(t *testing.T) {
	dir, k0, l := newLog(t, Options{})
	for i := 0; i < 10; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime", UserID: 42})
	}
	h := l.Head()
	if h.Seq != 11 {
		t.Fatalf("got head seq %d, want 11 (init + 10)", h.Seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sum := mustVerify(t, dir, k0)
	if sum.Records != 11 || sum.Head != h || !sum.MACsVerified || !sum.StateChecked {
		t.Fatalf("got summary %+v, want 11 records ending at %+v", sum, h)
	}
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h2 := mustAppend(t, l2, Record{Type: "stop", Outcome: "ok"})
	if h2.Seq != 12 {
		t.Fatalf("got seq %d after reopen, want 12", h2.Seq)
	}
	l2.Close()
	mustVerify(t, dir, k0)
}

func TestFileModes(t *testing.T) {
	dir, _, l := newLog(t, Options{})
	mustAppend(t, l, Record{Type: "start"})
	l.Close()
	fi, _ := os.Stat(dir)
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("got dir mode %04o, want 0700", got)
	}
	for _, n := range []string{"audit-000001.jsonl", StateFile} {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: got mode %04o, want 0600", n, got)
		}
	}
}

func TestStateNeverHoldsK0(t *testing.T) {
	dir, k0, l := newLog(t, Options{})
	l.Close()
	b, _ := os.ReadFile(filepath.Join(dir, StateFile))
	if strings.Contains(string(b), hexs(k0)) {
		t.Fatal("the key state holds K0, want only K1 or later")
	}
}

func TestSecondWriterRefused(t *testing.T) {
	dir, _, l := newLog(t, Options{})
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") || !errors.Is(err, ErrInUse) {
		t.Fatalf("got %v opening a log that is already open, want an in-use refusal", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("got %v after the first writer closed, want the log to open", err)
	}
	l2.Close()
}
