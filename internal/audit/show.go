package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Filter selects records for show and /audit. Zero fields match anything.
type Filter struct {
	Since, Until time.Time // inclusive bounds on the record's time
	Types        []string  // any of these types
	Command      string
	Outcome      string
}

func (f *Filter) empty() bool {
	return f.Since.IsZero() && f.Until.IsZero() && len(f.Types) == 0 && f.Command == "" && f.Outcome == ""
}

func (f *Filter) match(e *Entry) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && e.Time.After(f.Until) {
		return false
	}
	if len(f.Types) > 0 {
		ok := false
		for _, t := range f.Types {
			ok = ok || Kind(t) == e.Type
		}
		if !ok {
			return false
		}
	}
	if f.Command != "" && strings.TrimPrefix(f.Command, "/") != e.Command {
		return false
	}
	return f.Outcome == "" || Outcome(f.Outcome) == e.Outcome
}

// Line is one record as shown to a person. Raw is the record's exact line
// (without the newline), for --json; the rest is parsed from it. A line
// that does not parse has Type "?" and says so in Detail.
type Line struct {
	File string
	Seq  uint64
	Time time.Time
	Entry
	Raw []byte
}

// maxField bounds each free-text field in a summary line, so that a chat
// reply stays short.
const maxField = 80

// String renders the line on one line, short and safe for the chat:
// control characters are replaced and long fields cut.
func (l Line) String() string {
	if l.Type == kindUnreadable {
		return fmt.Sprintf("%s %s", l.File, clean(l.Detail))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s #%d %s", l.Time.UTC().Format("2006-01-02 15:04:05Z"), l.Seq, l.Type)
	if l.Outcome != "" {
		b.WriteString(" " + clean(string(l.Outcome)))
	}
	if l.Command != "" {
		b.WriteString(" /" + clean(l.Command))
	}
	if l.Host != "" {
		b.WriteString(" host=" + clean(l.Host))
	}
	if l.UserID != 0 {
		fmt.Fprintf(&b, " user=%d", l.UserID)
	}
	if l.Job != "" {
		b.WriteString(" job=" + clean(l.Job))
	}
	if l.Exit != nil {
		fmt.Fprintf(&b, " exit=%d", *l.Exit)
	}
	if l.Signal != "" {
		b.WriteString(" signal=" + clean(l.Signal))
	}
	if l.TimedOut {
		b.WriteString(" timed-out")
	}
	if l.DurationMS != 0 {
		fmt.Fprintf(&b, " %dms", l.DurationMS)
	}
	if l.OutputBytes != 0 {
		fmt.Fprintf(&b, " out=%dB", l.OutputBytes)
	}
	if l.Count != 0 {
		fmt.Fprintf(&b, " +%d dropped", l.Count)
	}
	if l.RemoteSeq != 0 {
		fmt.Fprintf(&b, " remote=#%d", l.RemoteSeq)
	}
	if l.Peer != "" {
		b.WriteString(" peer=" + clean(l.Peer))
	}
	if l.Reason != "" {
		b.WriteString(` reason="` + clean(l.Reason) + `"`)
	}
	if l.Detail != "" {
		b.WriteString(` "` + clean(l.Detail) + `"`)
	}
	if l.Redacted {
		b.WriteString(" [redacted]")
	}
	return b.String()
}

// Columns renders the fixed-width columns of the table that relay audit
// show prints: time, seq, type, outcome, command, and the rest.
func (l Line) Columns() string {
	if l.Type == kindUnreadable {
		return l.String()
	}
	rest := l
	rest.Type, rest.Outcome, rest.Command = "", "", ""
	s := rest.String()
	// Drop the time, seq and empty type that String put first.
	if i := strings.Index(s, " #"); i >= 0 {
		if j := strings.IndexByte(s[i+2:], ' '); j >= 0 {
			s = strings.TrimSpace(s[i+2+j+1:])
		}
	}
	cmd := ""
	if l.Command != "" {
		cmd = "/" + clean(l.Command)
	}
	return fmt.Sprintf("%-20s %8d  %-12s %-8s %-16s %s", l.Time.UTC().Format("2006-01-02 15:04:05Z"), l.Seq, clean(string(l.Type)), clean(string(l.Outcome)), cmd, s)
}

// ColumnsHeader is the table's header line.
const ColumnsHeader = "TIME                      SEQ  TYPE         OUTCOME  COMMAND          DETAIL"

func clean(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxField {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Scan streams the records of files (oldest first) that match f to fn,
// stopping at fn's first error. It does not verify MACs: run Verify for
// that. Unparseable lines reach fn only when f is empty. A line that the
// filter's pre-check rules out from its raw bytes is never decoded.
func Scan(files []string, f Filter, fn func(Line) error) error {
	q := newQuery(&f)
	for _, path := range sortFiles(files) {
		if err := scanShow(path, q, fn); err != nil {
			return err
		}
	}
	return nil
}

// query is a Filter ready to be applied to raw lines.
type query struct {
	f     *Filter
	empty bool
	pre   *precheck // nil when f is empty
}

func newQuery(f *Filter) *query {
	q := &query{f: f, empty: f.empty()}
	if !q.empty {
		q.pre = newPrecheck(f)
	}
	return q
}

// classify decides what show does with one line s, as read (with its
// newline, or the final fragment of a file without one); long marks a line
// longer than any record, whose bytes were skipped. An unreadable line is
// shown only under an empty filter, and its Detail, which names its line
// number, is left for the caller (unreadableLine). The forward and the
// backward reader both go through here, so they show the same lines.
func (q *query) classify(name string, s []byte, long bool) (l Line, show, unreadable bool) {
	if !long {
		if q.pre != nil && q.pre.skip(s) {
			return l, false, false
		}
		if e, err := ParseRecord(s); err == nil {
			if !q.f.match(&e) {
				return l, false, false
			}
			return Line{File: name, Seq: e.Seq, Time: e.Time, Entry: e, Raw: append([]byte(nil), bytes.TrimSuffix(s, newline)...)}, true, false
		}
	}
	if !q.empty {
		return l, false, false
	}
	return Line{File: name, Entry: Entry{Record: Record{Type: kindUnreadable}}}, true, true
}

var newline = []byte("\n")

// unreadableLine is what show prints for line lineNo of file that does not
// parse.
func unreadableLine(file string, lineNo int) Line {
	return Line{File: file, Entry: Entry{Record: Record{Type: kindUnreadable, Detail: "line " + strconv.Itoa(lineNo) + ": unreadable (torn or damaged)"}}}
}

func scanShow(path string, q *query, fn func(Line) error) error {
	return scanShowN(path, q, func(l Line, _ int, _ []byte) error { return fn(l) })
}

// scanShowN is scanShow that also passes each shown line's number and its
// bytes as read (nil for a line too long to hold).
func scanShowN(path string, q *query, fn func(l Line, lineNo int, raw []byte) error) error {
	fh, closeFn, err := openLog(path, nil)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	defer closeFn()
	name := filepath.Base(path)
	br := bufio.NewReaderSize(fh, 2*MaxRecordBytes)
	lineNo := 0
	for {
		s, err := br.ReadSlice('\n')
		long := false
		for errors.Is(err, bufio.ErrBufferFull) {
			// Longer than any record: skip the rest of it.
			long = true
			_, err = br.ReadSlice('\n')
		}
		if len(s) > 0 || long {
			lineNo++
			if !long && len(bytes.TrimSuffix(s, newline)) > MaxRecordBytes {
				long = true
			}
			l, show, unreadable := q.classify(name, s, long)
			if unreadable {
				l = unreadableLine(name, lineNo)
			}
			var raw []byte
			if !long {
				raw = s
			}
			if show {
				if ferr := fn(l, lineNo, raw); ferr != nil {
					return ferr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read audit log %s: %w", name, err)
		}
	}
}

// Summarize returns the last n records matching f (all of them when n <= 0),
// oldest first. The chat's /audit N and relay audit show -n use it. With
// n > 0 it reads from the end of the newest file backwards, and reaches into
// an older file only when the newer ones hold fewer than n matches, so its
// cost follows n and not the log's size; it keeps at most n lines in
// memory either way.
func Summarize(files []string, f Filter, n int) ([]Line, error) {
	if n <= 0 {
		var out []Line
		err := Scan(files, f, func(l Line) error { out = append(out, l); return nil })
		return out, err
	}
	return summarizeTail(files, f, n, tailBlock)
}

// kindUnreadable marks a line show could not read. It is shown, never
// written.
const kindUnreadable Kind = "?"
