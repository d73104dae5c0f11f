package trampoline

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecode: the trampoline's profile parser never panics, accepts only
// what it can enforce, and what it accepts survives a round trip. The
// profile's argv elements arrive joined by newlines.
func FuzzDecode(f *testing.F) {
	f.Add(strings.Join(valid().Encode(), "\n"))
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Decode(strings.Split(text, "\n"))
		if err != nil {
			return
		}
		if s.ABI < MinABI || s.CPU == 0 || s.NoFile < MinNoFile || s.NProc == 0 || s.AS == 0 || s.FSize == 0 {
			t.Fatalf("accepted a profile without its floors: %+v", s)
		}
		for _, r := range s.Rules {
			if r.Access == 0 || r.Access&^s.FS != 0 || !strings.HasPrefix(r.Path, "/") {
				t.Fatalf("accepted a bad rule: %+v", r)
			}
		}
		enc := s.Encode()
		if slices.Contains(enc, "--") {
			t.Fatalf("encoding holds the argv separator: %q", enc)
		}
		s2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip: got %+v, want %+v", s2, s)
		}
	})
}

func valid() *Spec {
	return &Spec{
		ABI: 7, FS: FSRights(7), Net: NetTCP, Scope: ScopeSignal | ScopeAbstractUnixSocket,
		Rules: []Rule{{Path: "/usr", Access: AccessFSReadFile | AccessFSReadDir | AccessFSExecute}, {Path: "/tmp/a b", Access: AccessFSWriteFile, Optional: true}},
		Ports: []uint16{443, 8443}, CPU: 30, NoFile: 256, FSize: 1 << 26, NProc: 256, AS: 1 << 32, UID: 65534, GID: 65534,
	}
}

func TestRoundTrip(t *testing.T) {
	for _, s := range []*Spec{valid(), {ABI: 3, FS: FSRights(3), CPU: 1, NoFile: MinNoFile, FSize: 1, NProc: 1, AS: 1, UID: -1, GID: -1}} {
		got, err := Decode(s.Encode())
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", s, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("got %+v, want %+v", got, s)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	h := valid().Encode()[0]
	for _, tc := range []struct {
		name  string
		elems []string
	}{
		{"nothing", nil},
		{"other version", []string{"v2" + strings.TrimPrefix(h, "v1")}},
		{"unknown field", []string{h + " x=1"}},
		{"duplicate field", []string{h + " uid=0"}},
		{"missing field", []string{strings.Replace(h, " cpu=30", "", 1)}},
		{"abi too old", []string{strings.Replace(h, "abi=7", "abi=2", 1)}},
		{"unhandled right", []string{strings.Replace(h, "fs=ffff", "fs=fffff", 1)}},
		{"ports without net", []string{strings.Replace(h, "net=3", "net=0", 1)}},
		{"port zero", []string{strings.Replace(h, "ports=443,8443", "ports=0", 1)}},
		{"nofile too low", []string{strings.Replace(h, "nofile=256", "nofile=3", 1)}},
		{"half identity", []string{strings.Replace(h, "gid=65534", "gid=-1", 1)}},
		{"relative rule", []string{h, "4 r usr"}},
		{"unclean rule", []string{h, "4 r /usr/../etc"}},
		{"rule without access", []string{h, "0 r /usr"}},
		{"rule beyond handled", []string{h, "100000 r /usr"}},
		{"rule flag", []string{h, "4 x /usr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := Decode(tc.elems); err == nil {
				t.Errorf("Decode(%q): got %+v, want an error", tc.elems, s)
			}
		})
	}
}

func TestFuzzSeedCorpusNotEmpty(t *testing.T) {
	ents, err := os.ReadDir("testdata/fuzz/FuzzDecode")
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus: got %d files (%v), want some", len(ents), err)
	}
}

func TestImportsStayLight(t *testing.T) {
	// The trampoline runs from init ahead of the relay's heavier packages
	// only while it imports nothing heavier than these (see the package doc).
	allowed := map[string]bool{"errors": true, "os": true, "path": true, "runtime": true, "slices": true,
		"strconv": true, "strings": true, "syscall": true, "unsafe": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[p] {
				t.Errorf("%s imports %q: the trampoline must stay light", f, p)
			}
		}
	}
}
