package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime/metrics"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/itchyny/gojq"

	"github.com/relaychat/relay/internal/chatfmt"
)

// Spec is a command's format as the policy states it.
type Spec struct {
	// JQ is the expression (format.jq); "" passes the input through.
	JQ string
	// Text makes the input one string, the whole output less one final
	// newline (format.input: text), for a command that prints a plain
	// value (an MQTT payload such as "on"); otherwise the output is a
	// stream of JSON values, each run through JQ.
	Text bool
	// Table lays the results out as an aligned table (format.table).
	Table bool
	// Columns are the table's columns, the keys of each object row
	// (format.table: [a, b]); nil takes every key of the rows, sorted.
	Columns []string
}

// Program is a compiled Spec. It is immutable and safe for concurrent use.
type Program struct {
	spec Spec
	code *gojq.Code // nil when Spec.JQ is ""
}

// CompileError is an expression the relay will not run.
type CompileError struct {
	// Offset is the byte offset in the expression the error concerns, or
	// -1 when the error is about the whole expression.
	Offset int
	Msg    string
}

func (e *CompileError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("%s (at character %d of the expression)", e.Msg, e.Offset+1)
	}
	return e.Msg
}

// Compile checks and compiles a Spec. The policy loader calls it for every
// command with a format, so an expression that fails here never loads.
func Compile(s Spec) (*Program, error) {
	if s.JQ == "" && !s.Table {
		return nil, &CompileError{Offset: -1, Msg: "a format needs jq, table, or both"}
	}
	p := &Program{spec: s}
	if s.JQ == "" {
		return p, nil
	}
	q, err := gojq.Parse(s.JQ)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			off := pe.Offset - len(pe.Token)
			if off < 0 || off > len(s.JQ) {
				off = pe.Offset
			}
			return nil, &CompileError{Offset: min(off, len(s.JQ)), Msg: "jq syntax: " + pe.Error()}
		}
		return nil, &CompileError{Offset: -1, Msg: "jq syntax: " + err.Error()}
	}
	w := &rewriter{src: s.JQ}
	w.query(q)
	if w.err != nil {
		return nil, w.err
	}
	code, err := gojq.Compile(q, guardOptions()...)
	if err != nil {
		return nil, &CompileError{Offset: -1, Msg: "jq: " + err.Error()}
	}
	p.code = code
	return p, nil
}

// Spec returns what the program was compiled from.
func (p *Program) Spec() Spec { return p.spec }

// Limits bound one Render. A zero field takes the default shown.
type Limits struct {
	// Input is the most output bytes Render reads (default MaxInput). The
	// caller passes min(the command's max_output, MaxInput).
	Input int64
	// Output is the most bytes of rendered text (default MaxOutput).
	Output int
	// Time bounds the evaluation (default MaxTime).
	Time time.Duration
	// Alloc bounds the heap the evaluation may allocate in all, decoding
	// included (default MaxAlloc).
	Alloc uint64
	// Units is what a table may fill, in UTF-16 units; the caller passes
	// chatfmt.TextBudget(footer). The default fits any footer.
	Units int
}

// The defaults of Limits.
const (
	MaxInput  = 4 << 20
	MaxOutput = 64 << 10
	MaxTime   = 250 * time.Millisecond
	MaxAlloc  = 128 << 20
)

var defaultUnits = chatfmt.TextBudget(strings.Repeat("x", 256))

func (l Limits) withDefaults() Limits {
	if l.Input <= 0 || l.Input > MaxInput {
		l.Input = MaxInput
	}
	if l.Output <= 0 {
		l.Output = MaxOutput
	}
	if l.Time <= 0 {
		l.Time = MaxTime
	}
	if l.Alloc == 0 {
		l.Alloc = MaxAlloc
	}
	if l.Units <= 0 {
		l.Units = defaultUnits
	}
	return l
}

// Error is why a rendering failed. Reason is one line, safe to show in the
// chat next to the raw output: it names the bound or the problem, and
// quotes at most a short preview of a value.
type Error struct {
	Reason string
	// Limit is set when a bound (time, memory, size) cut the work off,
	// rather than the expression failing on this output.
	Limit bool
}

func (e *Error) Error() string { return "format: " + e.Reason }

// Note is the one line the caller shows above (or below) the raw output
// when Render failed: "format failed (…); the raw output follows".
func Note(err error) string {
	var e *Error
	reason := "unknown error"
	if errors.As(err, &e) {
		reason = e.Reason
	} else if err != nil {
		reason = oneLine(err.Error())
	}
	return "format failed (" + reason + "); raw output shown"
}

func oneLine(s string) string {
	if len(s) > 1024 {
		s = s[:1024]
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

var (
	errTime  = errors.New("time")
	errAlloc = errors.New("alloc")
)

// Render applies the program to a command's output and returns the text
// to show (plain text: the caller escapes it, with chatfmt.Pre). On any
// failure it returns an *Error and no text: the caller then shows the raw
// output with Note(err). It reads at most lim.Input bytes of r.
func (p *Program) Render(ctx context.Context, r io.Reader, lim Limits) (string, error) {
	lim = lim.withDefaults()
	data, err := readAll(r, lim.Input+1)
	if err != nil {
		return "", &Error{Reason: "reading the output: " + oneLine(err.Error())}
	}
	if int64(len(data)) > lim.Input {
		return "", &Error{Reason: fmt.Sprintf("the output is over %s", size(lim.Input)), Limit: true}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctx, stop := context.WithTimeoutCause(ctx, lim.Time, errTime)
	defer stop()
	done := make(chan struct{})
	defer close(done)
	go watch(ctx, done, lim.Alloc, cancel)

	out := &output{limit: lim.Output}
	var rows []any
	emit := func(v any) error {
		if p.spec.Table {
			rows = append(rows, v)
			if len(rows) > maxRows {
				return &Error{Reason: fmt.Sprintf("more than %d table rows", maxRows), Limit: true}
			}
			return nil
		}
		return out.value(v)
	}
	run := func(v any) error {
		if p.code == nil {
			return emit(v)
		}
		it := p.code.RunWithContext(ctx, v)
		for {
			r, ok := it.Next()
			if !ok {
				return nil
			}
			if err, ok := r.(error); ok {
				return evalError(ctx, err, lim)
			}
			if err := emit(r); err != nil {
				return err
			}
		}
	}
	if p.spec.Text {
		s := string(data)
		s = strings.TrimSuffix(s, "\n")
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\ufffd")
		}
		if err := run(s); err != nil {
			return "", err
		}
	} else {
		d := &decoder{b: data}
		n := 0
		for {
			v, end, err := d.next()
			if err != nil {
				return "", &Error{Reason: "the output is " + err.Error()}
			}
			if end {
				break
			}
			n++
			if err := run(v); err != nil {
				return "", err
			}
			if ctx.Err() != nil {
				return "", evalError(ctx, ctx.Err(), lim)
			}
		}
		if n == 0 {
			return "", &Error{Reason: "the output is empty, not JSON"}
		}
	}
	if ctx.Err() != nil {
		return "", evalError(ctx, ctx.Err(), lim)
	}
	if p.spec.Table {
		if len(rows) == 1 {
			if a, ok := rows[0].([]any); ok {
				rows = a
			}
		}
		return table(rows, p.spec.Columns, lim)
	}
	return out.String(), nil
}

// readAll reads at most limit bytes of r, into a buffer sized once when r
// can tell its size (a spool file, a bytes.Reader): growing a buffer to
// a megabyte by doubling costs more than decoding it.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	var n int64 = -1
	switch s := r.(type) {
	case interface{ Len() int }:
		n = int64(s.Len())
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := s.Stat(); err == nil && fi.Mode().IsRegular() {
			n = fi.Size()
		}
	}
	if n < 0 || n >= limit {
		return io.ReadAll(io.LimitReader(r, limit))
	}
	buf := make([]byte, n, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	// More may have been written since; read it, up to the limit.
	rest, err := io.ReadAll(io.LimitReader(r, limit-n))
	return append(buf, rest...), err
}

// maxRows bounds the rows a table collects; far more than fit a message.
const maxRows = 100000

func evalError(ctx context.Context, err error, lim Limits) error {
	switch context.Cause(ctx) {
	case errTime:
		return &Error{Reason: fmt.Sprintf("took longer than %s", lim.Time), Limit: true}
	case errAlloc:
		return &Error{Reason: fmt.Sprintf("needed more than %s of memory", size(int64(lim.Alloc))), Limit: true}
	}
	if ctx.Err() != nil { // the caller's context
		return &Error{Reason: "cancelled"}
	}
	var ge *guardError
	if errors.As(err, &ge) {
		return &Error{Reason: ge.msg, Limit: true}
	}
	// error(v) carries a value whose message would be all of it: show a
	// preview only (gojq's own messages preview their values already).
	var ve gojq.ValueError
	if errors.As(err, &ve) {
		v := ve.Value()
		if s, ok := v.(string); ok {
			return &Error{Reason: "jq: error: " + oneLine(s)}
		}
		return &Error{Reason: "jq: error: " + gojq.Preview(v)}
	}
	return &Error{Reason: "jq: " + oneLine(err.Error())}
}

// watch cancels the evaluation once the process has allocated more than
// budget bytes since it started. The runtime's cumulative count covers
// every goroutine, so a busy relay only makes the bound stricter; it counts
// a span when a goroutine takes one, so it runs ahead of use, not behind.
func watch(ctx context.Context, done <-chan struct{}, budget uint64, cancel context.CancelCauseFunc) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(sample)
	start := sample[0].Value.Uint64()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			metrics.Read(sample)
			if sample[0].Value.Uint64()-start > budget {
				cancel(errAlloc)
				return
			}
		}
	}
}

func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
