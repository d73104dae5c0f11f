package audit

import "errors"

// Errors that name what is wrong with a log; internal/cli says which
// command fixes each (its hints table), so that this package never names
// one. They are wrapped with the details.
var (
	// ErrNotInitialized: the directory, its lock file or its key state
	// is missing.
	ErrNotInitialized = errors.New("audit log not initialized")
	// ErrDoesNotVerify: the log on disk does not extend its own chain
	// (a cut, a rewrite, a state from elsewhere).
	ErrDoesNotVerify = errors.New("the audit log does not verify")
	// ErrStateCorrupt: the key state file cannot be read.
	ErrStateCorrupt = errors.New("audit key state corrupt")
	// ErrNoCheckpointKey: the log has no checkpoint key.
	ErrNoCheckpointKey = errors.New("this audit log has no checkpoint key")
	// ErrCheckpointKeyCorrupt: the checkpoint key file cannot be read.
	ErrCheckpointKeyCorrupt = errors.New("checkpoint key corrupt")
	// ErrPublicKey: what was given is not the public checkpoint key.
	ErrPublicKey = errors.New("not the public checkpoint key")
	// ErrKeySize: K0 has the wrong length.
	ErrKeySize = errors.New("the audit key has the wrong length")
)
