package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// KeyName is the audit key's name in the secret store (secrets.AuditKey).
const KeyName = "audit-key"

// KeyStore holds K0 on the host. *secrets.Store satisfies it.
type KeyStore interface {
	Get(name string) ([]byte, error)
	Set(name string, value []byte) error
}

// DefaultRotateBytes is the file size at which a new file is started.
const DefaultRotateBytes = 64 << 20

// Options configure a Log.
type Options struct {
	// RotateBytes starts a new file when the next record would take the
	// current one past it. 0 means DefaultRotateBytes; negative, never.
	RotateBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the filesystem; nil means the real one. Tests inject faults.
	FS FS
	// SyncState makes Append wait until the key state is durable, instead
	// of leaving it to the background writer (see the package doc).
	SyncState bool

	// noSync skips fsync; benchmarks only, to build big logs quickly.
	noSync bool
}

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	dir string
	o   Options
	fs  FS
	// lock holds the directory's exclusive flock while the log is open.
	lock *os.File

	mu sync.Mutex
	// The fields below are guarded by mu.
	c        *chain // head and current key; never suspect between calls
	file     string // active file's base name
	fileNo   int
	w        File  // active file, O_APPEND; nil when it must be reopened
	size     int64 // offset past the last accepted record in file (or 0)
	headFile string
	headEnd  int64 // offset past the head record in headFile
	failed   error // why the last write failed; nil when healthy
	secrets  [][]byte
	closed   bool
	buf      []byte

	head   atomic.Pointer[Head]
	broken atomic.Pointer[error]
	// signer signs checkpoints; nil when the log has no checkpoint key.
	signer *signer

	// state keeps the key state file following the log.
	state *stateWriter
}

var errClosed = errors.New("audit log closed")

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FS == nil {
		o.FS = osFS{}
	}
	if o.RotateBytes == 0 {
		o.RotateBytes = DefaultRotateBytes
	}
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("audit directory: %w: %w (or check audit.dir)", ErrNotInitialized, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("audit directory %s is not a directory (check audit.dir)", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("audit directory %s is mode %04o; it must not be accessible to others (chmod 700 %s)", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// Open opens the log in dir for appending. It checks the key state against
// the log's head, rolls a lagging state forward across records that verify
// under it, and, if the last write was torn, appends a recovery record
// naming the torn bytes. It refuses a log it cannot vouch for.
//
// One process writes a log at a time: Open takes an exclusive lock on the
// directory, because two writers would each seal with their own copy of
// the evolving key and fork the chain.
func Open(dir string, o Options) (*Log, error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l, err := open(dir, o)
	if err != nil {
		lock.Close()
		return nil, err
	}
	l.lock = lock
	return l, nil
}

// ErrInUse is Open's error when another process has the log open: one
// writer at a time (the daemon, while it runs). A caller that appends now
// and then (relay serve-ssh) tells it apart from a log that cannot be
// opened, and waits or goes through the daemon.
var ErrInUse = errors.New("in use by another relay process")

// LockFile is the lock file's name inside the audit directory.
const LockFile = "lock"

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w: %w", ErrNotInitialized, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log: %s is %w", dir, ErrInUse)
	}
	return f, nil
}

func open(dir string, o Options) (*Log, error) {
	o.defaults()
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	st, err := readState(dir)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	defer st.zero()
	files, err := ListFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	idx := -1
	for i, f := range files {
		if filepath.Base(f) == st.File {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("open audit log: %w: the key state names %s, which is not in %s (restore the file)", ErrDoesNotVerify, st.File, dir)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("open audit log: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("open audit log: %s is mode %04o (chmod 600 %s)", f, fi.Mode().Perm(), f)
		}
	}
	headHash, err := checkHead(o.FS, files[idx], st)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w: %w (to start over, move %s aside)", ErrDoesNotVerify, err, dir)
	}

	sg, err := loadSigner(dir)
	if err != nil && !errors.Is(err, ErrNoCheckpointKey) {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	l := &Log{dir: dir, o: o, fs: o.FS, state: newStateWriter(o.FS, filepath.Join(dir, StateFile), st.Seq), signer: sg}
	if sg != nil {
		// The private key is a secret like K0: it never enters a record.
		l.forbidLocked([]byte(sg.skey))
		// "PRIVATE+KEY+<name>+<hash>+<base64>": base64 has "+" too.
		if f := strings.SplitN(sg.skey, "+", 5); len(f) == 5 {
			if raw, err := base64.StdEncoding.DecodeString(f[4]); err == nil && len(raw) > 1 {
				l.forbidLocked(raw[1:]) // the Ed25519 seed, after the algorithm byte
				clear(raw)
			}
		}
	}
	l.c = newChain(st.Key)
	l.c.seq = st.Seq
	copy(l.c.mac[:], st.MAC)
	if headHash != nil {
		// The head's own h field: the state holds the key, not the
		// hash, and a wrong field is caught by verify at the head.
		hex.Decode(l.c.hash[:], headHash)
		l.c.hashed = true
	}
	l.headFile, l.headEnd = st.File, st.Size

	// Everything after the state's head must extend the chain under the
	// state's key, apart from a torn tail in the last file.
	for i := idx; i < len(files); i++ {
		name := filepath.Base(files[i])
		var off int64
		if i == idx {
			off = st.Size
		}
		f, err := o.FS.OpenFile(files[i], os.O_RDONLY, 0)
		if err != nil {
			l.c.s.zero()
			return nil, fmt.Errorf("open audit log: %w", err)
		}
		verr, err := scan(sectionFrom(f, off), off, name, 2*MaxRecordBytes, l.c, func(end int64, _ int) *VerifyError {
			l.headFile, l.headEnd = name, end
			return nil
		})
		f.Close()
		if err == nil && verr == nil && l.c.suspect() && i < len(files)-1 {
			verr = l.c.finish()
		}
		if err != nil || verr != nil {
			l.c.s.zero()
			if err == nil {
				err = verr
			}
			return nil, fmt.Errorf("open audit log: %w: the records after seq %d: %w (to start over, move %s aside)", ErrDoesNotVerify, st.Seq, err, dir)
		}
	}
	torn := l.c.suspect()
	last := files[len(files)-1]
	l.file = filepath.Base(last)
	l.fileNo, _ = fileNumber(l.file)
	if l.headFile == l.file {
		l.size = l.headEnd
	}
	l.c.resetRegion()
	w, err := o.FS.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		l.c.s.zero()
		return nil, fmt.Errorf("open audit log: %w (check the audit directory's permissions, or chattr)", err)
	}
	l.w = w
	l.setHead()
	go l.state.loop()
	if torn || l.c.seq > st.Seq {
		l.mu.Lock()
		if torn {
			l.failed = errors.New("the previous run ended in a torn write (crash or full disk)")
		} else {
			l.failed = fmt.Errorf("the key state lagged the log by %d record(s) (a crash before it was saved)", l.c.seq-st.Seq)
		}
		err := l.resyncLocked()
		l.mu.Unlock()
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("open audit log: %w", err)
		}
	}
	return l, nil
}

// checkHead confirms that the record ending at st.Size in path is the
// state's head, and returns its h field (nil for a format-1 head).
func checkHead(fs FS, path string, st *keyState) ([]byte, error) {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < st.Size {
		return nil, fmt.Errorf("%s is %d bytes but the key state's head record (seq %d) ends at %d: the log was truncated", st.File, fi.Size(), st.Seq, st.Size)
	}
	n := min(st.Size, int64(MaxRecordBytes+1))
	b := make([]byte, n)
	if _, err := f.ReadAt(b, st.Size-n); err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(b[:len(b)-1], '\n'); i >= 0 {
		b = b[i+1:]
	} else if n != st.Size {
		b = nil
	}
	h, reason := parseHeader(b)
	if reason != "" || h.seq != st.Seq || string(h.mac) != st.MAC {
		return nil, fmt.Errorf("the key state (seq %d) does not match the record at its position in %s", st.Seq, st.File)
	}
	return h.hash, nil
}

// Head returns the newest record's position and MAC.
func (l *Log) Head() Head { return *l.head.Load() }

func (l *Log) setHead() {
	h := &Head{Seq: l.c.seq, MAC: string(l.c.mac[:]), File: l.headFile}
	if l.c.hashed {
		h.Hash = hex.EncodeToString(l.c.hash[:])
	}
	l.head.Store(h)
}

// Healthy returns nil when the last append, and the key state write after
// it, succeeded; otherwise why not. The relay refuses commands while it is
// not nil. Appending (or Heal) after the cause is fixed makes it healthy.
func (l *Log) Healthy() error {
	if p := l.broken.Load(); p != nil {
		return *p
	}
	if err := l.state.lastErr(); err != nil {
		return fmt.Errorf("audit log unhealthy: %w", err)
	}
	return nil
}

// Heal retries a failed log: it records what failed and returns Healthy.
// Appending does the same; Heal is for when there is nothing to append.
func (l *Log) Heal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.failed == nil && l.stateErr() == nil {
		return nil
	}
	return l.resyncLocked()
}

func (l *Log) stateErr() error { return l.state.lastErr() }

func (l *Log) setFailedLocked(err error) error {
	l.failed = err
	e := fmt.Errorf("audit log unhealthy: %w", err)
	l.broken.Store(&e)
	return fmt.Errorf("audit append: %w (the action was not performed; fix the cause and the next append recovers)", err)
}

var reserved = map[Kind]bool{KindInit: true, KindRotate: true, KindRecovery: true, KindArchive: true}

// Append writes r as the next record: one write(2), then fsync. When it
// returns an error the action r describes must not happen, and the log is
// unhealthy until an append succeeds. It returns the new head.
func (l *Log) Append(r Record) (Head, error) {
	if !validType([]byte(r.Type)) {
		return Head{}, errors.New("audit append: bad record type (want 1 to 32 lower-case letters and _)")
	}
	if reserved[r.Type] || r.Redacted || r.TornBytes != 0 || r.TornSHA256 != "" || r.Archived != nil {
		return Head{}, errors.New("audit append: init, rotate, recovery and archive records and the redacted, torn and archived fields are written by the log itself")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Head{}, errClosed
	}
	if l.failed != nil || l.stateErr() != nil {
		if err := l.resyncLocked(); err != nil {
			return Head{}, err
		}
	}
	return l.appendLocked(&r, false)
}

func (l *Log) appendLocked(r *Record, noRotate bool) (Head, error) {
	l.redactLocked(r)
	body, err := encodeBody(r)
	if err != nil {
		return Head{}, fmt.Errorf("audit append: %w", err)
	}
	if len(body)+suffixLen+200 > MaxRecordBytes {
		return Head{}, fmt.Errorf("audit append: %s record of %d bytes exceeds the %d-byte limit (shorten the command's arguments)", r.Type, len(body), MaxRecordBytes)
	}
	if !noRotate && l.o.RotateBytes > 0 && l.size > 0 && l.size+int64(len(body)+suffixLen+200) > l.o.RotateBytes {
		if err := l.rotateLocked(); err != nil {
			return Head{}, err
		}
	}
	return l.writeLocked(body, "")
}

// writeLocked seals body as the next record and appends sep+line in one
// write(2).
func (l *Log) writeLocked(body []byte, sep string) (Head, error) {
	buf := append(l.buf[:0], sep...)
	hprev := &l.c.hash // zero after a format-1 head: format 2 starts here
	buf, hv, err := appendLine(buf, l.c.s, l.c.lh, l.c.seq+1, l.o.Now(), l.c.prevHex(), hprev, body)
	l.buf = buf[:0]
	if err != nil {
		return Head{}, fmt.Errorf("audit append: %w", err)
	}
	for _, sec := range l.secrets {
		if bytes.Contains(buf, sec) {
			return Head{}, errors.New("audit append: the record would contain a registered secret; not written (this is a bug in the caller: report it)")
		}
	}
	line := buf[len(sep):]
	h, reason := parseHeader(line)
	if reason != "" {
		return Head{}, fmt.Errorf("audit append: internal error: %s", reason)
	}
	if l.w == nil {
		return Head{}, l.setFailedLocked(fmt.Errorf("%s is not open", l.file))
	}
	n, err := l.w.Write(buf)
	if err == nil && n != len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return Head{}, l.setFailedLocked(fmt.Errorf("write %s: %w", l.file, err))
	}
	if !l.o.noSync {
		if err := l.w.Sync(); err != nil {
			return Head{}, l.setFailedLocked(fmt.Errorf("fsync %s: %w", l.file, err))
		}
	}
	l.size += int64(len(buf))
	l.c.accept(&h, l.file, 0, &hv)
	l.headFile, l.headEnd = l.file, l.size
	l.setHead()
	l.state.queue(l.stateLocked())
	if l.o.SyncState {
		if err := l.state.flush(); err != nil {
			return Head{}, l.setFailedLocked(fmt.Errorf("write key state: %w", err))
		}
	}
	l.failed = nil
	l.broken.Store(nil)
	return l.Head(), nil
}

func (l *Log) stateLocked() *keyState {
	return &keyState{Seq: l.c.seq, Key: append([]byte(nil), l.c.s.key[:]...), MAC: string(l.c.mac[:]), File: l.headFile, Size: l.headEnd}
}

// rotateLocked starts the next file with a rotate record linking the last.
func (l *Log) rotateLocked() error {
	prev, prevSize := l.file, l.size
	name := nameFor(l.fileNo + 1)
	w, err := l.fs.OpenFile(filepath.Join(l.dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return l.setFailedLocked(fmt.Errorf("rotate: create %s: %w", name, err))
	}
	if l.w != nil {
		l.w.Close()
	}
	l.w, l.file, l.fileNo, l.size = w, name, l.fileNo+1, 0
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.setFailedLocked(fmt.Errorf("rotate: %w", err))
	}
	body, _ := encodeBody(&Record{Type: KindRotate, Outcome: OutcomeOK, Detail: fmt.Sprintf("continues %s (%d bytes)", prev, prevSize)})
	_, err = l.writeLocked(body, "")
	return err
}

// Sync waits until the key state for the current head is on disk.
func (l *Log) Sync() error {
	if err := l.state.flush(); err != nil {
		return fmt.Errorf("audit: write key state: %w", err)
	}
	return nil
}

// Close flushes the key state, closes the file and erases the key. It
// returns an error if the state could not be saved.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.state.close()
	if l.w != nil {
		if cerr := l.w.Close(); err == nil {
			err = cerr
		}
	}
	l.c.s.zero()
	if l.lock != nil {
		l.lock.Close()
	}
	for _, s := range l.secrets {
		clear(s)
	}
	if err != nil {
		return fmt.Errorf("audit close: %w", err)
	}
	return nil
}
