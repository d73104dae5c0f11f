package remote

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// hostile are arguments that would mean more than one word to a shell or
// an option to a program.
var hostile = []string{
	"; touch PWNED", "$(touch PWNED)", "`touch PWNED`", "a && touch PWNED",
	"| touch PWNED", "> PWNED", "--output=PWNED", "-rf", "'", "\"", "\\",
	"a b", "*", "~root", "${IFS}touch${IFS}PWNED", "", "ünïcödé",
}

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []*Request{
		{Op: OpRun, Call: NewCallID(), Command: "disk", Args: nil, MaxOutput: 1},
		{Op: OpRun, Call: NewCallID(), Command: "logs_2", Args: hostile, MaxOutput: 16 << 20},
		{Op: OpRun, Call: NewCallID(), Command: strings.Repeat("a", 32), Args: []string{strings.Repeat("x", MaxArgBytes)}, MaxOutput: MaxOutputLimit},
		{Op: OpList, Call: NewCallID()},
		{Op: OpAuditHead, Call: NewCallID()},
		{Op: OpAuditSince, Call: NewCallID(), Since: 0},
		{Op: OpAuditSince, Call: NewCallID(), Since: 1<<64 - 1},
		{Op: OpAuditWitnessed, Call: NewCallID(), Note: []byte(sampleNote)},
		{Op: OpAuditWitnessed, Call: NewCallID(), Note: []byte(strings.Repeat("x", MaxNoteBytes))},
	} {
		s, err := r.Encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", r, err)
		}
		if !ShellInert(s) {
			t.Errorf("encoded request %q is not shell-inert", s)
		}
		got, err := ParseRequest(s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		if r.Args == nil && r.Op == OpRun {
			r.Args = []string{}
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("got %+v, want %+v", got, r)
		}
	}
}

// sampleNote is shaped like a signed checkpoint.
const sampleNote = "web1/relay-audit/3f9a02c1\n42\nq80gIfCqmlRjrMbaeukyjBDEY2kGtu9UTDMfgsQmx2w=\n\n— web1/relay-audit/3f9a02c1 AbCdEf0123456789+/=\n"

// witnessed builds a raw audit-witnessed payload whose length prefix says
// n and which carries note.
func witnessed(n int, note string) string {
	b := append([]byte{'W'}, make([]byte, 16)...)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, note...)
	return RequestPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// payload builds a raw request payload for the strictness cases.
func payload(op byte, name string, args []string, max uint64, extra ...byte) string {
	b := []byte{op}
	b = append(b, make([]byte, 16)...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = append(b, byte(len(args)))
	for _, a := range args {
		b = binary.BigEndian.AppendUint16(b, uint16(len(a)))
		b = append(b, a...)
	}
	b = binary.BigEndian.AppendUint64(b, max)
	b = append(b, extra...)
	return RequestPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// TestRequestRefusesSmuggling is the attacker's table: a second command
// or an option appended, quoted or encoded into the request, and every
// field out of bounds. Each must be refused with the documented code.
func TestRequestRefusesSmuggling(t *testing.T) {
	good := payload('R', "disk", []string{"/"}, 100)
	tooMany := make([]string, MaxArgs+1)
	cases := []struct {
		name, req string
		exit      int
	}{
		{"plain shell command", "true", ExitMalformed},
		{"shell line", "disk /; rm -rf /", ExitMalformed},
		{"second command after a space", good + " ; touch PWNED", ExitMalformed},
		{"second command after a semicolon", good + ";touch PWNED", ExitMalformed},
		{"newline and a second command", good + "\ntouch PWNED", ExitMalformed},
		{"option after the request", good + " --config /tmp/evil.yaml", ExitMalformed},
		{"two requests", good + good[len(RequestPrefix):], ExitMalformed},
		{"padding", good + "==", ExitMalformed},
		{"standard base64 alphabet", RequestPrefix + "ab+/", ExitMalformed},
		{"empty payload", RequestPrefix, ExitMalformed},
		{"unknown op", payload('X', "disk", nil, 1), ExitMalformed},
		{"bytes after the last field", payload('R', "disk", nil, 1, 0), ExitMalformed},
		{"a second request's fields appended", payload('R', "disk", nil, 1, []byte{'R', 1, 2}...), ExitMalformed},
		{"upper-case name", payload('R', "Disk", nil, 1), ExitMalformed},
		{"name with a slash", payload('R', "../bin/sh", nil, 1), ExitMalformed},
		{"name with a space", payload('R', "disk rm", nil, 1), ExitMalformed},
		{"empty name", payload('R', "", nil, 1), ExitMalformed},
		{"name too long", payload('R', strings.Repeat("a", 33), nil, 1), ExitMalformed},
		{"NUL in an argument", payload('R', "disk", []string{"/\x00--rf"}, 1), ExitMalformed},
		{"newline in an argument", payload('R', "disk", []string{"/\nrm"}, 1), ExitMalformed},
		{"invalid UTF-8", payload('R', "disk", []string{"\xff"}, 1), ExitMalformed},
		{"argument too long", payload('R', "disk", []string{strings.Repeat("a", MaxArgBytes+1)}, 1), ExitMalformed},
		{"too many arguments", payload('R', "disk", tooMany, 1), ExitMalformed},
		{"zero output cap", payload('R', "disk", nil, 0), ExitMalformed},
		{"huge output cap", payload('R', "disk", nil, 1<<63), ExitMalformed},
		{"audit-head with a seq", RequestPrefix + base64.RawURLEncoding.EncodeToString(append(append([]byte{'H'}, make([]byte, 16)...), make([]byte, 8)...)), ExitMalformed},
		{"audit-since without its seq", RequestPrefix + base64.RawURLEncoding.EncodeToString(append([]byte{'S'}, make([]byte, 16)...)), ExitMalformed},
		{"audit-since with a short seq", RequestPrefix + base64.RawURLEncoding.EncodeToString(append([]byte{'S'}, make([]byte, 16+7)...)), ExitMalformed},
		{"audit-since with bytes after its seq", RequestPrefix + base64.RawURLEncoding.EncodeToString(append([]byte{'S'}, make([]byte, 16+9)...)), ExitMalformed},
		{"audit-since carrying a command", payload('S', "disk", nil, 1), ExitMalformed},
		{"audit-witnessed without its checkpoint", RequestPrefix + base64.RawURLEncoding.EncodeToString(append([]byte{'W'}, make([]byte, 16)...)), ExitMalformed},
		{"audit-witnessed with a short length", RequestPrefix + base64.RawURLEncoding.EncodeToString(append([]byte{'W'}, make([]byte, 17)...)), ExitMalformed},
		{"audit-witnessed with an empty checkpoint", witnessed(0, ""), ExitMalformed},
		{"audit-witnessed whose length claims more", witnessed(len(sampleNote)+1, sampleNote), ExitMalformed},
		{"audit-witnessed with bytes after its checkpoint", witnessed(len(sampleNote)-1, sampleNote), ExitMalformed},
		{"audit-witnessed over the checkpoint limit", witnessed(MaxNoteBytes+1, strings.Repeat("x", MaxNoteBytes+1)), ExitMalformed},
		{"audit-witnessed with a NUL", witnessed(3, "a\x00b"), ExitMalformed},
		{"audit-witnessed with a carriage return", witnessed(3, "a\rb"), ExitMalformed},
		{"audit-witnessed with invalid UTF-8", witnessed(2, "a\xff"), ExitMalformed},
		{"audit-witnessed carrying a command", payload('W', "disk", nil, 1), ExitMalformed},
		{"lower-case audit op", RequestPrefix + base64.RawURLEncoding.EncodeToString(append([]byte{'h'}, make([]byte, 16)...)), ExitMalformed},
		{"another version", "relay-v2.AAAA", ExitVersion},
		{"too long", RequestPrefix + strings.Repeat("A", MaxRequestBytes), ExitMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRequest(c.req)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %+v, %v; want a refusal", r, err)
			}
			if e.Exit != c.exit {
				t.Errorf("got exit %d (%v), want %d", e.Exit, e, c.exit)
			}
			if len(e.Error()) > 200 {
				t.Errorf("refusal of %d bytes: it must quote only a short prefix", len(e.Error()))
			}
		})
	}
	// The length prefix of an argument lies: it claims more than is there.
	b, _ := base64.RawURLEncoding.DecodeString(good[len(RequestPrefix):])
	b[17+1+4+1] = 0xff
	if _, err := ParseRequest(RequestPrefix + base64.RawURLEncoding.EncodeToString(b)); err == nil {
		t.Error("a lying length prefix was accepted")
	}
	// A non-canonical encoding of the same bytes (trailing bits set).
	canon := payload('R', "up", nil, 1)
	last := canon[len(canon)-1]
	if i := strings.IndexByte("AQgw", last); i >= 0 {
		alt := canon[:len(canon)-1] + string("BRhx"[i])
		if _, err := ParseRequest(alt); err == nil {
			t.Errorf("non-canonical %q accepted", alt)
		}
	}
}

func TestEncodeRefusesWhatParseRefuses(t *testing.T) {
	for _, r := range []*Request{
		{Op: OpRun, Command: "Disk", MaxOutput: 1},
		{Op: OpRun, Command: "disk", Args: []string{"a\x00b"}, MaxOutput: 1},
		{Op: OpRun, Command: "disk"},
		{Op: OpList, Command: "disk"},
		{Op: OpList, Since: 3},
		{Op: OpAuditHead, Since: 3},
		{Op: OpAuditSince, Command: "disk", Since: 3},
		{Op: OpAuditWitnessed},
		{Op: OpAuditWitnessed, Note: []byte(sampleNote), Since: 3},
		{Op: OpAuditWitnessed, Note: make([]byte, MaxNoteBytes+1)},
		{Op: OpAuditWitnessed, Note: []byte("a\x1bb")},
		{Op: OpAuditHead, Note: []byte(sampleNote)},
		{Op: OpRun, Command: "disk", MaxOutput: 1, Since: 3},
		{Op: 'x'},
	} {
		if s, err := r.Encode(); err == nil {
			t.Errorf("encoded %+v as %q, want a refusal", r, s)
		}
	}
}

// TestRequestIsInertInARealShell hands encoded hostile requests to a real
// /bin/sh, as sshd would if the hub's key had been installed without its
// forced command: the shell must find no program to run and nothing else
// must happen.
func TestRequestIsInertInARealShell(t *testing.T) {
	dir := t.TempDir()
	for _, a := range hostile {
		s, err := (&Request{Op: OpRun, Call: NewCallID(), Command: "disk", Args: []string{a}, MaxOutput: 1}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/bin/sh", "-c", s)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + dir}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 127 {
			t.Errorf("sh -c %q: got %v (%s), want exit 127: command not found", s, err, out)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("the shell created %s: a request was not inert", filepath.Join(dir, ents[0].Name()))
	}
}

func TestShellInert(t *testing.T) {
	for s, want := range map[string]bool{
		"relay-v1.abc_-": true, "": false, "-rf": false, "a b": false, "a;b": false,
		"a$b": false, "a\nb": false, "a'b": false, "a*": false, "a/b": false,
	} {
		if got := ShellInert(s); got != want {
			t.Errorf("ShellInert(%q): got %v, want %v", s, got, want)
		}
	}
}
