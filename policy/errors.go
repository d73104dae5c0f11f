package policy

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/relaychat/relay/internal/suggest"
)

// Error is one problem found in a config file, with its position. Line and
// Col are 1-based; 0 means the position is unknown (the whole file).
type Error struct {
	File      string
	Line, Col int
	Msg       string
	// Hint names the fix, e.g. `did you mean "timeout"?`; may be empty.
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// ErrorList is every problem found in one file, in file order. Load and
// Parse never stop at the first error, so the owner fixes a file in one pass.
type ErrorList []*Error

// SafeToShow is the first problem: a position in the owner's own policy
// file and what the loader found there, the value quoted short by show.
func (l *ErrorList) SafeToShow() string {
	if l == nil || len(*l) == 0 {
		return ""
	}
	return (*l)[0].Error()
}

func (l *ErrorList) Error() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, e := range *l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// UsageError reports the wrong number of chat arguments. Its message is
// built only from the schema, never from the arguments, so it is safe to
// show in the chat.
type UsageError struct {
	Command string // the command name
	Reason  string // e.g. "too many arguments: want at most 1, got 3"
	Usage   string // the usage line, e.g. "/restart <unit: nginx|caddy>"
}

func (e *UsageError) Error() string { return e.Reason + "; usage: " + e.Usage }

// SafeToShow is the message, built from the schema only.
func (e *UsageError) SafeToShow() string { return e.Error() }

// ArgError reports a chat argument that fails its parameter's type. Its
// message names the parameter and why, quotes at most a short, escaped
// prefix of the value, and is safe to show in the chat.
type ArgError struct {
	Param  string // the parameter name
	Reason string // why, already safe to show
}

func (e *ArgError) Error() string { return fmt.Sprintf("argument %q: %s", e.Param, e.Reason) }

// SafeToShow is the message: the parameter, why, and a short quoted prefix.
func (e *ArgError) SafeToShow() string { return e.Error() }

// SplitError reports a chat argument string that cannot be tokenized. It
// never echoes the input.
type SplitError struct{ Reason string }

func (e *SplitError) Error() string { return "cannot read the arguments: " + e.Reason }

// SafeToShow is the message, which never echoes the input.
func (e *SplitError) SafeToShow() string { return e.Error() }

// maxShown is how many bytes of an offending value an error quotes.
const maxShown = 32

// show renders an untrusted value for an error message: a short prefix,
// cut on a rune boundary, quoted with every control, format and non-graphic
// character escaped, so a bidi override or newline cannot reshape the chat.
func show(v string) string {
	if len(v) <= maxShown {
		return strconv.QuoteToGraphic(v)
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return strconv.QuoteToGraphic(v[:cut]) + fmt.Sprintf("… (%d bytes)", len(v))
}

// didYouMean is the hint for a word that is not one of candidates: the
// closest candidate, when one is close enough to be a typo.
func didYouMean(s string, candidates []string) string {
	if c := suggest.Closest(s, candidates); c != "" {
		return fmt.Sprintf("did you mean %q?", c)
	}
	return ""
}
