// Package cli implements relay's command-line interface: one file per
// subcommand group, each registering itself here. It owns argument parsing
// and the mapping of errors to documented exit codes; the work itself lives
// in the packages it calls.
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

	"golang.org/x/term"
)

// Exit codes. They are part of the CLI's contract and documented in README.
const (
	ExitOK       = 0 // success
	ExitFailure  = 1 // the operation failed at run time
	ExitUsage    = 2 // bad flags or arguments
	ExitConfig   = 3 // the config or policy file is invalid
	ExitVerify   = 4 // audit verification found a broken chain
	ExitNotSetup = 5 // a required secret (token, TOTP, audit key) is missing
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

func usageErr(format string, a ...any) error {
	return withCode(ExitUsage, fmt.Errorf(format, a...))
}

// errSilent is returned when the command already printed everything the
// user needs (for example a list of policy errors) and only the code matters.
type errSilent struct{ code int }

func (e errSilent) Error() string { return "" }

func topUsage() string {
	var b strings.Builder
	b.WriteString("Usage:\n    relay <command> [arguments]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "    %-10s %s\n", n, commands[n].short)
	}
	b.WriteString("\nRun 'relay <command> -h' for a command's usage.\n")
	return b.String()
}

// Main runs relay with args (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stderr, topUsage())
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "relay: unknown command %q\n%s", args[0], topUsage())
		return ExitUsage
	}
	err := c.run(ctx, env, args[1:])
	return report(env, c, err)
}

func report(env *Env, c *command, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stderr, c.usage)
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
	fmt.Fprintf(env.Stderr, "relay: %v\n", err)
	if code == ExitUsage {
		fmt.Fprint(env.Stderr, c.usage)
	}
	return code
}

// newFlags returns a FlagSet that reports errors instead of exiting, and
// prints nothing itself: report prints the usage text once.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args and turns flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return withCode(ExitUsage, err)
	}
	return nil
}
