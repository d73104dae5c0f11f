// Package exec runs one allowlisted command as a bounded process: argv
// only, an explicit environment, stdin from /dev/null, its own process
// group, no inherited descriptors beyond 0-2, a timeout that kills the whole
// group, output captured into a bounded spool, and global and per-command
// concurrency limits that refuse rather than queue.
//
// It is the only package besides internal/sandbox that may import os/exec
// (imports_test.go enforces it). It must never run a shell, never inherit
// the relay's environment, never keep more than a small, fixed amount of
// output in memory, and never start a command whose policy requires a
// sandbox without one.
package exec
