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

// trampolineEnv is the trampoline's own environment; the command's is in
// its profile. GOMAXPROCS=1 spares the Go runtime its cgroup CPU-limit
// lookup at start (the trampoline sets one P anyway), and GOGC=off a
// collector it never needs: it allocates a few kilobytes and then waits.
// Neither is secret: the command may see its init's environment.
func trampolineEnv() []string { return []string{"GOMAXPROCS=1", "GOGC=off"} }
