// Package recorder appends the audit records of remote calls to this host's
// audit log, whoever holds it: the running daemon, through its control
// socket, or this process, as the log's one writer for a single append under
// the log's exclusive lock. relay serve-ssh (a member) and relay exec --host
// (a hub) record through it.
//
// It must never open the log while another process writes it, and never
// keep it open between records: concurrent serve-ssh processes and a daemon
// then share one chain, each append sealed by whoever holds the key at that
// moment. When it returns an error the record may be missing, and the
// caller must not do what it describes.
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

// DefaultWait is how long Record waits for another process's single
// append to finish: a few fsyncs, so a second is generous.
const DefaultWait = 5 * time.Second

// Recorder appends to one host's audit log.
type Recorder struct {
	// Dir is the audit directory; StateDir holds the daemon's control
	// socket.
	Dir, StateDir string
	// RotateBytes is the config's audit.rotate_bytes.
	RotateBytes int64
	// Wait bounds the time spent waiting for the lock; 0 means
	// DefaultWait.
	Wait time.Duration
	// Now and Sleep are the clock; nil means the real one.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// ErrBusy is returned when the log stayed locked by another process that
// is not a daemon for longer than Wait.
var ErrBusy = errors.New("audit log busy: another relay process kept it locked")

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Record appends rec and returns the log's head after it.
func (r *Recorder) Record(ctx context.Context, rec audit.Record) (audit.Head, error) {
	var h audit.Head
	err := r.Batch(ctx, func(add func(audit.Record) (audit.Head, error)) error {
		var err error
		h, err = add(rec)
		return err
	})
	return h, err
}

// clock is r's time source, its pause between tries and how long it
// waits for the log, with their defaults.
func (r *Recorder) clock() (now func() time.Time, sleep func(context.Context, time.Duration) error, wait time.Duration) {
	now, sleep, wait = r.Now, r.Sleep, r.Wait
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	if wait <= 0 {
		wait = DefaultWait
	}
	return now, sleep, wait
}

// Batch holds the log for fn, which appends with add: one open, one key
// state write, for records that belong together (a request and its start).
// Through a running daemon each add is one round trip. fn should be short,
// as other writers wait for the log while it runs, and must return add's
// error at once: Batch may call it again when a stale socket answered
// nothing.
func (r *Recorder) Batch(ctx context.Context, fn func(add func(audit.Record) (audit.Head, error)) error) error {
	now, sleep, wait := r.clock()
	deadline := now().Add(wait)
	pause := time.Millisecond
	for {
		l, err := audit.Open(r.Dir, audit.Options{RotateBytes: r.RotateBytes, Now: now})
		if err == nil {
			err := fn(l.Append)
			// Close writes the key state, so that the next writer starts
			// from this record's key and not an older one.
			if cerr := l.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("audit: save the key state: %w", cerr)
			}
			return err
		}
		if !errors.Is(err, audit.ErrInUse) {
			return err
		}
		// Locked: a daemon may hold it. Probe with the first record only
		// when it answers, so that a batch never splits across writers.
		if _, derr := os.Stat(control.Path(r.StateDir)); derr == nil {
			daemon := func(rec audit.Record) (audit.Head, error) {
				h, err := control.Append(ctx, r.StateDir, rec)
				if err != nil {
					return h, fmt.Errorf("audit through the running daemon: %w", err)
				}
				return h, nil
			}
			first, noDaemon := true, false
			ferr := fn(func(rec audit.Record) (audit.Head, error) {
				h, err := daemon(rec)
				if first && errors.Is(err, control.ErrNoDaemon) {
					noDaemon = true
				}
				first = false
				return h, err
			})
			if !noDaemon {
				return ferr
			}
			// The socket was stale and nothing was written: retry.
		}
		// Locked, and no daemon answers: another serve-ssh is appending
		// (or a daemon is starting). Its hold is one batch long.
		if now().After(deadline) {
			return ErrBusy
		}
		if err := sleep(ctx, pause); err != nil {
			return err
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}
