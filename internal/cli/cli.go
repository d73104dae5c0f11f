// Package cli implements relay's command-line interface: one file per
// subcommand group, each registering itself here. It owns argument parsing,
// every line relay prints for a person on stderr (one renderer: "relay:
// error:", "relay: hint:", "relay: warning:", "relay: note:"), and the
// mapping of errors to the documented exit codes; the work itself lives in
// the packages it calls.
//
// It must never print a secret: tokens, TOTP secrets and audit keys are
// shown only where the owner explicitly asked to see them once (enrolment).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/relaychat/relay/internal/suggest"
	"github.com/relaychat/relay/policy"
)

// Exit codes. They are the CLI's contract, the same in every subcommand,
// and documented in README.md and docs/reference.md. Relay's own outcomes
// are 0-5; 6 and 7 report the command that relay exec ran, so that a
// command's own exit status can never be mistaken for one of relay's.
const (
	ExitOK       = 0 // success
	ExitFailure  = 1 // the operation failed at run time
	ExitUsage    = 2 // bad flags or arguments
	ExitConfig   = 3 // the config or policy file is invalid
	ExitVerify   = 4 // audit verification found a broken chain
	ExitNotSetup = 5 // a required piece (config, token, TOTP, audit key) is missing
	// ExitCommandFailed: relay exec ran the command and it exited non-zero;
	// its own status is on the status line ("exit 7, 1.2s, 345 bytes").
	ExitCommandFailed = 6
	// ExitCommandKilled: relay exec ran the command and it was killed: by
	// its timeout, by a signal, or because relay exec was interrupted.
	ExitCommandKilled = 7
)

// Env is the process environment a command sees. Tests substitute it.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// IsTerminal reports whether stdin is an interactive terminal.
	IsTerminal bool
	// StdinFd is stdin's descriptor when IsTerminal, for no-echo prompts.
	StdinFd int

	// keyringTold is set once the owner was told why the OS keyring is
	// not used, so that they are told once per run, not once per secret.
	keyringTold bool
	// log, once relay run has its logger, receives notes and warnings,
	// so that a service's log stays one format.
	log *zerolog.Logger
}

// StdEnv is the real process environment.
func StdEnv() *Env {
	fd := int(os.Stdin.Fd())
	return &Env{
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		Getenv:     os.Getenv,
		IsTerminal: term.IsTerminal(fd),
		StdinFd:    fd,
	}
}

// The kinds of line say prints. There are no others.
const (
	kindError   = "error"
	kindHint    = "hint"
	kindWarning = "warning"
	kindNote    = "note"
)

// say prints one line for a person on stderr: "relay: KIND: message". It is
// the only way the CLI talks to the person outside a command's own output,
// so every message has the same shape and can be grepped for.
func (e *Env) say(kind, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	// One message, one line: a newline (or a carriage return, on a
	// terminal) inside would forge a line of its own.
	msg = lineBreaks.Replace(strings.TrimRight(msg, "\r\n"))
	fmt.Fprintf(e.Stderr, "relay: %s: %s\n", kind, msg)
}

var lineBreaks = strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ")

func (e *Env) warnf(format string, a ...any) { e.say(kindWarning, format, a...) }

// tell prints a note or warning with its hint, or logs them as one entry
// once relay run logs.
func (e *Env) tell(kind, msg, hint string) {
	if e.log != nil {
		ev := e.log.Info()
		if kind != kindNote {
			ev = e.log.Warn()
		}
		if hint != "" {
			ev = ev.Str("hint", hint)
		}
		ev.Msg(msg)
		return
	}
	e.say(kind, "%s", msg)
	if hint != "" {
		e.say(kindHint, "%s", hint)
	}
}

// command is one top-level subcommand.
type command struct {
	name  string
	short string // one line for the top-level usage
	usage string // the whole usage text, printed by -h
	run   func(ctx context.Context, env *Env, args []string) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("cli: duplicate command " + c.name)
	}
	commands[c.name] = c
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// exitError carries an exit code with the error that caused it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// hinted is an error with the fix kept apart, printed as its own
// "relay: hint:" line.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

func withHint(err error, hint string) error {
	if err == nil || hint == "" {
		return err
	}
	return &hinted{err: err, hint: hint}
}

// failf is an error with an exit code and a hint ("" for none).
func failf(code int, hint, format string, a ...any) error {
	return withCode(code, withHint(fmt.Errorf(format, a...), hint))
}

// usageErr is a usage error: one line, then a hint pointing at -h.
func usageErr(format string, a ...any) error {
	return withCode(ExitUsage, fmt.Errorf(format, a...))
}

// errSilent is returned when the command already printed everything the
// user needs (for example a list of policy errors) and only the code matters.
type errSilent struct{ code int }

func (e errSilent) Error() string { return "" }

// didYouMean is " (did you mean X?)" when word is a plausible typo of one
// of valid, else "".
func didYouMean(word string, valid []string) string {
	if s := suggest.Closest(word, valid); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// unknownErr is the usage error for a word that is not one of valid: the
// word, a suggestion when one is close, and otherwise the valid words.
func unknownErr(what, word string, valid []string) error {
	return usageErr("%s", unknownWord(what, word, valid))
}

func unknownWord(what, word string, valid []string) string {
	if dym := didYouMean(word, valid); dym != "" {
		return fmt.Sprintf("unknown %s %q%s", what, word, dym)
	}
	return fmt.Sprintf("unknown %s %q (want %s)", what, word, orList(valid))
}

// orList renders "a, b or c".
func orList(words []string) string {
	switch len(words) {
	case 0:
		return "nothing"
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// subcommand picks args[0] among names for a command group such as
// "audit": a missing or unknown one is a usage error, and -h is help.
func subcommand(group string, args []string, names ...string) (string, error) {
	if len(args) == 0 {
		return "", usageErr("%s: missing subcommand (want %s)", group, orList(names))
	}
	if isHelp(args[0]) {
		return "", flag.ErrHelp
	}
	for _, n := range names {
		if args[0] == n {
			return n, nil
		}
	}
	return "", unknownErr(group+" subcommand", args[0], names)
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func isVersion(arg string) bool { return arg == "--version" || arg == "-version" }

func topUsage() string {
	var b strings.Builder
	b.WriteString("Usage:\n    relay <command> [arguments]\n    relay --version\n\nCommands:\n")
	for _, n := range commandNames() {
		fmt.Fprintf(&b, "    %-10s %s\n", n, commands[n].short)
	}
	b.WriteString("\nRun 'relay <command> -h' for a command's usage.\n\n")
	b.WriteString(exitCodesText())
	return b.String()
}

// exitCodes is the exit-code contract, in one place: relay -h prints it,
// and a test holds README.md and docs/reference.md to the same table.
var exitCodes = []struct {
	code    int
	meaning string
}{
	{ExitOK, "success"},
	{ExitFailure, "the operation failed at run time (doctor: a check failed)"},
	{ExitUsage, "usage error: an unknown command, flag or value, or a bad argument"},
	{ExitConfig, "the config or policy file is invalid"},
	{ExitVerify, "audit verification found a broken chain"},
	{ExitNotSetup, "something is not set up: the config, token, TOTP secret, audit log or key"},
	{ExitCommandFailed, "relay exec: the command ran and exited non-zero (its status is on stderr)"},
	{ExitCommandKilled, "relay exec: the command was killed: timeout, signal or interrupt"},
}

func exitCodesText() string {
	var b strings.Builder
	b.WriteString("Exit status, the same for every command:\n")
	for _, e := range exitCodes {
		fmt.Fprintf(&b, "    %d  %s\n", e.code, e.meaning)
	}
	return b.String()
}

// Main runs relay with args (without the program name) and returns the
// process exit code. It is the one place errors become exit codes.
func Main(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, topUsage())
		return ExitUsage
	}
	switch {
	case isHelp(args[0]):
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fmt.Fprint(env.Stdout, c.usage)
				return ExitOK
			}
			return report(env, nil, unknownErr("command", args[1], commandNames()))
		}
		fmt.Fprint(env.Stdout, topUsage())
		return ExitOK
	case isVersion(args[0]):
		args = []string{"version"}
	case strings.HasPrefix(args[0], "-"):
		return report(env, nil, usageErr("unknown flag %s (flags go after the command: relay <command> [flags])", args[0]))
	}
	c, ok := commands[args[0]]
	if !ok {
		return report(env, nil, unknownErr("command", args[0], commandNames()))
	}
	return report(env, c, c.run(ctx, env, args[1:]))
}

// report prints err, if any, and returns the exit code for it.
func report(env *Env, c *command, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		if c == nil {
			fmt.Fprint(env.Stdout, topUsage())
		} else {
			fmt.Fprint(env.Stdout, c.usage)
		}
		return ExitOK
	}
	var s errSilent
	if errors.As(err, &s) {
		return s.code
	}
	code := ExitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	var list *policy.ErrorList
	if errors.As(err, &list) {
		// Every problem at once, each on its own line with its position.
		for _, e := range *list {
			env.say(kindError, "%v", e)
		}
	} else {
		env.say(kindError, "%v", err)
	}
	var h *hinted
	switch {
	case errors.As(err, &h):
		env.say(kindHint, "%s", h.hint)
	case hintFor(err) != "":
		env.say(kindHint, "%s", hintFor(err))
	case code == ExitUsage && c != nil:
		env.say(kindHint, "see 'relay %s -h'", c.name)
	case code == ExitUsage:
		env.say(kindHint, "see 'relay -h'")
	}
	return code
}

// newFlags returns a FlagSet that reports errors instead of exiting, and
// prints nothing itself: report prints every message.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args and turns flag errors into one-line usage errors
// that name the command, with a suggestion for a mistyped flag.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	const undefined = "flag provided but not defined: -"
	if name, ok := strings.CutPrefix(err.Error(), undefined); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s := suggest.Closest(name, names); s != "" {
			return usageErr("%s: unknown flag --%s (did you mean --%s?)", fs.Name(), name, s)
		}
		return usageErr("%s: unknown flag --%s", fs.Name(), name)
	}
	return usageErr("%s: %v", fs.Name(), err)
}

// noArgs refuses positional arguments after the flags.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usageErr("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
