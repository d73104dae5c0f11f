package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is a KeyStore in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

var errMissing = errors.New("secret not found")

func (s *memStore) Get(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	if !ok {
		return nil, errMissing
	}
	return append([]byte(nil), v...), nil
}

func (s *memStore) Set(name string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[name] = append([]byte(nil), v...)
	return nil
}

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// newLog initializes a log in a fresh directory and opens it.
func newLog(t testing.TB, o Options) (dir string, k0 []byte, l *Log) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "audit")
	clk := newClock()
	k0, err := InitWith(dir, &memStore{}, InitOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if o.Now == nil {
		o.Now = clk.Now
	}
	l, err = Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return dir, k0, l
}

func mustAppend(t testing.TB, l *Log, r Record) Head {
	t.Helper()
	h, err := l.Append(r)
	if err != nil {
		t.Fatalf("append %s: %v", r.Type, err)
	}
	return h
}

func mustVerify(t testing.TB, dir string, k0 []byte) Summary {
	t.Helper()
	sum, err := VerifyDir(dir, k0, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return sum
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantVerifyError(t *testing.T, err error, seq uint64, reason string) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("got error %v, want a *VerifyError at seq %d (%s)", err, seq, reason)
	}
	if ve.Seq != seq || !strings.Contains(ve.Reason, reason) {
		t.Fatalf("got %v, want seq %d and a reason containing %q", ve, seq, reason)
	}
}

func hexs(b []byte) string   { return strings.ToLower(fmtHex(b)) }
func fmtHex(b []byte) string { return hex.EncodeToString(b) }

// v1Key is the K0 of the fixture log in testdata/v1log, which the writer
// wrote before format 2.
func v1Key(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1log", "K0"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// copyDir copies the regular files of src into a fresh directory (0700,
// files 0600) and returns it: tests change copies of fixtures, never the
// fixtures.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
