package audit

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// rawLine frames content (a JSON object without its closing brace, header
// first) as a log line with some MAC: show does not check MACs, so any
// bytes in this shape reach the pre-check and the decoder.
func rawLine(content string) []byte {
	return []byte(content + `,"mac":"` + strings.Repeat("ab", 32) + "\"}\n")
}

const hdr = `{"seq":5,"ts":"2026-03-01T12:00:05.000000000Z","prev":"","type":`

var tsOfHdr = time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC)

// decodeOnly is what show decides for a line without the pre-check.
func decodeOnly(f Filter, line []byte) (Line, bool) {
	q := newQuery(&f)
	q.pre = nil
	l, show, _ := q.classify("f", line, false)
	return l, show
}

// checkPrecheck fails when the pre-check changes what show does with line
// under f, and reports whether it skipped the line.
func checkPrecheck(t *testing.T, f Filter, line []byte) bool {
	t.Helper()
	want, wantShow := decodeOnly(f, line)
	q := newQuery(&f)
	got, gotShow, _ := q.classify("f", line, false)
	if gotShow != wantShow || !reflect.DeepEqual(got, want) {
		t.Fatalf("filter %+v, line %q: with the pre-check shown=%v %v, decoding alone shown=%v %v", f, line, gotShow, got, wantShow, want)
	}
	return q.pre != nil && q.pre.skip(line)
}

// TestPrecheckNeverDropsAMatch holds the pre-check to the decoder on lines
// built to fool a byte search: needles inside other fields, escaped and
// case-shifted keys and values, whitespace, duplicate keys, invalid UTF-8,
// bounds equal to the record's time. It also proves that the pre-check
// does skip what it should, so that it is not a no-op.
func TestPrecheckNeverDropsAMatch(t *testing.T) {
	tests := []struct {
		name string
		line string
		f    Filter
		show bool // what the decoder decides
		skip bool // whether the pre-check must skip it
	}{
		{"type skipped", hdr + `"exec_end","command":"uptime"`, Filter{Types: []string{"login"}}, false, true},
		{"type in detail", hdr + `"request","detail":"\"type\":\"login\""`, Filter{Types: []string{"login"}}, false, true},
		{"type matches", hdr + `"login","detail":"\"type\":\"request\""`, Filter{Types: []string{"request", "login"}}, true, false},
		{"command verbatim", hdr + `"request","command":"uptime"`, Filter{Command: "/uptime"}, true, false},
		{"command absent", hdr + `"request","command":"reboot"`, Filter{Command: "uptime"}, false, true},
		{"command only in detail", hdr + `"request","command":"reboot","detail":"uptime"`, Filter{Command: "uptime"}, false, false},
		{"command escaped", hdr + `"request","command":"\u0075ptime"`, Filter{Command: "uptime"}, true, false},
		{"command key in upper case", hdr + `"request","COMMAND":"uptime"`, Filter{Command: "uptime"}, true, false},
		{"command key escaped", hdr + `"request","\u0063ommand":"uptime"`, Filter{Command: "uptime"}, true, false},
		{"whitespace around the colon", hdr + `"request","command" : "uptime"`, Filter{Command: "uptime"}, true, false},
		{"duplicate key, last wins", hdr + `"request","command":"reboot","command":"uptime"`, Filter{Command: "uptime"}, true, false},
		{"duplicate key, first would match", hdr + `"request","command":"uptime","command":"reboot"`, Filter{Command: "uptime"}, false, false},
		{"invalid UTF-8 decodes to U+FFFD", hdr + "\"request\",\"command\":\"upt\xffme\"", Filter{Command: "upt\ufffdme"}, true, false},
		{"HTML escape", hdr + `"request","command":"a\u003cb"`, Filter{Command: "a<b"}, true, false},
		{"outcome escaped", hdr + `"request","outcome":"\u006fk"`, Filter{Outcome: "ok"}, true, false},
		{"outcome absent", hdr + `"request","outcome":"denied"`, Filter{Outcome: "ok"}, false, true},
		{"outcome and command both needed", hdr + `"request","outcome":"ok","command":"reboot"`, Filter{Outcome: "ok", Command: "uptime"}, false, true},
		{"since equal", hdr + `"request"`, Filter{Since: tsOfHdr}, true, false},
		{"since a nanosecond later", hdr + `"request"`, Filter{Since: tsOfHdr.Add(1)}, false, true},
		{"until equal", hdr + `"request"`, Filter{Until: tsOfHdr}, true, false},
		{"until a nanosecond earlier", hdr + `"request"`, Filter{Until: tsOfHdr.Add(-1)}, false, true},
		{"since in another zone", hdr + `"request"`, Filter{Since: tsOfHdr.In(time.FixedZone("x", 5*3600))}, true, false},
		{"since before year 0", hdr + `"request"`, Filter{Since: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)}, true, false},
		{"until after year 9999", hdr + `"request"`, Filter{Until: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}, true, false},
		{"duplicate ts is not shown", hdr + `"request","ts":"2030-01-01T00:00:00.000000000Z"`, Filter{Since: tsOfHdr.Add(time.Hour)}, false, true},
		{"ts key in upper case is not shown", hdr + `"request","TS":"2030-01-01T00:00:00.000000000Z"`, Filter{Types: []string{"request"}}, false, false},
		{"bad framing", `{"seq":x` + hdr[8:] + `"request"`, Filter{Types: []string{"request"}}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := rawLine(tt.line)
			if _, show := decodeOnly(tt.f, line); show != tt.show {
				t.Fatalf("decoder shows it: got %v, want %v", show, tt.show)
			}
			if skip := checkPrecheck(t, tt.f, line); skip != tt.skip {
				t.Fatalf("pre-check skips it: got %v, want %v", skip, tt.skip)
			}
		})
	}
}

// FuzzPrecheck compares pre-check plus decoding with decoding alone, over
// raw lines and over records the writer encodes, under random filters: the
// pre-check may only ever save work.
func FuzzPrecheck(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, typ, outcome, command, detail string, fTypes, fOutcome, fCommand string,
		sinceOn bool, since int64, untilOn bool, until int64) {
		var flt Filter
		if fTypes != "" {
			flt.Types = strings.Split(fTypes, ",")
		}
		flt.Outcome, flt.Command = fOutcome, fCommand
		lines := [][]byte{raw}
		r := Record{Type: Kind(typ), Outcome: Outcome(outcome), Command: command, Detail: detail, Params: map[string]string{detail: command}}
		if body, err := encodeBody(&r); err == nil && validType([]byte(typ)) {
			if line, _, err := appendLine(nil, newSealer(make([]byte, keySize)), newLinkHash(), 9, tsOfHdr, nil, &[32]byte{}, body); err == nil {
				lines = append(lines, line)
			}
		}
		for _, line := range lines {
			base := tsOfHdr
			if e, err := ParseRecord(line); err == nil {
				base = e.Time
			}
			if sinceOn {
				flt.Since = base.Add(time.Duration(since))
			}
			if untilOn {
				flt.Until = base.Add(time.Duration(until))
			}
			checkPrecheck(t, flt, line)
		}
	})
}
