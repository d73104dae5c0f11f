package daemon

import (
	"context"
	"errors"
)

// signCheckpoint answers relay serve-ssh --witness through the control
// socket: a signed checkpoint of the head this daemon's log holds, so that
// the witness's window is its own interval and not the chat's checkpoint
// interval. It writes nothing to the log.
func (d *Daemon) signCheckpoint(context.Context) ([]byte, error) {
	cp, err := d.audit.Checkpoint()
	if err != nil {
		d.o.Log.Warn().Err(err).Msg("a witness asked for a checkpoint; none signed")
		return nil, errors.New("no checkpoint: " + err.Error())
	}
	return cp.Note, nil
}
