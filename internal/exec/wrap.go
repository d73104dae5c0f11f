package exec

import (
	"os"
	"syscall"
)

// Wrapper turns a plain command into a sandboxed one. internal/sandbox
// implements it; a nil Wrapper in a Spec means "run unsandboxed", which the
// caller may choose only for a command whose policy says "sandbox: none".
type Wrapper interface {
	// Wrap returns what to start instead of argv with env. It fails, and
	// nothing runs, when the sandbox cannot be enforced on this host.
	Wrap(argv, env []string) (*Wrapped, error)
}

// Wrapped is a command rewritten by a Wrapper: typically the relay binary
// re-executing itself as a sandbox trampoline that runs argv as the init of
// the command's own namespaces.
type Wrapped struct {
	Path string   // absolute path of the program to start
	Args []string // its full argv, Args[0] included
	Env  []string // its environment
	// Dir, when set, is where the wrapper starts instead of the spec's
	// workdir, which it then enters itself (inside its own view).
	Dir string
	// SysProcAttr carries namespace flags and the like. The runner adds
	// Setpgid and Pdeathsig to it; it never clears what the Wrapper set.
	SysProcAttr *syscall.SysProcAttr
	// ReportsStatus says that the wrapper writes the command's raw wait
	// status (4 bytes, native byte order) to descriptor 3 before it
	// exits. The runner passes a pipe there and reports that status in
	// place of the wrapper's own: the init of a pid namespace cannot die
	// of the signal that killed the command.
	ReportsStatus bool
	// ExtraFiles are passed as descriptors 4, 5, …: the wrapper's own
	// instructions, out of sight of /proc/PID/cmdline. The runner closes
	// them once the wrapper has started (or failed to).
	ExtraFiles []*os.File
	// Done, when set, is called once the wrapper has exited and been
	// reaped, with the result about to be reported: the wrapper kills what
	// is left of the job and adds its own accounting.
	Done func(*Result)
	// Started, when set, is a wrapper process already running, started
	// ahead of its job and waiting for it: the runner adopts it and calls
	// Go instead of starting Path. Path, Args, Env, Dir, SysProcAttr and
	// ExtraFiles are then unused.
	Started *Started
}

// Started is a wrapper process the Wrapper started itself, with what the
// runner would otherwise have set up: its own process group, stdin from
// /dev/null, a parent-death signal, stdout and stderr on one pipe.
type Started struct {
	Process *os.Process
	// Output is the read end of the pipe on its stdout and stderr.
	Output *os.File
	// Status is the read end of its status pipe (see ReportsStatus).
	Status *os.File
	// Go hands the job to the process. When it fails the process is
	// killed and nothing ran.
	Go func() error
}
