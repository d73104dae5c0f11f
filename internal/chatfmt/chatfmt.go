// Package chatfmt renders command output and replies as Telegram HTML
// messages, including the one summary message of a fan-out to several
// hosts (FanOut).
//
// It owns the rules that keep a message deliverable: escape sequences and
// control characters are stripped, invalid UTF-8 is repaired, every <, >, &
// and quote is escaped, the only tags emitted are <pre>, <i>, <b> and
// <code>, always balanced, and a message never exceeds Telegram's
// 4096-character limit as Telegram counts it (UTF-16 code units of the text
// after entity parsing). It renders every reply whose layout is more than
// one line: command output, live progress, /help (split into as many
// messages as it takes), /status, /ps, the confirm prompt and checkpoints.
//
// It must never emit a tag, attribute or entity built from its input, and it
// never decides where output goes (message or document): the caller asks
// FitsMessage.
package chatfmt

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// MaxMessage is Telegram's limit for a message text, in UTF-16 code
	// units of the text after entity parsing.
	MaxMessage = 4096

	// margin is kept free below MaxMessage, so that a difference between
	// our count and Telegram's (for instance in how it normalises
	// whitespace) can never push a message over the limit.
	margin = 96

	// limit is the budget every rendered message stays within.
	limit = MaxMessage - margin

	// scanWindow is how much of the end of a long output Pre looks at. The
	// widest message holds ~4000 characters, so 64 KiB leaves room for
	// output that is mostly escape sequences, and bounds Pre's work and
	// memory whatever the output size.
	scanWindow = 64 << 10

	// footerMax caps the footer, so a long footer cannot starve the output.
	footerMax = 256

	// lineMax caps a one-line reply.
	lineMax = 512

	// progressMax and progressLines bound the live-progress message: it is
	// edited every few seconds and should stay a glance, not a page.
	progressMax   = 1000
	progressLines = 10
)

// Escape returns s as safe Telegram HTML text: invalid UTF-8 becomes U+FFFD,
// escape sequences and control characters other than newline and tab are
// removed, and &, <, >, " and ' are escaped. It does not limit the length.
func Escape(s string) string {
	runes, _ := clean([]byte(s))
	var b strings.Builder
	b.Grow(len(s))
	writeEscaped(&b, runes)
	return b.String()
}

// Line returns s as a one-line reply that is safe to send as HTML: like
// Escape, with newlines and tabs turned into spaces and the text cut to a
// few hundred characters with an ellipsis.
func Line(s string) string {
	var b strings.Builder
	writeLine(&b, s, lineMax)
	return b.String()
}

// NotifyHeader starts every message relay notify sends, on a line of its
// own: nothing a notification carries can then pass for a checkpoint, a
// command's result or anything else relay says itself.
const NotifyHeader = "📨 relay notify"

// Notify renders a notification from another local program: the header,
// the sender's program name as it gave it, then the text, all escaped.
func Notify(program, text string) string {
	var b strings.Builder
	b.WriteString("<i>" + NotifyHeader)
	if program != "" {
		b.WriteString(" · ")
		writeLine(&b, program, 32)
	}
	b.WriteString("</i>\n")
	b.WriteString(Escape(text))
	return b.String()
}

// Pre renders command output as a <pre> block followed by a footer line
// (for instance "exit 0 · 1.2s"). If the output does not fit in one
// message, Pre keeps its tail, starting at a line boundary when it can, and
// says how many bytes it left out above the block: the last lines are
// usually what matters, and the caller sends the whole output as a
// document when FitsMessage reports false.
func Pre(output []byte, footer string) string {
	s, _ := render(output, footer)
	return s
}

// FitsMessage reports whether Pre would show output whole, without leaving
// anything out.
func FitsMessage(output []byte, footer string) bool {
	_, truncated := render(output, footer)
	return !truncated
}

// TextBudget is how many UTF-16 units of output Pre shows whole, without
// leaving anything out, next to footer: what a renderer that cuts its own
// text (a table keeping its header row) may fill.
func TextBudget(footer string) int {
	if footer == "" {
		return limit
	}
	var foot strings.Builder
	return limit - writeLine(&foot, footer, footerMax) - 1
}

// Progress renders the live-progress message for a running command: the
// elapsed time and the last few lines of its output so far.
func Progress(elapsed time.Duration, tail []byte) string {
	var b strings.Builder
	b.WriteString("⏳ running · ")
	b.WriteString(Elapsed(elapsed))
	runes, _ := clean(window(tail))
	runes = trimTrailingSpace(runes)
	start := tailStart(runes, progressMax, progressLines)
	if start < len(runes) {
		b.WriteString("\n<pre>")
		writeEscaped(&b, runes[start:])
		b.WriteString("</pre>")
	}
	return b.String()
}

// Elapsed formats a duration the way replies show it: "0.4s", "12s",
// "2m03s", "1h02m".
func Elapsed(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		m := int(d / time.Minute)
		s := int(d % time.Minute / time.Second)
		return strconv.Itoa(m) + "m" + pad2(s) + "s"
	default:
		h := int(d / time.Hour)
		m := int(d % time.Hour / time.Minute)
		return strconv.Itoa(h) + "h" + pad2(m) + "m"
	}
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// render lays out Pre's message and reports whether it left output out.
func render(output []byte, footer string) (string, bool) {
	var foot strings.Builder
	footUnits := 0
	if footer != "" {
		footUnits = writeLine(&foot, footer, footerMax) + 1 // +1 for the newline before it
	}

	win := window(output)
	skipped := len(output) - len(win)
	runes, offs := clean(win)
	runes = trimTrailingSpace(runes)

	var b strings.Builder
	if skipped == 0 && units(runes)+footUnits <= limit {
		writeBlock(&b, runes)
		if footUnits > 0 {
			b.WriteByte('\n')
			b.WriteString(foot.String())
		}
		return b.String(), false
	}

	// The note is at most "… " + 20 digits + " bytes omitted" + newline;
	// reserve that much whatever the actual count.
	const noteUnits = 2 + 20 + 14 + 1
	start := tailStart(runes, limit-footUnits-noteUnits, 0)
	omitted := len(output)
	if start < len(runes) {
		omitted = skipped + int(offs[start])
	}
	b.WriteString("<i>… ")
	b.WriteString(strconv.Itoa(omitted))
	b.WriteString(" bytes omitted</i>\n")
	writeBlock(&b, runes[start:])
	if footUnits > 0 {
		b.WriteByte('\n')
		b.WriteString(foot.String())
	}
	return b.String(), true
}

// window returns the part of output that rendering looks at: all of it
// when short, else its last scanWindow bytes, started at a line boundary
// if one is near, so that it does not begin inside a rune or an escape
// sequence.
func window(output []byte) []byte {
	if len(output) <= scanWindow {
		return output
	}
	w := output[len(output)-scanWindow:]
	for i := 0; i < len(w) && i < 1024; i++ {
		if w[i] == '\n' {
			return w[i+1:]
		}
	}
	for len(w) > 0 && !utf8.RuneStart(w[0]) {
		w = w[1:]
	}
	return w
}

// writeBlock writes runes as a <pre> block, or a placeholder when there is
// nothing to show: an empty <pre> entity is not something to rely on.
func writeBlock(b *strings.Builder, runes []rune) {
	if len(runes) == 0 {
		b.WriteString("<i>(no output)</i>")
		return
	}
	b.WriteString("<pre>")
	writeEscaped(b, runes)
	b.WriteString("</pre>")
}

// writeLine writes s cleaned, on one line, cut to max units, and returns the
// units written.
func writeLine(b *strings.Builder, s string, max int) int {
	runes, _ := clean([]byte(s))
	for i, r := range runes {
		if r == '\n' || r == '\t' {
			runes[i] = ' '
		}
	}
	runes = trimTrailingSpace(runes)
	if units(runes) > max {
		n, acc := 0, 0
		for n < len(runes) && acc+runeUnits(runes[n]) <= max-1 {
			acc += runeUnits(runes[n])
			n++
		}
		runes = append(runes[:n:n], '…')
	}
	writeEscaped(b, runes)
	return units(runes)
}

// tailStart returns the index where the longest suffix of runes that fits
// in max units (and, if maxLines > 0, in maxLines lines) starts. It moves
// the start to the next line when the cut would fall inside a line and the
// rest of that line is short, so the block opens with a whole line.
func tailStart(runes []rune, max, maxLines int) int {
	i, acc, lines := len(runes), 0, 0
	for i > 0 {
		r := runes[i-1]
		if r == '\n' && maxLines > 0 {
			lines++
			if lines >= maxLines {
				return i
			}
		}
		u := runeUnits(r)
		if acc+u > max {
			break
		}
		acc += u
		i--
	}
	if i == 0 || runes[i-1] == '\n' {
		return i
	}
	for j := i; j < len(runes) && j-i < max/4; j++ {
		if runes[j] == '\n' {
			return j + 1
		}
	}
	return i
}

func trimTrailingSpace(runes []rune) []rune {
	for len(runes) > 0 {
		switch runes[len(runes)-1] {
		case '\n', '\t', ' ':
			runes = runes[:len(runes)-1]
		default:
			return runes
		}
	}
	return runes
}

// units counts runes the way Telegram measures text: UTF-16 code units.
func units(runes []rune) int {
	n := 0
	for _, r := range runes {
		n += runeUnits(r)
	}
	return n
}

func runeUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

func writeEscaped(b *strings.Builder, runes []rune) {
	for _, r := range runes {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&#39;")
		default:
			b.WriteRune(r)
		}
	}
}
