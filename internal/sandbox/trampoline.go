package sandbox

import tr "github.com/relaychat/relay/internal/sandbox/trampoline"

// ExitSetupFailed is the trampoline's exit status when it could not set up
// the sandbox; the command did not run. It writes one line starting with
// "relay-sandbox: " to stderr first.
const ExitSetupFailed = tr.ExitSetupFailed

// IsTrampoline reports whether args (os.Args) ask for the trampoline.
//
// Linking this package is enough: package trampoline runs the trampoline
// from its init, before the relay's heavier packages are initialised. This
// check, first thing in main, stays as a second line.
func IsTrampoline(args []string) bool { return tr.Is(args) }

// Trampoline confines the current process as the profile in args says and
// execve's the command. It never returns: on any failure it reports one
// line on stderr and exits with ExitSetupFailed, so a command never runs
// less confined than its profile.
func Trampoline(args []string) { tr.Run(args) }
