// Package trampoline is the sandbox's re-exec mode: a relay process started
// as "relay __relay-sandbox PROFILE... -- COMMAND [ARG]..." confines itself
// as the profile says and execve's the command. Package sandbox writes the
// profile (Spec.Encode); this package reads it back (Decode) and enforces it
// (Run).
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
// which belongs to the command and passes to it unchanged.
package trampoline
