package remote

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of the request format.
const (
	// RequestPrefix starts every request of this version.
	RequestPrefix = "relay-v1."
	// MaxRequestBytes bounds the whole request as sent: it travels in an
	// environment variable, and a policy's arguments are short.
	MaxRequestBytes = 16 << 10
	// MaxArgs bounds the number of arguments.
	MaxArgs = 32
	// MaxArgBytes bounds one argument, as policy.MaxArgBytes does.
	MaxArgBytes = 4096
	// MaxNameBytes bounds a command name, as Telegram and the policy do.
	MaxNameBytes = 32
	// MaxOutputLimit is the largest output cap a request may carry (1 TiB).
	MaxOutputLimit = 1 << 40
	callBytes      = 16
)

// Op is what a request asks for.
type Op byte

const (
	OpRun  Op = 'R' // run one allowlisted command
	OpList Op = 'L' // answer the allowlist
	// The witness's ops, served only by serve-ssh --witness (and by it
	// only): they read the audit log and run nothing.
	OpAuditHead  Op = 'H' // audit-head: the newest signed checkpoint
	OpAuditSince Op = 'S' // audit-since SEQ: the record lines after Since
	// audit-witnessed NOTE: the witness stored Note, a checkpoint of
	// this log; the host notes it, so that archive may go up to it.
	OpAuditWitnessed Op = 'W'
)

// IsAudit reports whether op is one of the witness's.
func (op Op) IsAudit() bool {
	return op == OpAuditHead || op == OpAuditSince || op == OpAuditWitnessed
}

// String names op as the docs do.
func (op Op) String() string {
	switch op {
	case OpRun:
		return "run"
	case OpList:
		return "list"
	case OpAuditHead:
		return "audit-head"
	case OpAuditSince:
		return "audit-since"
	case OpAuditWitnessed:
		return "audit-witnessed"
	}
	return show(string([]byte{byte(op)}))
}

// CallID names one remote call in both audit logs: 16 random bytes,
// shown as 32 lower-case hex digits.
type CallID [callBytes]byte

// NewCallID returns a fresh random call ID.
func NewCallID() CallID {
	var c CallID
	if _, err := rand.Read(c[:]); err != nil {
		panic("remote: no randomness: " + err.Error())
	}
	return c
}

func (c CallID) String() string { return hex.EncodeToString(c[:]) }

// Request is one hub request, as parsed or to be encoded.
type Request struct {
	Op      Op
	Call    CallID
	Command string   // OpRun: the command name
	Args    []string // OpRun: one element per argument, never split again
	// MaxOutput is, for OpRun, the most output bytes the hub accepts.
	MaxOutput int64
	// Since is, for OpAuditSince, the seq after which records are asked.
	Since uint64
	// Note is, for OpAuditWitnessed, the signed checkpoint the witness
	// stored: 1 to MaxNoteBytes of text (UTF-8, no control character but
	// newline). Its signature is the member's to check, not the format's.
	Note []byte
}

// Error is a request the member must refuse, with the exit code that says
// why. Its message names the field and never quotes more than a short,
// escaped prefix of the input.
type Error struct {
	Exit   int
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func malformed(format string, a ...any) *Error {
	return &Error{Exit: ExitMalformed, Reason: "malformed request: " + fmt.Sprintf(format, a...)}
}

var enc = base64.RawURLEncoding.Strict()

// Encode returns the request as the remote command to hand to ssh. It
// refuses a request that Parse would refuse, so a hub never sends one.
func (r *Request) Encode() (string, error) {
	if err := r.check(); err != nil {
		return "", err
	}
	b := make([]byte, 0, 64)
	b = append(b, byte(r.Op))
	b = append(b, r.Call[:]...)
	if r.Op == OpRun {
		b = append(b, byte(len(r.Command)))
		b = append(b, r.Command...)
		b = append(b, byte(len(r.Args)))
		for _, a := range r.Args {
			b = binary.BigEndian.AppendUint16(b, uint16(len(a)))
			b = append(b, a...)
		}
		b = binary.BigEndian.AppendUint64(b, uint64(r.MaxOutput))
	}
	if r.Op == OpAuditSince {
		b = binary.BigEndian.AppendUint64(b, r.Since)
	}
	if r.Op == OpAuditWitnessed {
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.Note)))
		b = append(b, r.Note...)
	}
	s := RequestPrefix + enc.EncodeToString(b)
	if len(s) > MaxRequestBytes {
		return "", malformed("%d bytes encoded, at most %d", len(s), MaxRequestBytes)
	}
	return s, nil
}

// check applies every rule on the fields, for Encode and Parse alike.
func (r *Request) check() *Error {
	if r.Note != nil && r.Op != OpAuditWitnessed {
		return malformed("a %s request carries no checkpoint", r.Op)
	}
	switch r.Op {
	case OpList, OpAuditHead, OpAuditSince, OpAuditWitnessed:
		if r.Command != "" || len(r.Args) > 0 || r.MaxOutput != 0 {
			return malformed("a %s request carries no command", r.Op)
		}
		if r.Since != 0 && r.Op != OpAuditSince {
			return malformed("a %s request carries no seq", r.Op)
		}
		if r.Op == OpAuditWitnessed {
			if len(r.Note) == 0 || len(r.Note) > MaxNoteBytes {
				return malformed("checkpoint of %d bytes, want 1-%d", len(r.Note), MaxNoteBytes)
			}
			if why := badNote(r.Note); why != "" {
				return malformed("checkpoint %s", why)
			}
		}
		return nil
	case OpRun:
		if r.Since != 0 {
			return malformed("a run request carries no seq")
		}
	default:
		return malformed("unknown op %q", show(string([]byte{byte(r.Op)})))
	}
	if !ValidName(r.Command) {
		return malformed("command name %s is not 1-32 of a-z, 0-9 and _", show(r.Command))
	}
	if len(r.Args) > MaxArgs {
		return malformed("%d arguments, at most %d", len(r.Args), MaxArgs)
	}
	for i, a := range r.Args {
		if len(a) > MaxArgBytes {
			return malformed("argument %d is %d bytes, at most %d", i+1, len(a), MaxArgBytes)
		}
		if why := badText(a); why != "" {
			return malformed("argument %d %s", i+1, why)
		}
	}
	if r.MaxOutput < 1 || r.MaxOutput > MaxOutputLimit {
		return malformed("output cap %d is not in 1..%d", r.MaxOutput, int64(MaxOutputLimit))
	}
	return nil
}

// ParseRequest parses s, the whole of SSH_ORIGINAL_COMMAND, strictly. An
// error is an *Error whose Exit is ExitVersion for a relay request of
// another version and ExitMalformed for anything else.
func ParseRequest(s string) (*Request, error) {
	if len(s) > MaxRequestBytes {
		return nil, malformed("%d bytes, at most %d", len(s), MaxRequestBytes)
	}
	rest, ok := strings.CutPrefix(s, RequestPrefix)
	if !ok {
		if v, ok := otherVersion(s); ok {
			return nil, &Error{Exit: ExitVersion, Reason: fmt.Sprintf("unsupported request version %s (this member speaks v1: upgrade relay on the older side)", show(v))}
		}
		return nil, malformed("not a relay request (want %s…, got %s)", RequestPrefix, show(s))
	}
	for i := 0; i < len(rest); i++ {
		if !isEncChar(rest[i]) {
			return nil, malformed("byte %d is outside the base64url alphabet", len(RequestPrefix)+i+1)
		}
	}
	b, err := enc.DecodeString(rest)
	if err != nil {
		return nil, malformed("bad base64url encoding")
	}
	// A canonical encoding only: one request, one string.
	if enc.EncodeToString(b) != rest {
		return nil, malformed("non-canonical encoding")
	}
	p := &reader{b: b}
	r := &Request{}
	op, ok := p.byte()
	if !ok {
		return nil, malformed("empty payload")
	}
	r.Op = Op(op)
	call, ok := p.bytes(callBytes)
	if !ok {
		return nil, malformed("truncated call id")
	}
	copy(r.Call[:], call)
	if r.Op == OpRun {
		n, ok := p.byte()
		if !ok {
			return nil, malformed("truncated command name")
		}
		if n == 0 || n > MaxNameBytes {
			return nil, malformed("command name length %d, want 1-%d", n, MaxNameBytes)
		}
		name, ok := p.bytes(int(n))
		if !ok {
			return nil, malformed("truncated command name")
		}
		r.Command = string(name)
		nargs, ok := p.byte()
		if !ok {
			return nil, malformed("truncated argument count")
		}
		if nargs > MaxArgs {
			return nil, malformed("%d arguments, at most %d", nargs, MaxArgs)
		}
		r.Args = make([]string, 0, nargs)
		for i := 0; i < int(nargs); i++ {
			l, ok := p.uint16()
			if !ok {
				return nil, malformed("truncated argument %d", i+1)
			}
			if l > MaxArgBytes {
				return nil, malformed("argument %d is %d bytes, at most %d", i+1, l, MaxArgBytes)
			}
			a, ok := p.bytes(int(l))
			if !ok {
				return nil, malformed("truncated argument %d", i+1)
			}
			r.Args = append(r.Args, string(a))
		}
		m, ok := p.uint64()
		if !ok {
			return nil, malformed("truncated output cap")
		}
		if m > MaxOutputLimit {
			return nil, malformed("output cap %d is more than %d", m, uint64(MaxOutputLimit))
		}
		r.MaxOutput = int64(m)
	}
	if r.Op == OpAuditSince {
		if r.Since, ok = p.uint64(); !ok {
			return nil, malformed("truncated seq")
		}
	}
	if r.Op == OpAuditWitnessed {
		l, ok := p.uint16()
		if !ok {
			return nil, malformed("truncated checkpoint length")
		}
		if l == 0 || l > MaxNoteBytes {
			return nil, malformed("checkpoint of %d bytes, want 1-%d", l, MaxNoteBytes)
		}
		n, ok := p.bytes(l)
		if !ok {
			return nil, malformed("truncated checkpoint")
		}
		r.Note = append([]byte(nil), n...)
	}
	if len(p.b) > 0 {
		return nil, malformed("%d bytes after the last field", len(p.b))
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// otherVersion recognises "relay-vN." for N other than 1, so that a newer
// hub gets told to upgrade rather than "malformed".
func otherVersion(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "relay-v")
	if !ok {
		return "", false
	}
	i := 0
	for i < len(rest) && i < 4 && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != '.' {
		return "", false
	}
	return "v" + rest[:i], true
}

func isEncChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// ShellInert reports whether s consists only of the bytes a request is
// made of: letters, digits, '.', '-' and '_', not starting with '-'. A
// true is a proof that a POSIX shell reads s as one plain word, with no
// separator, redirection, quoting, expansion or glob.
func ShellInert(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isEncChar(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// ValidName reports whether s is a command name the format carries: 1-32
// of a-z, 0-9 and _.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// badText says why an argument can never be one, or "" if it can: the
// policy refuses the same and more, but the member's audit record of a
// refused request never carries these bytes either.
func badText(v string) string {
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return "contains a control character"
		}
	}
	return ""
}

// badNote says why a checkpoint can never be one, or "" if it can: a
// signed note is UTF-8 text whose only control character is the newline.
func badNote(b []byte) string {
	if !utf8.Valid(b) {
		return "is not valid UTF-8"
	}
	for _, r := range string(b) {
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0) {
			return "contains a control character"
		}
	}
	return ""
}

type reader struct{ b []byte }

func (r *reader) byte() (byte, bool) {
	if len(r.b) < 1 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *reader) bytes(n int) ([]byte, bool) {
	if len(r.b) < n {
		return nil, false
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p, true
}

func (r *reader) uint16() (int, bool) {
	p, ok := r.bytes(2)
	if !ok {
		return 0, false
	}
	return int(binary.BigEndian.Uint16(p)), true
}

func (r *reader) uint64() (uint64, bool) {
	p, ok := r.bytes(8)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint64(p), true
}
