package audit

import (
	"sync"
	"time"
)

// stateWriter keeps the key state file following the log: a background
// writer takes the newest state queued and writes it atomically, at most
// every stateInterval and coalescing bursts, while flush, close and
// recovery write at once. It never writes a state older than one on disk,
// and erases every state's key once written or replaced.
type stateWriter struct {
	fs   FS
	path string // the state file

	mu       sync.Mutex // guards the fields below it
	cond     *sync.Cond
	pend     *keyState // newest state not yet taken by the writer
	busy     bool
	stop     bool
	err      error // last state write failure, nil after a success
	done     chan struct{}
	kick     chan struct{} // cuts the writer's pause short for a flush
	flushing bool          // a flush is waiting: write without pausing
	last     time.Time     // when the last state write started

	wmu     sync.Mutex // serializes state writes; guards persist
	persist uint64     // newest seq whose state is on disk
}

// stateInterval is the least time between two background key state
// writes. Each write costs three fsyncs (file, rename, directory) that
// compete with the log's own; pausing between them keeps appends near the
// disk's raw fsync rate, and bounds how far the state on disk trails the
// log. Sync, Close and recovery write at once.
var stateInterval = 100 * time.Millisecond

// newStateWriter is a writer for path whose state on disk is at seq.
// The caller starts loop.
func newStateWriter(fs FS, path string, seq uint64) *stateWriter {
	w := &stateWriter{fs: fs, path: path, persist: seq, done: make(chan struct{}), kick: make(chan struct{}, 1)}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// queue hands st to the background writer, replacing (and erasing) an
// older state it has not started on.
func (w *stateWriter) queue(st *keyState) {
	w.mu.Lock()
	if w.pend != nil {
		w.pend.zero()
	}
	w.pend = st
	w.cond.Broadcast()
	w.mu.Unlock()
}

// loop is the background writer, until close.
func (w *stateWriter) loop() {
	defer close(w.done)
	w.mu.Lock()
	for {
		for w.pend == nil && !w.stop {
			w.cond.Wait()
		}
		if w.pend == nil {
			w.mu.Unlock()
			return
		}
		if d := stateInterval - time.Since(w.last); d > 0 && !w.flushing && !w.stop {
			w.mu.Unlock()
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-w.kick:
			}
			t.Stop()
			w.mu.Lock()
			continue
		}
		st := w.pend
		w.pend, w.busy, w.flushing, w.last = nil, true, false, time.Now()
		w.mu.Unlock()
		_ = w.write(st) // records the outcome in err
		w.mu.Lock()
		w.busy = false
		w.cond.Broadcast()
	}
}

// kickLocked asks the writer to write without pausing. w.mu is held.
func (w *stateWriter) kickLocked() {
	w.flushing = true
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// write writes st unless a newer state is already on disk. It erases st's
// key either way.
func (w *stateWriter) write(st *keyState) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	defer st.zero()
	if st.Seq < w.persist {
		return nil
	}
	data := st.encode()
	err := w.fs.WriteFileAtomic(w.path, data, 0o600)
	clear(data)
	w.mu.Lock()
	if err != nil {
		w.err = err
	} else {
		w.err = nil
		w.persist = st.Seq
	}
	w.mu.Unlock()
	return err
}

// flush waits until every queued state was written and returns the last
// write's error.
func (w *stateWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.pend != nil || w.busy {
		if w.pend != nil {
			w.kickLocked()
		}
		w.cond.Wait()
	}
	return w.err
}

// lastErr is the last write's error, nil after a success.
func (w *stateWriter) lastErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// close flushes, stops the writer and waits for it; it returns flush's
// error.
func (w *stateWriter) close() error {
	err := w.flush()
	w.mu.Lock()
	w.stop = true
	w.kickLocked()
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.done
	return err
}
