package chatfmt

import (
	"errors"
	"fmt"
	"time"
)

// Reply is a one-line answer that is safe to show the owner in the chat.
// It can only be built by Say, from a constant format and arguments that
// are safe by their type, or by Refusal, from an error that declares its
// message safe (Safe). So the text of an arbitrary error (a path, a
// token, an HTML fragment out of a server's answer) cannot reach the chat
// by accident: putting it there takes a type that says it is safe, which
// a reviewer reads. The cause goes to the log; the chat gets the Reply.
type Reply struct{ text string }

// format is unexported so that only an untyped constant converts to it:
// Say("…") compiles, Say(err.Error()) does not.
type format string

// Arg is a value Say may put into a Reply. Only this package's types
// implement it, each safe for its own reason.
type Arg interface{ chatArg() any }

// Num is a count or a number.
type Num int64

// Dur is a length of time, rounded to the second when longer than one.
type Dur time.Duration

// Name is a name relay or the owner's policy chose: a command, a
// parameter, a job ID, a host or group, a usage line. Never an error's
// text nor a message somebody else wrote.
type Name string

func (n Num) chatArg() any  { return int64(n) }
func (n Name) chatArg() any { return string(n) }
func (d Dur) chatArg() any {
	if time.Duration(d) > time.Second {
		return time.Duration(d).Round(time.Second)
	}
	return time.Duration(d)
}
func (r Reply) chatArg() any { return r.text }

// Safe is implemented by the types whose message is safe to show in the
// chat: each one's doc says why (built from the schema, from the owner's
// own policy file, from a fixed vocabulary).
type Safe interface{ SafeToShow() string }

type shown struct{ s Safe }

func (s shown) chatArg() any { return s.s.SafeToShow() }

// Shown is the message of a value that declares it safe to show.
func Shown(s Safe) Arg { return shown{s} }

// Say builds a Reply from a constant format (fmt verbs) and its
// arguments.
func Say(f format, args ...Arg) Reply {
	if len(args) == 0 {
		return Reply{string(f)}
	}
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a.chatArg()
	}
	return Reply{fmt.Sprintf(string(f), vals...)}
}

// Refusal is the answer for err: the message of the first error in its
// chain that declares itself safe to show (Safe), else fallback. The
// caller logs err.
func Refusal(err error, fallback format) Reply {
	var s interface {
		error
		Safe
	}
	if errors.As(err, &s) {
		return Reply{s.SafeToShow()}
	}
	return Reply{string(fallback)}
}

// SandboxUnavailable answers a command the sandbox cannot launch; the
// cause is in the log. Chat replies are a boundary like the CLI's, so the
// hint naming the command that says more lives here.
var SandboxUnavailable = Say("sandbox unavailable on this host; command refused (see relay sandbox check)")

// Join is r followed by more.
func (r Reply) Join(sep format, more Reply) Reply {
	return Reply{r.text + string(sep) + more.text}
}

// IsZero reports whether r says nothing.
func (r Reply) IsZero() bool { return r.text == "" }

// HTML is r as a one-line message (Line): escaped, cut to a few hundred
// characters.
func (r Reply) HTML() string { return Line(r.text) }

// String is r's plain text, for tests and callback-query answers (which
// Telegram shows as plain text).
func (r Reply) String() string { return r.text }
