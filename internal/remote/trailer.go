package remote

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TrailerPrefix starts every trailer of this version.
const TrailerPrefix = "relay-trailer-v1"

// MaxTrailerBytes bounds a trailer frame.
const MaxTrailerBytes = 1024

// AuditMACHex is how much of the member's audit head MAC a trailer carries:
// the 64 bits a checkpoint carries.
const AuditMACHex = 16

// Trailer is how a member's command ended, and where the member recorded
// it. It is one line of fixed keys in a fixed order:
//
//	relay-trailer-v1 exit=0 signal=- timed_out=0 canceled=0 duration_ms=12
//	bytes=5 kept=5 sent=5 sha256=<64 hex> audit_seq=42 audit_mac=<16 hex>
//
// (on one line, single spaces). Exit is -1 when a signal ended the
// command; Signal is "-" when none did. Bytes is what the command wrote,
// Kept what the member's cap kept, Sent what the stream carried (the hub's
// cap); SHA256 covers all Bytes. AuditSeq and AuditMAC are the member's
// audit head after its exec_end record for this call.
type Trailer struct {
	Exit       int
	Signal     string // "" when no signal ended the command
	TimedOut   bool
	Canceled   bool
	DurationMS int64
	Bytes      int64
	Kept       int64
	Sent       int64
	SHA256     string
	AuditSeq   uint64
	AuditMAC   string
}

var trailerKeys = []string{"exit", "signal", "timed_out", "canceled", "duration_ms", "bytes", "kept", "sent", "sha256", "audit_seq", "audit_mac"}

// Format renders t; it refuses a trailer ParseTrailer would refuse.
func (t *Trailer) Format() (string, error) {
	if err := t.check(); err != nil {
		return "", err
	}
	sig := t.Signal
	if sig == "" {
		sig = "-"
	}
	vals := []string{
		strconv.Itoa(t.Exit), sig, flag(t.TimedOut), flag(t.Canceled),
		strconv.FormatInt(t.DurationMS, 10), strconv.FormatInt(t.Bytes, 10),
		strconv.FormatInt(t.Kept, 10), strconv.FormatInt(t.Sent, 10),
		t.SHA256, strconv.FormatUint(t.AuditSeq, 10), t.AuditMAC,
	}
	var b strings.Builder
	b.WriteString(TrailerPrefix)
	for i, k := range trailerKeys {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(vals[i])
	}
	return b.String(), nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (t *Trailer) check() error {
	switch {
	case t.Exit < -1 || t.Exit > 255:
		return fmt.Errorf("trailer: exit %d is not in -1..255", t.Exit)
	case t.Signal != "" && !validSignal(t.Signal):
		return fmt.Errorf("trailer: bad signal name %s", show(t.Signal))
	case t.Signal != "" && t.Exit != -1:
		return fmt.Errorf("trailer: signal %s with exit %d, want -1", t.Signal, t.Exit)
	case t.DurationMS < 0 || t.Bytes < 0 || t.Kept < 0 || t.Sent < 0:
		return errors.New("trailer: negative count")
	case t.Kept > t.Bytes || t.Sent > t.Kept:
		return fmt.Errorf("trailer: sent %d ≤ kept %d ≤ bytes %d does not hold", t.Sent, t.Kept, t.Bytes)
	case !lowerHex(t.SHA256, 64):
		return errors.New("trailer: sha256 is not 64 lower-case hex digits")
	case t.AuditSeq == 0:
		return errors.New("trailer: audit_seq is 0")
	case !lowerHex(t.AuditMAC, AuditMACHex):
		return fmt.Errorf("trailer: audit_mac is not %d lower-case hex digits", AuditMACHex)
	}
	return nil
}

// validSignal accepts what unix.SignalName returns: SIG and 1-13 of
// A-Z, 0-9 and +.
func validSignal(s string) bool {
	rest, ok := strings.CutPrefix(s, "SIG")
	if !ok || len(rest) == 0 || len(rest) > 13 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+') {
			return false
		}
	}
	return true
}

func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ParseTrailer parses a trailer frame's payload strictly: the prefix, every
// key once in order with single spaces, canonical numbers, and the rules
// Format applies. Only a trailer Format produces is accepted.
func ParseTrailer(s string) (*Trailer, error) {
	if len(s) > MaxTrailerBytes {
		return nil, fmt.Errorf("trailer: %d bytes, at most %d", len(s), MaxTrailerBytes)
	}
	fields := strings.Split(s, " ")
	if len(fields) != len(trailerKeys)+1 || fields[0] != TrailerPrefix {
		return nil, fmt.Errorf("trailer: want %s and %d fields, got %s", TrailerPrefix, len(trailerKeys), show(s))
	}
	var t Trailer
	for i, k := range trailerKeys {
		v, ok := strings.CutPrefix(fields[i+1], k+"=")
		if !ok {
			return nil, fmt.Errorf("trailer: field %d: want %s=", i+1, k)
		}
		var err error
		switch k {
		case "exit":
			var n int64
			n, err = canonInt(v, true)
			t.Exit = int(n)
			if err == nil && (n < -1 || n > 255) {
				err = errors.New("out of range")
			}
		case "signal":
			switch v {
			case "":
				err = errors.New("empty (no signal is written -)") // one spelling, so a trailer reads back as written
			case "-":
			default:
				t.Signal = v
			}
		case "timed_out":
			t.TimedOut, err = parseFlag(v)
		case "canceled":
			t.Canceled, err = parseFlag(v)
		case "duration_ms":
			t.DurationMS, err = canonInt(v, false)
		case "bytes":
			t.Bytes, err = canonInt(v, false)
		case "kept":
			t.Kept, err = canonInt(v, false)
		case "sent":
			t.Sent, err = canonInt(v, false)
		case "sha256":
			t.SHA256 = v
		case "audit_seq":
			var n int64
			n, err = canonInt(v, false)
			t.AuditSeq = uint64(n)
		case "audit_mac":
			t.AuditMAC = v
		}
		if err != nil {
			return nil, fmt.Errorf("trailer: %s: %s: %w", k, show(v), err)
		}
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return &t, nil
}

func parseFlag(v string) (bool, error) {
	switch v {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, errors.New("want 0 or 1")
}

// canonInt parses a decimal integer with no sign (or "-" when neg is
// allowed), no leading zero and no more than 19 digits: one spelling per
// number.
func canonInt(v string, neg bool) (int64, error) {
	digits := v
	if neg {
		digits = strings.TrimPrefix(v, "-")
	}
	if len(digits) == 0 || len(digits) > 19 || (digits[0] == '0' && len(digits) > 1) || (digits == "0" && len(v) != 1) {
		return 0, errors.New("not a canonical number")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, errors.New("not a number")
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return n, nil
}
