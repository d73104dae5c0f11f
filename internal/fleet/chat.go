package fleet

import (
	"fmt"
	"strings"

	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/internal/remote"
	"github.com/relaychat/relay/policy"
)

// The chat syntax (docs/reference.md, "Many hosts from one chat"):
//
//	/on TARGET COMMAND [ARGS…]
//
// TARGET is a host, a group, "all", or several joined by commas; COMMAND
// is a command of the member's allowlist, with or without its slash;
// ARGS split as the chat's own commands' do (policy.SplitArgs). /on is
// one entry in the phone's command menu and needs only letters and
// spaces on the keyboard; /disk@web would be Telegram's bot addressing.
const (
	// OnCommand is the chat command that reaches other hosts.
	OnCommand = "on"
	// HostsCommand lists the hosts and groups.
	HostsCommand = "hosts"
)

// OnUsage is /on's usage line, for /help and a malformed /on.
const OnUsage = "/on HOST|GROUP|all COMMAND [ARGS…]"

// OnError is a /on message that cannot be read; its message is safe to
// show in the chat.
type OnError struct{ Msg string }

func (e *OnError) Error() string { return e.Msg }

// SafeToShow is the message.
func (e *OnError) SafeToShow() string { return e.Msg }

// ParseOn reads the text after /on: the target, the member's command
// (lower-cased, its slash dropped: a phone capitalises the first word and
// a habit types the slash) and the arguments. It checks their form only:
// Resolve checks the target, the member's policy the rest.
func ParseOn(text string) (target, command string, args []string, err error) {
	words, err := policy.SplitArgs(text)
	if err != nil {
		return "", "", nil, &OnError{Msg: err.Error()}
	}
	if len(words) < 2 {
		return "", "", nil, &OnError{Msg: "usage: " + OnUsage}
	}
	target = strings.ToLower(words[0])
	command = strings.ToLower(strings.TrimPrefix(words[1], "/"))
	// "/on nas disk@relaybot": a menu tap can append the bot's name.
	command, _, _ = strings.Cut(command, "@")
	if !remote.ValidName(command) {
		return "", "", nil, &OnError{Msg: fmt.Sprintf("%q is not a command name; usage: %s", chatfmtShort(words[1]), OnUsage)}
	}
	return target, command, words[2:], nil
}

func chatfmtShort(s string) string {
	if r := []rune(s); len(r) > 32 {
		return string(r[:32]) + "…"
	}
	return s
}

// HelpLine is /on's line for /help: the usage and what TARGET can be.
func (f *Fleet) HelpLine() string {
	parts := []string{"hosts " + strings.Join(f.Hosts(), ", ")}
	for _, g := range f.cfg.Groups {
		parts = append(parts, fmt.Sprintf("group %s (%s)", g.Name, strings.Join(g.Hosts, ", ")))
	}
	parts = append(parts, policy.AllHosts)
	return OnUsage + " — run a member's command there: " + strings.Join(parts, "; ")
}

// Title is a fan-out's title for its summary: "/on web disk /var".
func Title(target, command string, args []string) string {
	s := "/" + OnCommand + " " + target + " " + command
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"") {
			a = fmt.Sprintf("%q", a)
		}
		s += " " + a
	}
	return s
}

// Lines is the summary as chatfmt renders it: one line per host, with the
// start of each host's output. Render it with chatfmt.FanOut, and send
// each attached host's Results[i].Output as a document.
func (s *Summary) Lines() []chatfmt.HostLine {
	out := make([]chatfmt.HostLine, len(s.Results))
	for i, r := range s.Results {
		l := chatfmt.HostLine{Host: r.Host, Status: r.Status(), Elapsed: r.Duration}
		switch {
		case r.Kind == KindOK:
			l.Outcome = chatfmt.HostOK
		case r.Ran():
			l.Outcome = chatfmt.HostFailed
		default:
			l.Outcome = chatfmt.HostNotRun
		}
		if r.Truncated {
			l.Status += fmt.Sprintf(" (%d of %d bytes)", r.Trailer.Sent, r.Trailer.Bytes)
		}
		if r.Output != nil {
			l.Size = r.Output.Size()
			l.Output = r.Output.Bytes(chatfmt.FanOutInline)
		}
		out[i] = l
	}
	return out
}
