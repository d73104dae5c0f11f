package chatfmt

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HostOutcome is how one host of a fan-out fared, for its mark.
type HostOutcome int

const (
	HostOK     HostOutcome = iota // ran, exit 0
	HostFailed                    // ran, and failed or was killed
	HostNotRun                    // did not run: refused, unreachable, …
)

// HostLine is one host of a fan-out summary, as plain data.
type HostLine struct {
	Host    string
	Outcome HostOutcome
	// Status says how it ended in a few words ("exit 0", "unreachable:
	// connection refused"); it is cleaned and cut to one short line.
	Status  string
	Elapsed time.Duration
	// Output is the start of the host's output: no more than
	// FanOutInline bytes are ever shown inline, so that much is enough.
	Output []byte
	// Size is the whole output's size; 0 when there is none.
	Size int64
}

const (
	// FanOutInline is the most output bytes of one host shown inline.
	FanOutInline = 1500
	// fanOutLines bounds a host's inline block, so that one chatty host
	// does not push the others' answers off the phone's screen.
	fanOutLines = 15
	// statusMax cuts a host's status.
	statusMax = 120
)

var marks = map[HostOutcome]string{HostOK: "✅", HostFailed: "❌", HostNotRun: "⛔"}

// FanOut renders the one message that sums up a fan-out: the title with
// the counts and the time, then a line per host (mark, name, status,
// time), with a host's output inline in a <pre> block when it is short
// and the message still fits, and "output attached" otherwise. attach
// lists, in host order, the hosts whose output the caller sends as a
// document. The message stays within Telegram's limit however many hosts
// there are: the hosts that do not fit are named in a last line.
func FanOut(title string, elapsed time.Duration, hosts []HostLine) (text string, attach []int) {
	ok, failed, notRun := 0, 0, 0
	for _, h := range hosts {
		switch h.Outcome {
		case HostOK:
			ok++
		case HostFailed:
			failed++
		default:
			notRun++
		}
	}
	head := fmt.Sprintf("%s · %d host%s · %d ok", title, len(hosts), plural(len(hosts)), ok)
	if failed > 0 {
		head += fmt.Sprintf(" · %d failed", failed)
	}
	if notRun > 0 {
		head += fmt.Sprintf(" · %d not run", notRun)
	}
	head += " · " + Elapsed(elapsed)

	var b strings.Builder
	used := writeLine(&b, head, lineMax)

	// Every host's line first, each with room for "output attached":
	// the lines are the answer, the inline output is a bonus.
	lines := make([]string, len(hosts))
	lineUnits := make([]int, len(hosts))
	for i, h := range hosts {
		s := marks[h.Outcome] + " " + h.Host + " · " + cut(h.Status, statusMax)
		if h.Outcome != HostNotRun {
			s += " · " + Elapsed(h.Elapsed)
		}
		var lb strings.Builder
		lineUnits[i] = writeLine(&lb, s, lineMax) + 1
		lines[i] = lb.String()
	}
	const attachedMax = len(" · output attached (1023.9 KiB)")
	shown := len(hosts)
	total := used
	for i := range hosts {
		cost := lineUnits[i]
		if hosts[i].Size > 0 {
			cost += attachedMax
		}
		// Stopping later needs room for the line naming the rest.
		reserve := 0
		if i < len(hosts)-1 {
			reserve = lineMax + 1
		}
		if total+cost+reserve > limit {
			shown = i
			break
		}
		total += cost
	}
	budget := limit - total
	if shown < len(hosts) {
		budget -= lineMax + 1
	}
	for i, h := range hosts[:shown] {
		b.WriteByte('\n')
		b.WriteString(lines[i])
		if h.Size == 0 {
			continue
		}
		if block, n, ok := inline(h); ok && n+1 <= budget {
			b.WriteByte('\n')
			b.WriteString(block)
			budget -= n + 1
			continue
		}
		b.WriteString(" · output attached (" + size(h.Size) + ")")
		attach = append(attach, i)
	}
	for i := shown; i < len(hosts); i++ {
		if hosts[i].Size > 0 {
			attach = append(attach, i)
		}
	}
	if shown < len(hosts) {
		names := make([]string, 0, len(hosts)-shown)
		for _, h := range hosts[shown:] {
			names = append(names, h.Host)
		}
		b.WriteString("\n<i>")
		writeLine(&b, fmt.Sprintf("… %d more: %s", len(hosts)-shown, strings.Join(names, ", ")), lineMax)
		b.WriteString("</i>")
	}
	return b.String(), attach
}

// inline renders a host's whole output as a <pre> block, when it is whole
// and short enough; n is its length in Telegram's units.
func inline(h HostLine) (block string, n int, ok bool) {
	if h.Size > int64(len(h.Output)) || h.Size > FanOutInline {
		return "", 0, false
	}
	runes, _ := clean(h.Output)
	runes = trimTrailingSpace(runes)
	if len(runes) == 0 {
		return "<i>(no visible output)</i>", len("(no visible output)"), true
	}
	if strings.Count(string(runes), "\n") >= fanOutLines {
		return "", 0, false
	}
	var b strings.Builder
	writeBlock(&b, runes)
	return b.String(), units(runes), true
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// size renders a byte count for a person: "812 B", "1.2 KiB", "3.4 MiB".
func size(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return strconv.FormatInt(n, 10) + " B"
	case n < k*k:
		return strconv.FormatFloat(float64(n)/k, 'f', 1, 64) + " KiB"
	case n < k*k*k:
		return strconv.FormatFloat(float64(n)/(k*k), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatFloat(float64(n)/(k*k*k), 'f', 1, 64) + " GiB"
}
