package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
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
	"unsafe"
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

	// Key state persistence. smu guards the fields below it.
	smu     sync.Mutex
	scond   *sync.Cond
	spend   *keyState // newest state not yet taken by the writer
	sbusy   bool
	sstop   bool
	serr    error // last state write failure, nil after a success
	sdone   chan struct{}
	skick   chan struct{} // cuts the writer's pause short for a flush
	sflush  bool          // a flush is waiting: write without pausing
	slast   time.Time     // when the last state write started
	swmu    sync.Mutex    // serializes state writes; guards persisted
	persist uint64        // newest seq whose state is on disk
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

// InitOptions adjust Init.
type InitOptions struct {
	// Force allows replacing a key state and a stored key when the
	// directory holds no records. Init never starts over a log that has
	// records, with or without Force: move that directory aside.
	Force bool
	Now   func() time.Time
	Rand  io.Reader // K0's randomness; nil means crypto/rand
	FS    FS
	// Origin names the log in its signed checkpoints; "" means
	// DefaultOrigin.
	Origin string
	// CheckpointRand is the checkpoint key's randomness; nil means
	// crypto/rand.
	CheckpointRand io.Reader
}

// Init starts a new log in dir with a fresh K0, stores K0 in ks (nil: K0 is
// kept off the host only) and returns it so the owner can keep a copy off
// the host. It seals the first record, "init", so K0 itself is never
// written to the key state.
func Init(dir string, ks KeyStore) ([]byte, error) { return InitWith(dir, ks, InitOptions{}) }

// InitWith is Init with options. Init also makes the log's checkpoint key
// pair (AddCheckpointKey); ReadPublicKey returns the public key to show.
func InitWith(dir string, ks KeyStore, o InitOptions) (k0 []byte, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.FS == nil {
		o.FS = osFS{}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	files, err := ListFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 0 {
			return nil, fmt.Errorf("audit init: %s already holds an audit log (move the directory aside, keeping its K0 to verify it, and run init again)", dir)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil && !o.Force {
		return nil, fmt.Errorf("audit init: %s already has a key state (use --force to replace it; the directory holds no records)", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, CheckpointKeyFile)); err == nil && !o.Force {
		return nil, fmt.Errorf("audit init: %s already has a checkpoint key (use --force to replace it; the directory holds no records)", dir)
	}
	if o.Origin != "" && !validOrigin(o.Origin) {
		return nil, fmt.Errorf("audit init: origin %q must be printable, without spaces or \"+\"", o.Origin)
	}
	if ks != nil {
		if old, err := ks.Get(KeyName); err == nil && len(old) > 0 {
			clear(old)
			if !o.Force {
				return nil, errors.New("audit init: the secret store already holds an audit key (keep it to verify the old log; use --force to replace it)")
			}
		}
	}
	k0 = make([]byte, keySize)
	if _, err := io.ReadFull(o.Rand, k0); err != nil {
		return nil, fmt.Errorf("audit init: generate key: %w", err)
	}
	defer func() {
		if err != nil {
			clear(k0)
			k0 = nil
		}
	}()
	if ks != nil {
		if err := ks.Set(KeyName, k0); err != nil {
			return nil, fmt.Errorf("audit init: store the audit key: %w (check the secret store, or use --no-store and keep K0 off the host)", err)
		}
	}
	name := nameFor(1)
	path := filepath.Join(dir, name)
	w, err := o.FS.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit init: %w (run init again with --force)", err)
	}
	defer w.Close()
	s := newSealer(k0)
	defer s.zero()
	body, _ := encodeBody(&Record{Type: KindInit, Outcome: OutcomeOK, Detail: "new audit log"})
	line, _, err := appendLine(nil, s, newLinkHash(), 1, o.Now(), nil, &[sha256.Size]byte{}, body)
	if err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	if _, err := w.Write(line); err != nil {
		return nil, fmt.Errorf("audit init: write %s: %w (run init again with --force)", name, err)
	}
	if err := w.Sync(); err != nil {
		return nil, fmt.Errorf("audit init: sync %s: %w (run init again with --force)", name, err)
	}
	if err := o.FS.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	h, _ := parseHeader(line)
	s.next()
	st := &keyState{Seq: 1, Key: append([]byte(nil), s.key[:]...), MAC: string(h.mac), File: name, Size: int64(len(line))}
	data := st.encode()
	err = o.FS.WriteFileAtomic(filepath.Join(dir, StateFile), data, 0o600)
	clear(data)
	st.zero()
	if err != nil {
		return nil, fmt.Errorf("audit init: write key state: %w (run init again with --force)", err)
	}
	if _, err := AddCheckpointKey(dir, o.Origin, o.CheckpointRand, true); err != nil {
		return nil, fmt.Errorf("audit init: %w (run init again with --force)", err)
	}
	return k0, nil
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
	l := &Log{dir: dir, o: o, fs: o.FS, persist: st.Seq, sdone: make(chan struct{}), skick: make(chan struct{}, 1), signer: sg}
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
	l.scond = sync.NewCond(&l.smu)
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
	go l.stateLoop()
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
	l.smu.Lock()
	defer l.smu.Unlock()
	if l.serr != nil {
		return fmt.Errorf("audit log unhealthy: %w", l.serr)
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

func (l *Log) stateErr() error {
	l.smu.Lock()
	defer l.smu.Unlock()
	return l.serr
}

func (l *Log) setFailedLocked(err error) error {
	l.failed = err
	e := fmt.Errorf("audit log unhealthy: %w", err)
	l.broken.Store(&e)
	return fmt.Errorf("audit append: %w (the action was not performed; fix the cause and the next append recovers)", err)
}

// minSecret is the shortest value ForbidSecret takes: shorter ones would
// match innocent text and redact it.
const minSecret = 6

// ForbidSecret registers a value that must never appear in a record: the
// bot token, the TOTP secret, K0. Append replaces it (and its hex, base32
// and base64 forms) with "[redacted]" and marks the record redacted, and
// refuses a record whose line would still contain it.
func (l *Log) ForbidSecret(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forbidLocked(b)
}

func (l *Log) forbidLocked(b []byte) {
	if len(b) < minSecret {
		return
	}
	forms := []string{string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base32.StdEncoding.EncodeToString(b), base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b),
		base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
	for _, f := range forms {
		l.secrets = append(l.secrets, []byte(f))
	}
}

const redacted = "[redacted]"

func (l *Log) redactLocked(r *Record) {
	if len(l.secrets) == 0 {
		return
	}
	fix := func(s string) string {
		for _, sec := range l.secrets {
			// A view, not a copy: converting each secret for each field
			// of each record cost more than the append. The slices are
			// only cleared by Close, which holds mu as this does.
			v := unsafe.String(unsafe.SliceData(sec), len(sec))
			if strings.Contains(s, v) {
				s = strings.ReplaceAll(s, v, redacted)
				r.Redacted = true
			}
		}
		return s
	}
	r.Type, r.Outcome = Kind(fix(string(r.Type))), Outcome(fix(string(r.Outcome)))
	for _, p := range []*string{&r.Reason, &r.Command, &r.Workdir, &r.Sandbox,
		&r.Job, &r.Signal, &r.OutputSHA256, &r.Detail, &r.TornSHA256,
		&r.Host, &r.Call, &r.Peer, &r.RemoteMAC} {
		*p = fix(*p)
	}
	if r.Params != nil {
		m := make(map[string]string, len(r.Params))
		for k, v := range r.Params {
			m[fix(k)] = fix(v)
		}
		r.Params = m
	}
	for _, p := range []*[]string{&r.Argv, &r.Args} {
		if *p != nil {
			a := make([]string, len(*p))
			for i, v := range *p {
				a[i] = fix(v)
			}
			*p = a
		}
	}
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
	l.queueState(l.stateLocked())
	if l.o.SyncState {
		if err := l.flushState(); err != nil {
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
	if err := l.persistState(l.stateLocked()); err != nil {
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

// queueState hands st to the background writer, replacing (and erasing) an
// older state it has not started on.
func (l *Log) queueState(st *keyState) {
	l.smu.Lock()
	if l.spend != nil {
		l.spend.zero()
	}
	l.spend = st
	l.scond.Broadcast()
	l.smu.Unlock()
}

// stateInterval is the least time between two background key state
// writes. Each write costs three fsyncs (file, rename, directory) that
// compete with the log's own; pausing between them keeps appends near the
// disk's raw fsync rate, and bounds how far the state on disk trails the
// log. Sync, Close and recovery write at once.
var stateInterval = 100 * time.Millisecond

func (l *Log) stateLoop() {
	defer close(l.sdone)
	l.smu.Lock()
	for {
		for l.spend == nil && !l.sstop {
			l.scond.Wait()
		}
		if l.spend == nil {
			l.smu.Unlock()
			return
		}
		if d := stateInterval - time.Since(l.slast); d > 0 && !l.sflush && !l.sstop {
			l.smu.Unlock()
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-l.skick:
			}
			t.Stop()
			l.smu.Lock()
			continue
		}
		st := l.spend
		l.spend, l.sbusy, l.sflush, l.slast = nil, true, false, time.Now()
		l.smu.Unlock()
		_ = l.persistState(st) // records the outcome in serr
		l.smu.Lock()
		l.sbusy = false
		l.scond.Broadcast()
	}
}

func (l *Log) kickLocked() {
	l.sflush = true
	select {
	case l.skick <- struct{}{}:
	default:
	}
}

// persistState writes st unless a newer state is already on disk. It
// erases st's key either way.
func (l *Log) persistState(st *keyState) error {
	l.swmu.Lock()
	defer l.swmu.Unlock()
	defer st.zero()
	if st.Seq < l.persist {
		return nil
	}
	data := st.encode()
	err := l.fs.WriteFileAtomic(filepath.Join(l.dir, StateFile), data, 0o600)
	clear(data)
	l.smu.Lock()
	if err != nil {
		l.serr = err
	} else {
		l.serr = nil
		l.persist = st.Seq
	}
	l.smu.Unlock()
	return err
}

// flushState waits until every queued key state was written and returns
// the last write's error.
func (l *Log) flushState() error {
	l.smu.Lock()
	defer l.smu.Unlock()
	for l.spend != nil || l.sbusy {
		if l.spend != nil {
			l.kickLocked()
		}
		l.scond.Wait()
	}
	return l.serr
}

// Sync waits until the key state for the current head is on disk.
func (l *Log) Sync() error {
	if err := l.flushState(); err != nil {
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
	err := l.flushState()
	l.smu.Lock()
	l.sstop = true
	l.kickLocked()
	l.scond.Broadcast()
	l.smu.Unlock()
	<-l.sdone
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
