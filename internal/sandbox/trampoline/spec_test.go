package trampoline

import (
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecode: the trampoline's profile parser never panics, accepts only
// what it can enforce, and what it accepts survives a round trip. The
// profile arrives as it does on the profile descriptor: elements joined by
// NUL.
func FuzzDecode(f *testing.F) {
	b, _ := valid().Marshal()
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Unmarshal([]byte(text))
		if err != nil {
			return
		}
		clean := func(p string) bool { return strings.HasPrefix(p, "/") && path.Clean(p) == p }
		if !clean(s.Workdir) || s.TmpSize == 0 || s.UID < 0 || s.GID < 0 || (s.StatusFD >= 0 && s.StatusFD <= 2) {
			t.Fatalf("accepted a profile without its workdir, tmpfs size, identity or status descriptor: %+v", s)
		}
		for _, m := range s.Mounts {
			if !clean(m.Path) || m.Path == "/" || (m.Kind == Symlink) != (m.Target != "") {
				t.Fatalf("accepted a bad mount: %+v", m)
			}
		}
		if s.ABI < MinABI || s.CPU == 0 || s.NoFile < MinNoFile || s.NProc == 0 || s.AS == 0 || s.FSize == 0 {
			t.Fatalf("accepted a profile without its floors: %+v", s)
		}
		for _, r := range s.Rules {
			if r.Access == 0 || r.Access&^s.FS != 0 || !strings.HasPrefix(r.Path, "/") {
				t.Fatalf("accepted a bad rule: %+v", r)
			}
		}
		enc, err := s.Marshal()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		s2, err := Unmarshal(enc)
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
		Ports: []uint16{443, 8443}, CPU: 30, NoFile: 256, FSize: 1 << 26, NProc: 256, AS: 1 << 32, UID: 64123, GID: 64123,
		Mounts: []Mount{
			{Kind: Symlink, Path: "/bin", Target: "usr/bin"},
			{Kind: BindRO, Path: "/etc", Optional: true},
			{Kind: Mask, Path: "/etc/relay"},
			{Kind: BindRW, Path: "/srv/data dir"},
			{Kind: BindSocket, Path: "/run/mosquitto/mosquitto.sock"},
			{Kind: BindDev, Path: "/dev/ttyUSB0"},
			{Kind: Symlink, Path: "/var/run", Target: "../run \"odd\""},
		},
		Workdir: "/srv/data dir", TmpSize: 64 << 20, Pty: true,
		Allow: []string{"ptrace", "keyctl"}, StatusFD: 3,
		Argv: []string{"/usr/bin/env", "", "two words", "--"}, Env: []string{"PATH=/usr/bin", "EMPTY="},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, s := range []*Spec{valid(), {ABI: 3, FS: FSRights(3), CPU: 1, NoFile: MinNoFile, FSize: 1, NProc: 1, AS: 1, UID: 1, GID: 1, Groups: true, TmpSize: 1, Workdir: "/", StatusFD: -1, Argv: []string{"/bin/true"}}} {
		got, err := Decode(s.Encode())
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", s, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("got %+v, want %+v", got, s)
		}
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Unmarshal(b); err != nil || !reflect.DeepEqual(got, s) {
			t.Errorf("Unmarshal(Marshal(s)): got %+v, %v, want %+v", got, err, s)
		}
	}
	nul := valid()
	nul.Workdir = "/a\x00b"
	if _, err := nul.Marshal(); err == nil {
		t.Error("Marshal of a path with a NUL byte: got no error")
	}
}

func TestDecodeRefuses(t *testing.T) {
	h := valid().Encode()[0]
	for _, tc := range []struct {
		name  string
		elems []string
	}{
		{"nothing", nil},
		{"other version", []string{"v1" + strings.TrimPrefix(h, "v2")}},
		{"unknown field", []string{h + " x=1"}},
		{"duplicate field", []string{h + " uid=0"}},
		{"missing field", []string{strings.Replace(h, " cpu=30", "", 1)}},
		{"abi too old", []string{strings.Replace(h, "abi=7", "abi=2", 1)}},
		{"unhandled right", []string{strings.Replace(h, "fs=ffff", "fs=fffff", 1)}},
		{"ports without net", []string{strings.Replace(h, "net=3", "net=0", 1)}},
		{"port zero", []string{strings.Replace(h, "ports=443,8443", "ports=0", 1)}},
		{"nofile too low", []string{strings.Replace(h, "nofile=256", "nofile=3", 1)}},
		{"negative identity", []string{strings.Replace(h, "gid=64123", "gid=-1", 1), "w /"}},
		{"no workdir", []string{h}},
		{"two workdirs", []string{h, "w /", "w /tmp"}},
		{"relative workdir", []string{h, "w tmp"}},
		{"relative rule", []string{h, "l 4 r usr", "w /"}},
		{"unclean rule", []string{h, "l 4 r /usr/../etc", "w /"}},
		{"rule without access", []string{h, "l 0 r /usr", "w /"}},
		{"rule beyond handled", []string{h, "l 100000 r /usr", "w /"}},
		{"rule flag", []string{h, "l 4 x /usr", "w /"}},
		{"old rule element", []string{h, "4 r /usr", "w /"}},
		{"mount kind", []string{h, "b z r /usr", "w /"}},
		{"mount over the root", []string{h, "b r r /", "w /"}},
		{"relative mount", []string{h, "b r r usr", "w /"}},
		{"unclean mount", []string{h, "b m r /etc/../etc/relay", "w /"}},
		{"symlink without target", []string{h, `s "" /lib`, "w /"}},
		{"symlink unquoted", []string{h, `s usr/lib /lib`, "w /"}},
		{"symlink without path", []string{h, `s "usr/lib"`, "w /"}},
		{"status on stderr", []string{strings.Replace(h, "status=3", "status=2", 1), "w /"}},
		{"no tmpfs size", []string{strings.Replace(h, "tmp=67108864", "tmp=0", 1), "w /"}},
		{"bad flag", []string{strings.Replace(h, "pty=1", "pty=yes", 1), "w /"}},
		{"bad syscall name", []string{strings.Replace(h, "allow=ptrace,keyctl", "allow=ptrace,../x", 1), "w /", "a /bin/true"}},
		{"no command", []string{h, "w /"}},
		{"relative command", []string{h, "w /", "a bin/true"}},
		{"environment without =", []string{h, "w /", "a /bin/true", "e PATH"}},
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
	allowed := map[string]bool{"errors": true, "os": true, "os/signal": true, "path": true, "runtime": true, "slices": true,
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
