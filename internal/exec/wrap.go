package exec

import "syscall"

// Wrapper turns a plain command into a sandboxed one. internal/sandbox
// implements it; a nil Wrapper in a Spec means "run unsandboxed", which the
// caller may choose only for a command whose policy says "sandbox: none".
type Wrapper interface {
	// Wrap returns what to start instead of argv with env. It fails, and
	// nothing runs, when the sandbox cannot be enforced on this kernel.
	Wrap(argv, env []string) (*Wrapped, error)
}

// Wrapped is a command rewritten by a Wrapper: typically the relay binary
// re-executing itself as a sandbox trampoline that ends in execve(argv).
type Wrapped struct {
	Path string   // absolute path of the program to start
	Args []string // its full argv, Args[0] included
	Env  []string // its environment
	// SysProcAttr carries namespace flags and the like. The runner adds
	// Setpgid and Pdeathsig to it; it never clears what the Wrapper set.
	SysProcAttr *syscall.SysProcAttr
}
