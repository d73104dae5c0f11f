package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/control"
)

// Checkpoint returns a signed checkpoint of the log's head, signed by
// whoever holds the log: the running daemon, through its control socket,
// or this process, which holds the log's lock for the signature alone. It
// is what relay serve-ssh --witness answers audit-head with: the head as
// of the witness's call, not as of the last checkpoint the chat got. The
// checkpoint is checked against the public key beside the log before it
// is returned. A log that does not open is signed as it is on disk
// (audit.LatestCheckpoint), for the witness to judge.
func (r *Recorder) Checkpoint(ctx context.Context) (audit.Checkpoint, error) {
	now, sleep, wait := r.clock()
	pub, err := audit.ReadPublicKey(r.Dir)
	if err != nil {
		return audit.Checkpoint{}, err
	}
	deadline := now().Add(wait)
	pause := time.Millisecond
	for {
		l, err := audit.Open(r.Dir, audit.Options{RotateBytes: r.RotateBytes, Now: now})
		if err == nil {
			cp, err := l.Checkpoint()
			if cerr := l.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("audit: save the key state: %w", cerr)
			}
			return cp, err
		}
		if !errors.Is(err, audit.ErrInUse) {
			// The log does not open (its key state disagrees with its
			// files: a cut tail, a damaged file). The witness must still
			// see what is on disk, or such a log would only look
			// unreachable: sign the newest record there.
			if cp, lerr := audit.LatestCheckpoint(r.Dir); lerr == nil {
				return cp, nil
			}
			return audit.Checkpoint{}, err
		}
		if _, derr := os.Stat(control.Path(r.StateDir)); derr == nil {
			note, err := control.Checkpoint(ctx, r.StateDir)
			if err == nil {
				cp, err := audit.OpenCheckpoint(note, pub)
				if err != nil {
					return audit.Checkpoint{}, fmt.Errorf("the running daemon's checkpoint: %w", err)
				}
				return cp, nil
			}
			if !errors.Is(err, control.ErrNoDaemon) {
				return audit.Checkpoint{}, fmt.Errorf("checkpoint through the running daemon: %w", err)
			}
			// A stale socket: retry.
		}
		if now().After(deadline) {
			return audit.Checkpoint{}, ErrBusy
		}
		if err := sleep(ctx, pause); err != nil {
			return audit.Checkpoint{}, err
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}
