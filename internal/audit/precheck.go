package audit

import (
	"bytes"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// precheck rejects, from a line's raw bytes, the records a Filter
// certainly does not select, so that show decodes only the lines that
// might match. A true from skip is a proof: ParseRecord fails on the line,
// or Filter.match fails on what it returns. Anything it cannot prove cheaply
// it leaves to the decoder (FuzzPrecheck holds it to that).
//
// What it relies on:
//   - ParseRecord frames a line with parseHeader and rejects a line whose
//     JSON disagrees with the header's seq, ts, prev or type, so the
//     header's type and ts bytes are the record's;
//   - a valid ts is 30 fixed-width bytes in UTC, so comparing the bytes
//     compares the times;
//   - encoding/json decodes a string with no backslash in it to its raw
//     bytes, except that invalid UTF-8 becomes U+FFFD; so a decoded
//     command or outcome equal to a needle without U+FFFD is either in the
//     line verbatim or escaped, and then the line holds a backslash. Keys
//     are not looked at: encoding/json matches them in any case and takes
//     the last of duplicates.
type precheck struct {
	types        [][]byte // any of these types; nil: any
	since, until []byte   // bounds in ts form; nil: unbounded or not comparable
	needles      [][]byte // each must appear verbatim, unless the line holds a backslash
}

func newPrecheck(f *Filter) *precheck {
	p := &precheck{}
	for _, t := range f.Types {
		p.types = append(p.types, []byte(t))
	}
	p.since, p.until = tsBound(f.Since), tsBound(f.Until)
	if c := strings.TrimPrefix(f.Command, "/"); f.Command != "" && verbatim(c) {
		p.needles = append(p.needles, []byte(c))
	}
	if verbatim(f.Outcome) {
		p.needles = append(p.needles, []byte(f.Outcome))
	}
	return p
}

// verbatim reports whether a decoded field equal to s must show s in the
// raw line when the line holds no backslash.
func verbatim(s string) bool {
	return s != "" && !strings.ContainsRune(s, utf8.RuneError)
}

// tsBound returns t in the log's ts form, or nil when there is no bound
// (the zero time) or t falls outside the years the fixed width covers.
func tsBound(t time.Time) []byte {
	if t.IsZero() {
		return nil
	}
	b := t.UTC().AppendFormat(nil, tsLayout)
	if len(b) != tsLen {
		return nil
	}
	return b
}

// skip reports whether line (with its newline, as read) certainly is not
// shown under the filter. A line without a newline, the torn end of a
// file, is never skipped: ParseRecord completes it, and the decoder
// decides.
func (p *precheck) skip(line []byte) bool {
	if len(line) == 0 || line[len(line)-1] != '\n' {
		return false
	}
	h, reason := parseHeader(line)
	if reason != "" {
		return true // ParseRecord fails on it too
	}
	if p.types != nil && !slices.ContainsFunc(p.types, func(t []byte) bool { return bytes.Equal(t, h.typ) }) {
		return true
	}
	if p.since != nil && bytes.Compare(h.ts, p.since) < 0 {
		return true
	}
	if p.until != nil && bytes.Compare(h.ts, p.until) > 0 {
		return true
	}
	if len(p.needles) > 0 && bytes.IndexByte(line, '\\') < 0 {
		for _, n := range p.needles {
			if !bytes.Contains(line, n) {
				return true
			}
		}
	}
	return false
}
