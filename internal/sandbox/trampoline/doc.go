// Package trampoline is the sandbox's re-exec mode: a relay process started
// as "relay __relay-sandbox -- COMMAND [ARG]...", with its profile on a
// sealed memfd at descriptor ProfileFD, is the init of the command's fresh
// namespaces. It builds the command's filesystem view, prepares the Landlock
// ruleset and the seccomp filter, forks the command, which confines itself
// the rest of the way with raw system calls only and execve's, and then
// reaps, forwards signals and reports the command's wait status. Package
// sandbox writes the profile (Spec.Marshal); this package reads it back
// (Unmarshal) and enforces it (Run).
//
// It runs from init, as soon as this package is initialised, and imports
// only light standard packages (not golang.org/x/sys) so that Go's
// initialisation order, by import path among ready packages, reaches it
// before the relay's heavier packages (policy, telegram, audit, yaml):
// their initialisation cost about 2 ms of CPU on every sandboxed command.
// Running from init also makes every binary that links the sandbox a valid
// trampoline, so re-executing it can never recurse into the whole program.
//
// It must never run a command less confined than its profile: every
// failure writes one "relay-sandbox: " line to stderr and exits with
// ExitSetupFailed. It must never read instructions from the environment,
// which belongs to the command and passes to it unchanged, nor from argv,
// which the command can read in /proc/1/cmdline.
package trampoline
