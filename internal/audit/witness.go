package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/relaychat/relay/internal/atomicfile"
)

// This file is the audit side of the witness: what the host serves to it
// (LatestCheckpoint, RecordsSince, RecordWitnessed), and what the witness
// does with it (Extends, WitnessStore), apart from the transport between
// them. Over relay serve-ssh, for the witness key only:
//
//	audit-head       LatestCheckpoint(dir), its Note written out
//	audit-since SEQ  RecordsSince(archived + live files, SEQ, out)
//	audit-witnessed  RecordWitnessed(dir, note read in): the witness stored it
//
// and relay audit witness, on another machine:
//
//	s := OpenWitnessStore(dir)        // CreateWitnessStore(dir, pub) the first time
//	res, err := s.Witness(head, fetch) // fetch runs audit-since
//	// a *WitnessError: notify, exit non-zero; else send res.Checkpoint.Note
//	// back with audit-witnessed.

// LatestCheckpoint signs the newest record on disk in dir with the log's
// checkpoint key. It only reads, and takes no lock, so it can answer a
// witness while the daemon writes the log: a line still being written is
// not a record yet, and the one before it is signed. It fails when the
// newest record is format 1 (no h).
func LatestCheckpoint(dir string) (Checkpoint, error) {
	sg, err := loadSigner(dir)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	files, err := ListFiles(dir)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	for k := len(files) - 1; k >= 0; k-- {
		h, ok, err := lastRecord(files[k])
		if err != nil {
			return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
		}
		if !ok {
			continue
		}
		if h.hash == nil {
			return Checkpoint{}, fmt.Errorf("audit checkpoint: the newest record (seq %d) is format 1, without h: the next record the relay writes has one", h.seq)
		}
		var hv [sha256.Size]byte
		hex.Decode(hv[:], h.hash)
		return sg.sign(h.seq, &hv)
	}
	return Checkpoint{}, errors.New("audit checkpoint: the log holds no records")
}

// lastRecord returns the header of the last line of path that frames as a
// record.
func lastRecord(path string) (h header, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return h, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return h, false, err
	}
	err = eachLineBack(f, fi.Size(), 4096, func(line []byte, _ int64, long bool) bool {
		if long {
			return true
		}
		if hh, reason := parseHeader(line); reason == "" {
			// The header aliases the reader's buffer: keep a copy.
			hh.hash = bytes.Clone(hh.hash)
			hh.mac = bytes.Clone(hh.mac)
			h, ok = hh, true
			return false
		}
		return true
	})
	return h, ok, err
}

// RecordsSince writes to w every record line of files (oldest first, live
// or archived) whose seq is after seq, in log order, and returns how many.
// It skips files that end before seq from their first line alone, and
// lines that do not frame as records (a torn tail, or one being written);
// it does not verify: the witness does, with Extends.
func RecordsSince(files []string, seq uint64, w io.Writer) (uint64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	var n uint64
	err := eachRecordAfter(files, seq, func(line []byte, _ *header) (bool, error) {
		n++
		_, err := bw.Write(line)
		return true, err
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return n, fmt.Errorf("audit records: %w", err)
	}
	return n, nil
}

// eachRecordAfter calls fn with every line of files that frames as a
// record with a seq after seq, in order, until fn returns false or an
// error. The line and header alias a buffer the next call reuses.
func eachRecordAfter(files []string, seq uint64, fn func(line []byte, h *header) (bool, error)) error {
	files = sortFiles(files)
	// Start at the last file whose first record is at or before seq+1.
	start := 0
	for i := len(files) - 1; i > 0; i-- {
		line, err := firstLine(files[i])
		if err != nil {
			return err
		}
		if h, reason := parseHeader(line); reason == "" && h.seq <= seq+1 {
			start = i
			break
		}
	}
	for _, path := range files[start:] {
		more, err := eachRecordIn(path, seq, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func eachRecordIn(path string, seq uint64, fn func(line []byte, h *header) (bool, error)) (bool, error) {
	var off int64
	if !strings.HasSuffix(path, ArchiveSuffix) {
		var err error
		if off, err = seekSeq(path, seq+1); err != nil {
			return false, err
		}
	}
	r, closeFn, err := openLog(path, func(r io.Reader) io.Reader {
		if off > 0 {
			return io.NewSectionReader(r.(io.ReaderAt), off, math.MaxInt64-off)
		}
		return r
	})
	if err != nil {
		return false, err
	}
	defer closeFn()
	br := bufio.NewReaderSize(r, 2*MaxRecordBytes)
	for {
		line, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n') // longer than any record
			line = nil
		}
		if h, reason := parseHeader(line); reason == "" && h.seq > seq {
			more, ferr := fn(line, &h)
			if ferr != nil || !more {
				return false, ferr
			}
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", filepath.Base(path), err)
		}
	}
}

// seekSeq returns an offset in path where a line starts and after which
// the record want, if the file holds it, is found: it bisects on the seqs
// of the records it finds after a byte offset, so that serving the newest
// records of a 64 MiB file reads a few blocks of it, not all of it. A line
// that is not a record (torn) is passed over; the reader after it
// filters by seq anyway, so a wrong guess costs time, never records.
func seekSeq(path string, want uint64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 2*MaxRecordBytes+2)
	// lo is a line start whose record (if any) is before want; hi an
	// offset past which no line start is.
	lo, hi := int64(0), fi.Size()
	for hi-lo > 2*int64(len(buf)) {
		mid := lo + (hi-lo)/2
		n, err := f.ReadAt(buf, mid)
		if err != nil && err != io.EOF {
			return 0, err
		}
		b := buf[:n]
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			hi = mid
			continue
		}
		start, line := mid+int64(i+1), b[i+1:]
		j := bytes.IndexByte(line, '\n')
		if j < 0 {
			hi = mid
			continue
		}
		h, reason := parseHeader(line[:j+1])
		switch {
		case reason != "":
			hi = mid // torn or damaged: look before it
		case h.seq < want:
			lo = start
		default:
			hi = mid
		}
	}
	return lo, nil
}

// WitnessedFile, in the audit directory, holds the newest checkpoint a
// witness said it stored (RecordWitnessed). Archive does not go past it.
const WitnessedFile = "witnessed"

// ErrNotWitnessed is LastWitnessed's error when no witness has reported.
var ErrNotWitnessed = errors.New("no witness has stored a checkpoint of this log")

// RecordWitnessed notes on the host that a witness stored cp, a signed
// checkpoint of this log: it must verify with the public key beside the
// log and name a record that is in the log with that h, and be newer than
// the one noted before. The note is a safety rule for archive, not
// evidence: whoever controls the host can write it.
func RecordWitnessed(dir string, note []byte) (Checkpoint, error) {
	pub, err := ReadPublicKey(dir)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("record witnessed checkpoint: %w", err)
	}
	cp, err := OpenCheckpoint(note, pub)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("record witnessed checkpoint: %w", err)
	}
	if old, err := LastWitnessed(dir); err == nil && old.Seq > cp.Seq {
		return Checkpoint{}, fmt.Errorf("record witnessed checkpoint: seq %d is older than the one recorded (seq %d)", cp.Seq, old.Seq)
	}
	files, err := ListFiles(dir)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("record witnessed checkpoint: %w", err)
	}
	found := false
	err = eachRecordAfter(files, cp.Seq-1, func(_ []byte, h *header) (bool, error) {
		found = h.seq == cp.Seq && string(h.hash) == cp.HashHex()
		return false, nil
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("record witnessed checkpoint: %w", err)
	}
	if !found {
		return Checkpoint{}, fmt.Errorf("record witnessed checkpoint: the log has no record seq %d with h %.16s…", cp.Seq, cp.HashHex())
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, WitnessedFile), cp.Note, 0o600); err != nil {
		return Checkpoint{}, fmt.Errorf("record witnessed checkpoint: %w", err)
	}
	return cp, nil
}

// LastWitnessed returns the checkpoint RecordWitnessed noted last, checked
// again against the public key beside the log.
func LastWitnessed(dir string) (Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, WitnessedFile))
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, ErrNotWitnessed
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read the witnessed checkpoint: %w", err)
	}
	pub, err := ReadPublicKey(dir)
	if err != nil {
		return Checkpoint{}, err
	}
	cp, err := OpenCheckpoint(b, pub)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("the witnessed checkpoint %s: %w", filepath.Join(dir, WitnessedFile), err)
	}
	return cp, nil
}

// ErrNotThisLog is wrapped by CheckWitnessed's refusals of the note
// itself, as against a log it cannot read.
var ErrNotThisLog = errors.New("not a checkpoint of this log")

// CheckWitnessed checks, and writes nothing, that note is a checkpoint
// RecordWitnessed may note for the log in dir: it verifies with the public
// key beside the log; it names a seq at or before the log's head whose
// record (in the live files) carries the note's hash as its h; that h is
// SHA-256(hprev || T) of the record as it is on disk, from the h of the
// record before it when the live files hold one; and it is not older than
// the checkpoint noted last. A note that fails wraps ErrNotThisLog; any
// other error is the log's. The serve-ssh --witness side of
// audit-witnessed runs it before RecordWitnessed, so that a forged or
// foreign note is refused as such and changes nothing.
func CheckWitnessed(dir string, note []byte) (Checkpoint, error) {
	refuse := func(format string, a ...any) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: %s", ErrNotThisLog, fmt.Sprintf(format, a...))
	}
	pub, err := ReadPublicKey(dir)
	if err != nil {
		return Checkpoint{}, err
	}
	cp, err := OpenCheckpoint(note, pub)
	if err != nil {
		return refuse("%v", err)
	}
	if old, err := LastWitnessed(dir); err == nil && old.Seq > cp.Seq {
		return refuse("seq %d is older than the checkpoint noted already (seq %d)", cp.Seq, old.Seq)
	}
	if cp.Seq == 0 {
		return refuse("seq 0 names no record")
	}
	files, err := ListFiles(dir)
	if err != nil {
		return Checkpoint{}, err
	}
	var (
		prev    [sha256.Size]byte
		hasPrev bool
		found   bool
		reason  = fmt.Sprintf("the log has no record seq %d (a seq after its head, or archived)", cp.Seq)
	)
	err = eachRecordAfter(files, cp.Seq-min(cp.Seq, 2), func(_ []byte, h *header) (bool, error) {
		switch {
		case h.seq+1 == cp.Seq:
			if h.hash != nil {
				_, err := hex.Decode(prev[:], h.hash)
				hasPrev = err == nil
			}
			return true, nil
		case h.seq != cp.Seq:
			return false, nil
		}
		switch {
		case h.hash == nil:
			reason = fmt.Sprintf("the record seq %d is format 1 (no h)", cp.Seq)
		case !macMatches(&cp.Hash, h.hash):
			reason = fmt.Sprintf("the record seq %d has another h than the checkpoint's", cp.Seq)
		case hasPrev && newLinkHash().of(&prev, h.content) != cp.Hash:
			reason = fmt.Sprintf("the record seq %d does not hash to its h from the record before it", cp.Seq)
		default:
			found = true
		}
		return false, nil
	})
	if err != nil {
		return Checkpoint{}, err
	}
	if !found {
		return refuse("%s", reason)
	}
	return cp, nil
}

// WitnessKind classifies what a witness found wrong.
type WitnessKind string

const (
	// WitnessBadSignature: the checkpoint is not signed by the pinned
	// key (the key was swapped, or it is not this log's).
	WitnessBadSignature WitnessKind = "bad-signature"
	// WitnessRollback: the log ends before what was witnessed, and what
	// is left matches: records from FirstBad on were lost.
	WitnessRollback WitnessKind = "rollback"
	// WitnessFork: the record at FirstBad differs from the one witnessed
	// at that seq: history was rewritten (a restored backup that went on,
	// a forked log, a rewritten tail).
	WitnessFork WitnessKind = "fork"
	// WitnessMissing: the host did not serve the records that a new
	// checkpoint claims, from FirstBad on.
	WitnessMissing WitnessKind = "missing"
	// WitnessBadRecords: the host served records that are not a chain
	// (malformed, out of order, or with an h that their content does not
	// give).
	WitnessBadRecords WitnessKind = "bad-records"
)

// WitnessError is a log that failed the witness: what, the first seq
// whose record is not what was witnessed (0 when no record is at fault),
// and why.
type WitnessError struct {
	Kind     WitnessKind
	FirstBad uint64
	Reason   string
}

func (e *WitnessError) Error() string {
	if e.FirstBad > 0 {
		return fmt.Sprintf("witness: %s at seq %d: %s", e.Kind, e.FirstBad, e.Reason)
	}
	return fmt.Sprintf("witness: %s: %s", e.Kind, e.Reason)
}

// Extends checks that the records read from records carry the chain from
// old to new: they must be old.Seq+1 to new.Seq in order, each linked to
// the one before by prev, each a format-2 record whose h is
// SHA-256(hprev || T) starting from old.Hash, and the last h must be
// new.Hash. Records after new.Seq are not read. each, when not nil, is
// called with every record's seq and h as it is checked. A failure is a
// *WitnessError naming the first record that does not fit.
//
// A pass proves that the log at new extends the log at old: whoever signed
// both cannot have changed any record up to old.Seq in between without a
// SHA-256 collision.
func Extends(old, new Checkpoint, records io.Reader, each func(seq uint64, h *[sha256.Size]byte) error) error {
	if new.Seq < old.Seq {
		return &WitnessError{Kind: WitnessRollback, FirstBad: new.Seq + 1, Reason: fmt.Sprintf("the new checkpoint is at seq %d, before the old one at seq %d", new.Seq, old.Seq)}
	}
	if new.Seq == old.Seq {
		if new.Hash != old.Hash {
			return &WitnessError{Kind: WitnessFork, FirstBad: new.Seq, Reason: fmt.Sprintf("two checkpoints for seq %d name different hashes", new.Seq)}
		}
		return nil
	}
	r := newRecordReader(records)
	hv := old.Hash
	var prevMAC []byte
	for seq := old.Seq + 1; seq <= new.Seq; seq++ {
		h, reason, err := r.next()
		if err == io.EOF {
			return &WitnessError{Kind: WitnessMissing, FirstBad: seq, Reason: fmt.Sprintf("the records end at seq %d, but the checkpoint claims seq %d", seq-1, new.Seq)}
		}
		if err != nil {
			return fmt.Errorf("witness: read records: %w", err)
		}
		if reason != "" {
			return &WitnessError{Kind: WitnessBadRecords, FirstBad: seq, Reason: "record " + reason}
		}
		switch {
		case h.seq < seq:
			return &WitnessError{Kind: WitnessBadRecords, FirstBad: seq, Reason: fmt.Sprintf("record seq %d repeats or goes back where %d was expected", h.seq, seq)}
		case h.seq > seq:
			return &WitnessError{Kind: WitnessMissing, FirstBad: seq, Reason: fmt.Sprintf("record seq %d where %d was expected: records were left out", h.seq, seq)}
		case prevMAC != nil && !bytes.Equal(h.prev, prevMAC):
			return &WitnessError{Kind: WitnessBadRecords, FirstBad: seq, Reason: "prev does not link to the record before"}
		case h.hash == nil:
			return &WitnessError{Kind: WitnessBadRecords, FirstBad: seq, Reason: "a format-1 record (no h) after a signed checkpoint"}
		}
		hv = r.lh.of(&hv, h.content)
		if !macMatches(&hv, h.hash) {
			return &WitnessError{Kind: WitnessFork, FirstBad: seq, Reason: "the record's h does not chain from the witnessed history: records at or before this seq differ from what was witnessed"}
		}
		prevMAC = append(prevMAC[:0], h.mac...)
		if each != nil {
			if err := each(seq, &hv); err != nil {
				return err
			}
		}
	}
	if hv != new.Hash {
		return &WitnessError{Kind: WitnessFork, FirstBad: new.Seq, Reason: "the records do not hash to the checkpoint's hash"}
	}
	return nil
}

// recordReader reads record lines one at a time, each at most a record
// long, so that a host cannot make the witness hold more.
type recordReader struct {
	br *bufio.Reader
	lh *linkHash
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{br: bufio.NewReaderSize(r, MaxRecordBytes+2), lh: newLinkHash()}
}

// next returns the next line's header (aliasing the reader's buffer until
// the next call), or why it does not frame, or the reader's error.
func (r *recordReader) next() (header, string, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return header{}, "", err
		}
		return header{}, "longer than the record limit", nil
	}
	if len(line) == 0 && err != nil {
		return header{}, "", err
	}
	if err != nil && err != io.EOF {
		return header{}, "", err
	}
	h, reason := parseHeader(line)
	return h, reason, nil
}

// WitnessStore is a witness's record of one log: the public key it was
// given, every checkpoint it accepted, in order, and the h of every record
// from the first checkpoint on, so that a rewritten log is reported at the
// first record that differs. It lives in its own 0700 directory, on a
// machine other than the log's host:
//
//	key                the pinned public checkpoint key
//	checkpoints.jsonl  accepted checkpoints, one JSON line each, appended
//	hashes             32 bytes of h per record, from the first checkpoint's seq
//	rejected.jsonl     checkpoints refused, with the reason: evidence
//	lock               held while the store is open
//
// checkpoints.jsonl and rejected.jsonl are only ever appended to and
// fsynced. hashes is derived from the records; entries past the newest
// checkpoint (a crash between the two appends) are dropped when the store
// opens. The first checkpoint is taken on trust (the witness has nothing
// to compare it with): a log rewritten before it was first witnessed
// passes.
type WitnessStore struct {
	dir  string
	key  string
	lock *os.File
	cps  []Checkpoint
	// base is the seq of hashes' first entry (the first checkpoint's).
	base   uint64
	hashes *os.File
	// Now is the clock for the received times; nil means time.Now.
	Now func() time.Time
}

const (
	witnessKey      = "key"
	witnessCPs      = "checkpoints.jsonl"
	witnessHashes   = "hashes"
	witnessRejected = "rejected.jsonl"
)

type witnessLine struct {
	Received string `json:"received"`
	Seq      uint64 `json:"seq"`
	H        string `json:"h"`
	Note     string `json:"note"`
}

type rejectedLine struct {
	Received string      `json:"received"`
	Kind     WitnessKind `json:"kind"`
	FirstBad uint64      `json:"first_bad,omitempty"`
	Reason   string      `json:"reason"`
	Note     string      `json:"note"`
}

// CreateWitnessStore makes a new store in dir (which must not hold one)
// for the log whose public checkpoint key is publicKey, and opens it.
func CreateWitnessStore(dir, publicKey string) (*WitnessStore, error) {
	pub, err := ParsePublicKey(publicKey)
	if err != nil {
		return nil, fmt.Errorf("witness store: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("witness store: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("witness store: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, witnessKey)); err == nil {
		return nil, fmt.Errorf("witness store: %s already holds a store (open it, or use another directory)", dir)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, witnessKey), []byte(pub+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("witness store: %w", err)
	}
	return OpenWitnessStore(dir)
}

// OpenWitnessStore opens the store in dir, checking every checkpoint in
// it against the pinned key and against the stored hashes.
func OpenWitnessStore(dir string) (*WitnessStore, error) {
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("witness store: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("witness store: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("witness store: %s is in use by another witness run", dir)
	}
	s := &WitnessStore{dir: dir, lock: lock}
	if err := s.load(); err != nil {
		s.Close()
		return nil, fmt.Errorf("witness store %s: %w", dir, err)
	}
	return s, nil
}

func (s *WitnessStore) load() error {
	kb, err := os.ReadFile(filepath.Join(s.dir, witnessKey))
	if err != nil {
		return fmt.Errorf("read the pinned key: %w", err)
	}
	if s.key, err = ParsePublicKey(string(kb)); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(s.dir, witnessCPs))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var wl witnessLine
		if err := json.Unmarshal(line, &wl); err != nil {
			return fmt.Errorf("%s line %d is corrupt", witnessCPs, i+1)
		}
		cp, err := OpenCheckpoint([]byte(wl.Note), s.key)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", witnessCPs, i+1, err)
		}
		if cp.Seq != wl.Seq || cp.HashHex() != wl.H {
			return fmt.Errorf("%s line %d disagrees with its note", witnessCPs, i+1)
		}
		if n := len(s.cps); n > 0 && cp.Seq <= s.cps[n-1].Seq {
			return fmt.Errorf("%s line %d goes back from seq %d to %d", witnessCPs, i+1, s.cps[n-1].Seq, cp.Seq)
		}
		s.cps = append(s.cps, cp)
	}
	s.hashes, err = os.OpenFile(filepath.Join(s.dir, witnessHashes), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	if len(s.cps) == 0 {
		return s.hashes.Truncate(0)
	}
	s.base = s.cps[0].Seq
	want := int64(s.cps[len(s.cps)-1].Seq-s.base+1) * sha256.Size
	fi, err := s.hashes.Stat()
	if err != nil {
		return err
	}
	switch {
	case fi.Size() < want:
		return fmt.Errorf("%s holds %d hashes, fewer than the checkpoints need (%d)", witnessHashes, fi.Size()/sha256.Size, want/sha256.Size)
	case fi.Size() > want:
		// Hashes appended before their checkpoint was: a crash.
		if err := s.hashes.Truncate(want); err != nil {
			return err
		}
	}
	for _, cp := range s.cps {
		h, err := s.hashAt(cp.Seq)
		if err != nil {
			return err
		}
		if h != cp.Hash {
			return fmt.Errorf("%s disagrees with the checkpoint at seq %d", witnessHashes, cp.Seq)
		}
	}
	return nil
}

func (s *WitnessStore) hashAt(seq uint64) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	if _, err := s.hashes.ReadAt(h[:], int64(seq-s.base)*sha256.Size); err != nil {
		return h, fmt.Errorf("read %s: %w", witnessHashes, err)
	}
	return h, nil
}

// Close releases the store.
func (s *WitnessStore) Close() error {
	if s.hashes != nil {
		s.hashes.Close()
	}
	if s.lock != nil {
		return s.lock.Close()
	}
	return nil
}

// PublicKey is the pinned public checkpoint key.
func (s *WitnessStore) PublicKey() string { return s.key }

// Checkpoints returns the accepted checkpoints, oldest first.
func (s *WitnessStore) Checkpoints() []Checkpoint { return append([]Checkpoint(nil), s.cps...) }

// Latest returns the newest accepted checkpoint.
func (s *WitnessStore) Latest() (Checkpoint, bool) {
	if len(s.cps) == 0 {
		return Checkpoint{}, false
	}
	return s.cps[len(s.cps)-1], true
}

// Fetch asks the log's host for its record lines after seq (the host runs
// RecordsSince). The caller closes what it returns.
type Fetch func(since uint64) (io.ReadCloser, error)

// WitnessResult is an accepted checkpoint.
type WitnessResult struct {
	Checkpoint Checkpoint
	// Previous is the checkpoint it was checked against; zero on the
	// first contact, when it is taken on trust.
	Previous Checkpoint
	First    bool
	// Records is how many records were replayed to check it.
	Records uint64
}

// Witness checks note, the log's newest signed checkpoint, against what
// the store holds, fetching the records it needs, and stores it when it
// extends the witnessed history. When it does not, the store is left as
// it was, the checkpoint is kept in rejected.jsonl as evidence, and the
// error is a *WitnessError naming the first record that is not what was
// witnessed: a log that went backwards, forked, or lost records after a
// witnessed checkpoint.
func (s *WitnessStore) Witness(note []byte, fetch Fetch) (WitnessResult, error) {
	res, err := s.witness(note, fetch)
	var we *WitnessError
	if errors.As(err, &we) {
		if rerr := s.reject(note, we); rerr != nil {
			return res, errors.Join(err, rerr)
		}
	}
	return res, err
}

func (s *WitnessStore) witness(note []byte, fetch Fetch) (WitnessResult, error) {
	cp, err := OpenCheckpoint(note, s.key)
	if err != nil {
		return WitnessResult{}, &WitnessError{Kind: WitnessBadSignature, Reason: err.Error()}
	}
	res := WitnessResult{Checkpoint: cp}
	latest, ok := s.Latest()
	if !ok {
		res.First = true
		s.base = cp.Seq
		if err := s.appendHashes([][sha256.Size]byte{cp.Hash}); err != nil {
			return res, err
		}
		return res, s.appendCheckpoint(cp)
	}
	res.Previous = latest
	switch {
	case cp.Seq == latest.Seq && cp.Hash == latest.Hash:
		return res, nil // nothing new
	case cp.Seq > latest.Seq:
		var hs [][sha256.Size]byte
		err := s.fetchAnd(fetch, latest.Seq, func(r io.Reader) error {
			return Extends(latest, cp, r, func(_ uint64, h *[sha256.Size]byte) error {
				hs = append(hs, *h)
				return nil
			})
		})
		var we *WitnessError
		if errors.As(err, &we) && (we.Kind == WitnessFork || we.Kind == WitnessBadRecords) {
			return res, s.locate(fetch, cp, we)
		}
		if err != nil {
			return res, err
		}
		res.Records = uint64(len(hs))
		if err := s.appendHashes(hs); err != nil {
			return res, err
		}
		return res, s.appendCheckpoint(cp)
	}
	// The checkpoint is at or before the witnessed head.
	if cp.Seq >= s.base {
		h, err := s.hashAt(cp.Seq)
		if err != nil {
			return res, err
		}
		if h == cp.Hash {
			return res, &WitnessError{Kind: WitnessRollback, FirstBad: cp.Seq + 1,
				Reason: fmt.Sprintf("the log went back from seq %d, witnessed, to seq %d: records %d-%d were lost (a cut tail, or a restored backup)", latest.Seq, cp.Seq, cp.Seq+1, latest.Seq)}
		}
	} else {
		return res, &WitnessError{Kind: WitnessRollback, FirstBad: cp.Seq + 1,
			Reason: fmt.Sprintf("the log went back from seq %d, witnessed, to seq %d, before the first witnessed checkpoint (seq %d)", latest.Seq, cp.Seq, s.base)}
	}
	return res, s.locate(fetch, cp, &WitnessError{Kind: WitnessFork, FirstBad: cp.Seq, Reason: fmt.Sprintf("the checkpoint for seq %d names another hash than the one witnessed", cp.Seq)})
}

func (s *WitnessStore) fetchAnd(fetch Fetch, since uint64, fn func(io.Reader) error) error {
	rc, err := fetch(since)
	if err != nil {
		return fmt.Errorf("witness: fetch records after seq %d: %w", since, err)
	}
	defer rc.Close()
	return fn(rc)
}

// locate finds the first record that differs from the witnessed history,
// replaying the host's records from the first witnessed checkpoint against
// the stored hashes. cause is what was found wrong first; it is returned
// refined with the seq located.
func (s *WitnessStore) locate(fetch Fetch, cp Checkpoint, cause *WitnessError) error {
	latest, _ := s.Latest()
	prev, err := s.hashAt(s.base)
	if err != nil {
		return err
	}
	var first uint64
	var kind WitnessKind
	var reason string
	err = s.fetchAnd(fetch, s.base, func(r io.Reader) error {
		rr := newRecordReader(r)
		hashes := bufio.NewReaderSize(io.NewSectionReader(s.hashes, sha256.Size, int64(latest.Seq-s.base)*sha256.Size), 64<<10)
		for seq := s.base + 1; seq <= latest.Seq; seq++ {
			h, why, err := rr.next()
			if err == io.EOF {
				first, kind = seq, WitnessRollback
				reason = fmt.Sprintf("the log now ends at seq %d; records %d-%d, witnessed, are gone", seq-1, seq, latest.Seq)
				return nil
			}
			if err != nil {
				return fmt.Errorf("witness: read records: %w", err)
			}
			var want [sha256.Size]byte
			if _, err := io.ReadFull(hashes, want[:]); err != nil {
				return fmt.Errorf("read %s: %w", witnessHashes, err)
			}
			if why != "" || h.seq != seq || h.hash == nil {
				first, kind = seq, WitnessFork
				reason = fmt.Sprintf("where record %d was witnessed, the log now holds something else", seq)
				if why != "" {
					reason += " (" + why + ")"
				} else if h.seq != seq {
					reason += fmt.Sprintf(" (seq %d)", h.seq)
				}
				return nil
			}
			got := rr.lh.of(&prev, h.content)
			if got != want {
				first, kind = seq, WitnessFork
				reason = fmt.Sprintf("record %d differs from the one witnessed (the log was rewritten from here: a restored backup that went on, a forked log, or a rewritten tail)", seq)
				return nil
			}
			prev = got
		}
		return nil
	})
	if err != nil {
		return errors.Join(cause, err)
	}
	if first == 0 {
		// Every witnessed record is still there as witnessed: the fault
		// is in what the host claims beyond them.
		return cause
	}
	return &WitnessError{Kind: kind, FirstBad: first, Reason: reason + fmt.Sprintf("; the host's checkpoint is at seq %d", cp.Seq)}
}

func (s *WitnessStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *WitnessStore) appendHashes(hs [][sha256.Size]byte) error {
	if len(hs) == 0 {
		return nil
	}
	fi, err := s.hashes.Stat()
	if err != nil {
		return fmt.Errorf("witness store: %w", err)
	}
	buf := make([]byte, 0, len(hs)*sha256.Size)
	for i := range hs {
		buf = append(buf, hs[i][:]...)
	}
	if _, err := s.hashes.WriteAt(buf, fi.Size()); err != nil {
		return fmt.Errorf("witness store: write %s: %w", witnessHashes, err)
	}
	if err := s.hashes.Sync(); err != nil {
		return fmt.Errorf("witness store: sync %s: %w", witnessHashes, err)
	}
	return nil
}

func (s *WitnessStore) appendCheckpoint(cp Checkpoint) error {
	b, _ := json.Marshal(witnessLine{Received: s.now().UTC().Format(time.RFC3339Nano), Seq: cp.Seq, H: cp.HashHex(), Note: string(cp.Note)})
	if err := appendSync(filepath.Join(s.dir, witnessCPs), append(b, '\n')); err != nil {
		return fmt.Errorf("witness store: %w", err)
	}
	s.cps = append(s.cps, cp)
	return nil
}

func (s *WitnessStore) reject(note []byte, we *WitnessError) error {
	b, _ := json.Marshal(rejectedLine{Received: s.now().UTC().Format(time.RFC3339Nano), Kind: we.Kind, FirstBad: we.FirstBad, Reason: we.Reason, Note: string(note)})
	if err := appendSync(filepath.Join(s.dir, witnessRejected), append(b, '\n')); err != nil {
		return fmt.Errorf("witness store: keep the rejected checkpoint: %w", err)
	}
	return nil
}

// Rejected returns what the store refused, oldest first.
func (s *WitnessStore) Rejected() ([]WitnessError, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, witnessRejected))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []WitnessError
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rl rejectedLine
		if len(line) == 0 || json.Unmarshal(line, &rl) != nil {
			continue
		}
		out = append(out, WitnessError{Kind: rl.Kind, FirstBad: rl.FirstBad, Reason: rl.Reason})
	}
	return out, nil
}

// appendSync appends b to path with one write and fsyncs it.
func appendSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
