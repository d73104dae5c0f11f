package chatfmt

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// HelpEntry is one command as /help lists it.
type HelpEntry struct {
	Usage       string // "/logs FILE [LINES]"
	Description string
}

// helpHeaderUnits is what each /help message keeps free for its header
// ("Commands · 12/12" and the like).
const helpHeaderUnits = 48

// Help renders /help: the policy's commands, each with its usage line and
// description, then the built-ins. It returns as many messages as it takes
// for each to stay within the budget, never splitting an entry; when there
// is more than one, each header says which part it is. An entry's lines
// are cut to a few hundred characters, so any entry fits.
func Help(commands, builtins []HelpEntry) []string {
	type entry struct {
		html    string
		units   int
		builtin bool
	}
	var entries []entry
	for _, c := range commands {
		var b strings.Builder
		n := writeLine(&b, c.Usage, lineMax)
		b.WriteString("\n    ")
		n += 5 + writeLine(&b, c.Description, lineMax)
		b.WriteByte('\n')
		entries = append(entries, entry{b.String(), n + 1, false})
	}
	for _, c := range builtins {
		var b strings.Builder
		n := writeLine(&b, c.Usage, lineMax)
		b.WriteString(" — ")
		n += 3 + writeLine(&b, c.Description, lineMax)
		b.WriteByte('\n')
		entries = append(entries, entry{b.String(), n + 1, true})
	}
	const builtinHeader = "\n<b>Built in</b>\n"
	const builtinHeaderUnits = 10
	var pages []strings.Builder
	var used int
	inBuiltins := false
	newPage := func() {
		pages = append(pages, strings.Builder{})
		used = helpHeaderUnits
	}
	newPage()
	for _, e := range entries {
		need := e.units
		if e.builtin && !inBuiltins {
			need += builtinHeaderUnits
		}
		if used+need > limit && used > helpHeaderUnits {
			newPage()
		}
		p := &pages[len(pages)-1]
		if e.builtin && !inBuiltins {
			inBuiltins = true
			p.WriteString(builtinHeader)
		}
		p.WriteString(e.html)
		used += need
	}
	out := make([]string, len(pages))
	for i := range pages {
		head := "<b>Commands</b>\n"
		if len(pages) > 1 {
			head = "<b>Commands</b> · " + strconv.Itoa(i+1) + "/" + strconv.Itoa(len(pages)) + "\n"
		}
		body := pages[i].String()
		if i == 0 && len(commands) == 0 {
			body = "<i>(no commands in the policy)</i>\n" + body
		}
		out[i] = head + body
	}
	return out
}

// StatusInfo is what /status reports.
type StatusInfo struct {
	Session      bool
	IdleLeft     time.Duration // of the session
	AbsoluteLeft time.Duration
	LockoutLeft  time.Duration // > 0 while logins are locked out
	Failures     int
	Locked       bool // /lock is in force
	Jobs         int
	AuditHealthy bool
	AuditSeq     uint64
	Version      string
	Uptime       time.Duration
}

// Status renders /status as a <pre> block.
func Status(s StatusInfo) string {
	var b strings.Builder
	if s.Session {
		b.WriteString("session: " + round(s.IdleLeft) + " idle left, " + round(s.AbsoluteLeft) + " at most\n")
	} else {
		b.WriteString("session: none\n")
	}
	if s.LockoutLeft > 0 {
		b.WriteString("login lockout: " + round(s.LockoutLeft) + " left (" + strconv.Itoa(s.Failures) + " failures)\n")
	}
	if s.Locked {
		b.WriteString("locked: a fresh login is required\n")
	}
	b.WriteString("jobs: " + strconv.Itoa(s.Jobs) + " running\n")
	if s.AuditHealthy {
		b.WriteString("audit: ok, seq " + strconv.FormatUint(s.AuditSeq, 10) + "\n")
	} else {
		b.WriteString("audit: UNHEALTHY, commands refused\n")
	}
	b.WriteString("version: " + s.Version + "\nuptime: " + round(s.Uptime))
	return Pre([]byte(b.String()), "")
}

func round(d time.Duration) string { return d.Round(time.Second).String() }

// Job is one running job as /ps lists it.
type Job struct {
	ID      string
	Command string
	Elapsed time.Duration
}

// PS renders /ps: one line per job, or a line saying there are none. A
// list too long for a message keeps its newest jobs and says how many it
// left out.
func PS(jobs []Job) string {
	if len(jobs) == 0 {
		return Line("no jobs running")
	}
	var b strings.Builder
	for _, j := range jobs {
		b.WriteString(padRight(j.ID, 5) + " " + padRight(j.Command, 20) + " " + round(j.Elapsed) + "\n")
	}
	return Pre([]byte(b.String()), strconv.Itoa(len(jobs))+" running")
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

// Prompt is a confirm command waiting for its Run button.
type Prompt struct {
	Command string
	Argv    []string
	Workdir string
	Timeout time.Duration
	Sandbox string        // the profile's one-line description
	TTL     time.Duration // how long the buttons work
}

// ConfirmPrompt renders the question a confirm command asks before it
// runs: the resolved argv, quoted as a shell would need it, the working
// directory, the timeout and the sandbox. whole is false when the argv is
// too long to show in full in one message; a prompt that does not show
// exactly what would run must not be offered, so the caller refuses then.
func ConfirmPrompt(p Prompt) (html string, whole bool) {
	var argv strings.Builder
	for i, a := range p.Argv {
		if i > 0 {
			argv.WriteByte(' ')
		}
		argv.WriteString(QuoteArg(a))
	}
	runes, _ := clean([]byte(argv.String()))
	// The argv is shown whole or not at all: cleaning must not have
	// dropped anything (Bind refuses control characters, so it never
	// does), and it must leave room for the rest.
	if len(runes) != len([]rune(argv.String())) || units(runes) > limit-512 {
		return "", false
	}
	var b strings.Builder
	b.WriteString("<b>Run /")
	writeEscaped(&b, []rune(p.Command))
	b.WriteString("?</b>\n<pre>")
	writeEscaped(&b, runes)
	b.WriteString("</pre>")
	writeLine(&b, "workdir "+p.Workdir+" · timeout "+p.Timeout.String()+" · sandbox "+p.Sandbox, lineMax-100)
	b.WriteString("\nThe buttons work once, for " + p.TTL.String() + ".")
	return b.String(), true
}

// QuoteArg quotes one argv element for display the way a POSIX shell
// would need it to stay one word, and so that what is shown is what runs:
// as is when it is plain; in single quotes when it holds a space or a
// shell character; as $'…' with escapes when it holds a control or other
// invisible character (a newline, a bidi override), which plain quotes
// would show raw or not at all. It is the one quoting for display, in
// the chat (confirm prompts, pickers) and in relay policy check.
func QuoteArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t'\"\\$`|&;<>()*?[]#~{}!") && printable(a) {
		return a
	}
	if !printable(a) {
		q := strconv.QuoteToGraphic(a)
		q = strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
		return "$'" + strings.ReplaceAll(q, "'", `\'`) + "'"
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// QuoteArgv is QuoteArg of each element, joined by spaces.
func QuoteArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = QuoteArg(a)
	}
	return strings.Join(out, " ")
}

// printable reports whether every rune of s is graphic or a plain space.
func printable(s string) bool {
	for _, r := range s {
		if r != ' ' && (!unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r)) {
			return false
		}
	}
	return utf8.ValidString(s)
}

// Checkpoint renders the audit head sent to the owner's chat: one line of
// monospace text that `relay audit verify --checkpoint` takes back as is,
// then, when the log signs its checkpoints, the signed note in a <pre>
// block.
func Checkpoint(text string, note []byte) string {
	var b strings.Builder
	b.WriteString("<code>")
	writeLine(&b, text, lineMax)
	b.WriteString("</code>")
	if len(note) > 0 {
		// The signed note, whole, in a block a phone copies or forwards
		// as one piece.
		b.WriteString("\n<pre>")
		b.WriteString(Escape(string(note)))
		b.WriteString("</pre>")
	}
	return b.String()
}
