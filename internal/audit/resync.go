package audit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// resyncLocked brings a failed log back: it reopens the active file if
// needed, makes whatever reached it durable, adopts the records among it
// that extend the chain, saves the key state, and writes a recovery record
// naming the failure and any torn bytes. On success the log is healthy.
func (l *Log) resyncLocked() error {
	cause := l.failed
	if cause == nil {
		cause = l.stateErr()
	}
	adopted := false
	path := filepath.Join(l.dir, l.file)
	if l.w == nil {
		w, err := l.fs.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return l.setFailedLocked(fmt.Errorf("reopen %s: %w", l.file, err))
		}
		l.w = w
	}
	if !l.o.noSync {
		if err := l.w.Sync(); err != nil {
			l.w.Close()
			l.w = nil
			return l.setFailedLocked(fmt.Errorf("fsync %s: %w", l.file, err))
		}
	}
	if err := l.scanTailLocked(path, &adopted); err != nil {
		l.c.resetRegion()
		return l.setFailedLocked(err)
	}
	if adopted {
		l.setHead()
	}
	if err := l.state.write(l.stateLocked()); err != nil {
		l.c.resetRegion()
		return l.setFailedLocked(fmt.Errorf("write key state: %w", err))
	}
	rec := Record{Type: KindRecovery, Outcome: OutcomeOK, Reason: cause.Error()}
	if adopted {
		rec.Detail = "records written before the failure were adopted; the actions they describe were refused"
	} else {
		rec.Detail = "the action being recorded was refused"
	}
	sep := ""
	start := l.size
	if l.c.suspect() {
		if l.c.foreign {
			err := fmt.Errorf("%w: the tail of %s holds a record that does not extend the chain (%v): it was not left by a crash", ErrDoesNotVerify, l.file, l.c.finish())
			l.c.resetRegion()
			return l.setFailedLocked(err)
		}
		n, sum, endsNL := l.c.regionDigest()
		rec.TornBytes, rec.TornSHA256 = n, sum
		if !endsNL {
			sep = "\n"
		}
		l.size += n
	}
	l.c.resetRegion()
	l.redactLocked(&rec)
	body, _ := encodeBody(&rec)
	if _, err := l.writeLocked(body, sep); err != nil {
		l.size = start
		return err
	}
	return nil
}

// scanTailLocked reads the active file from l.size to its end through the
// chain, adopting the records that extend it. If the file ends in a
// fragment that a newline would complete into the next record (a write
// that stopped one byte short), it writes that newline first, so that what
// verify will see after the recovery record's separator is what the writer
// saw. A remaining suspect region stays in l.c for the caller to name.
func (l *Log) scanTailLocked(path string, adopted *bool) error {
	r, err := l.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("read back %s: %w", l.file, err)
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil {
		return fmt.Errorf("read back %s: %w", l.file, err)
	}
	if fi.Size() < l.size {
		return fmt.Errorf("%w: %s shrank from %d to %d bytes: it was truncated", ErrDoesNotVerify, l.file, l.size, fi.Size())
	}
	if fi.Size() > l.size {
		last := make([]byte, 1)
		if _, err := r.ReadAt(last, fi.Size()-1); err != nil {
			return fmt.Errorf("read back %s: %w", l.file, err)
		}
		if last[0] != '\n' {
			dry := l.c.clone()
			verr, err := scan(io.MultiReader(sectionFrom(r, l.size), strings.NewReader("\n")), l.size, l.file, 2*MaxRecordBytes, dry, nil)
			completes := err == nil && verr == nil && !dry.suspect()
			foreign := dry.suspect() && dry.foreign
			if dry.s != nil {
				dry.s.zero()
			}
			if foreign {
				return fmt.Errorf("%w: the tail of %s holds a record that does not extend the chain (%v): it was not left by a crash", ErrDoesNotVerify, l.file, dry.finish())
			}
			if completes {
				if _, err := l.w.Write([]byte("\n")); err != nil {
					return fmt.Errorf("write %s: %w", l.file, err)
				}
				if err := l.w.Sync(); err != nil && !l.o.noSync {
					return fmt.Errorf("fsync %s: %w", l.file, err)
				}
			}
		}
	}
	l.c.resetRegion()
	verr, err := scan(sectionFrom(r, l.size), l.size, l.file, 2*MaxRecordBytes, l.c, func(end int64, _ int) *VerifyError {
		l.size, l.headFile, l.headEnd, *adopted = end, l.file, end, true
		return nil
	})
	if err == nil && verr != nil {
		err = fmt.Errorf("%w: the tail of %s: %w", ErrDoesNotVerify, l.file, verr)
	}
	return err
}
