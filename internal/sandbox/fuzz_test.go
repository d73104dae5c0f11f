package sandbox

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/relaychat/relay/policy"
)

// FuzzDecodeSpec: the trampoline's profile parser never panics, accepts only
// what it can enforce, and what it accepts survives a round trip. The
// profile's argv elements arrive joined by newlines (argv cannot hold NUL,
// and a path holding a newline is exercised through the header).
func FuzzDecodeSpec(f *testing.F) {
	p, err := New(policy.Sandbox{Read: []string{"/opt"}, ConnectPorts: []uint16{443}}, Options{SelfExe: selfExe(f), Timeout: 1, TempDir: f.TempDir()})
	if err == nil {
		if w, err := p.Wrap([]string{"/bin/true"}, nil); err == nil {
			f.Add(strings.Join(w.Args[2:slices.Index(w.Args, "--")], "\n"))
		}
		p.Close()
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := decodeSpec(strings.Split(text, "\n"))
		if err != nil {
			return
		}
		if s.ABI < minABI || s.CPU == 0 || s.NoFile < minNoFile || s.NProc == 0 || s.AS == 0 || s.FSize == 0 {
			t.Fatalf("accepted a profile without its floors: %+v", s)
		}
		for _, r := range s.Rules {
			if r.Access&^s.FS != 0 || !strings.HasPrefix(r.Path, "/") {
				t.Fatalf("accepted a bad rule: %+v", r)
			}
		}
		enc := s.encode()
		if slices.Contains(enc, "--") {
			t.Fatalf("encoding holds the argv separator: %q", enc)
		}
		s2, err := decodeSpec(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip: got %+v, want %+v", s2, s)
		}
	})
}

func TestFuzzSeedCorpusNotEmpty(t *testing.T) {
	ents, err := os.ReadDir("testdata/fuzz/FuzzDecodeSpec")
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus: got %d files (%v), want some", len(ents), err)
	}
}
