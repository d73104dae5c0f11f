package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// VerifyError names the first record that breaks the chain, and why.
type VerifyError struct {
	Seq    uint64 // the record's seq, or the seq expected at that position
	File   string // base name of the file
	Line   int    // 1-based line in File; 0 when the problem is the log's end
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: seq %d: %s", e.File, e.Line, e.Seq, e.Reason)
	}
	return fmt.Sprintf("%s: seq %d: %s", e.File, e.Seq, e.Reason)
}

// Head is the newest record of a log: what a checkpoint pins.
type Head struct {
	Seq  uint64
	MAC  string // full hex MAC, or a prefix (at least 16 hex) in a parsed checkpoint
	File string // base name of the file holding it ("" in a parsed checkpoint)
	// Hash is the head's h (64 hex), "" when the head is a format-1
	// record or in a parsed checkpoint.
	Hash string
}

// checkpointHex is how much of the MAC a checkpoint carries: 64 bits, so a
// forger needs about 2^64 tries to match it with a rewritten log.
const checkpointHex = 16

// Checkpoint is the legacy checkpoint line, the first line of the message
// the daemon sends to the owner's chat (Log.CheckpointMessage); verify
// accepts it back with --checkpoint.
func (h Head) Checkpoint() string {
	m := h.MAC
	if len(m) > checkpointHex {
		m = m[:checkpointHex]
	}
	return fmt.Sprintf("audit checkpoint seq=%d mac=%s", h.Seq, m)
}

var checkpointRE = lazyre.New(`seq=([0-9]{1,20}) mac=([0-9a-f]{16,64})(?:[^0-9a-f]|$)`)

// ParseCheckpoint reads a checkpoint from text that contains one, such as
// the whole chat message pasted back.
func ParseCheckpoint(s string) (Head, error) {
	ms := checkpointRE().FindAllStringSubmatch(s, 2)
	if len(ms) != 1 {
		return Head{}, errors.New(`not a checkpoint: want text containing "seq=N mac=HEX" (16 to 64 lower-case hex), as sent to the chat`)
	}
	seq, err := strconv.ParseUint(ms[0][1], 10, 64)
	if err != nil || seq == 0 {
		return Head{}, errors.New("not a checkpoint: seq must be a positive number")
	}
	return Head{Seq: seq, MAC: ms[0][2]}, nil
}

// Summary describes a verified log.
type Summary struct {
	Files        int
	Records      uint64 // records in the chain, including init, rotate and recovery
	Head         Head
	Recoveries   int  // recovery records (failed or torn writes, each explained)
	Checkpoints  int  // legacy checkpoints that matched
	Signed       int  // signed checkpoints that matched
	Unchecked    int  // checkpoints naming archived records, not in the files given
	MACsVerified bool // false when verified without a key: links and hashes only
	StateChecked bool // the key state agreed with the log (VerifyDir)
	// HashedFrom is the first format-2 record, where the unkeyed hash
	// chain starts (0: none; 1 for a log begun in format 2).
	HashedFrom uint64
	// Start is the first seq verified: 1, or N+1 for a log whose records
	// up to N were archived (an archive record in the log accounts for
	// them).
	Start uint64
	// Archives is how many archive records were checked against the chain.
	Archives int
}

func (s Summary) String() string {
	var b strings.Builder
	switch {
	case s.MACsVerified:
		b.WriteString("ok: ")
	case s.Signed > 0:
		b.WriteString("links and hashes ok, signed checkpoints match, MACS NOT VERIFIED (no key; pass --key K0): ")
	case s.HashedFrom > 0:
		b.WriteString("links and hashes ok, MACS NOT VERIFIED (no key; pass --key K0): ")
	default:
		b.WriteString("links ok, MACS NOT VERIFIED (no key; pass --key K0): ")
	}
	fmt.Fprintf(&b, "%d records in %d file(s), head seq=%d mac=%.16s", s.Records, s.Files, s.Head.Seq, s.Head.MAC)
	if s.Start > 1 {
		fmt.Fprintf(&b, ", starts at seq %d (records 1-%d archived)", s.Start, s.Start-1)
	}
	if s.Recoveries > 0 {
		fmt.Fprintf(&b, ", %d recovery record(s)", s.Recoveries)
	}
	if s.Checkpoints > 0 {
		fmt.Fprintf(&b, ", %d checkpoint(s) matched", s.Checkpoints)
	}
	if s.Signed > 0 {
		fmt.Fprintf(&b, ", %d signed checkpoint(s) matched", s.Signed)
	}
	if s.Unchecked > 0 {
		fmt.Fprintf(&b, ", %d checkpoint(s) name archived records (pass the archived files to check them)", s.Unchecked)
	}
	if s.StateChecked {
		b.WriteString(", key state matches")
	}
	return b.String()
}

// VerifyOptions adjust VerifyFiles and VerifyDirWith.
type VerifyOptions struct {
	// Key is K0: with it every MAC is checked; without, the structure
	// (seq, prev links, torn-write recovery) and the unkeyed hash chain.
	Key []byte
	// Checkpoints are legacy checkpoints (seq and a MAC prefix).
	Checkpoints []Head
	// Signed are signed checkpoints, already opened with the public key
	// (OpenCheckpoint): each must match the h of the record at its seq.
	Signed []Checkpoint
	// PublicKey, when set, also checks the signed checkpoint in each
	// archive record.
	PublicKey string
	// Progress, when set, is called now and then with the bytes read so
	// far and the bytes to read in all.
	Progress func(done, total int64)

	// Archived are archived files (ListArchive) that VerifyDirWith reads
	// before the directory's own, to verify the whole history.
	Archived []string

	// fileEnds, when set, receives where the chain stood at the end of
	// each file (Archive).
	fileEnds *[]fileEnd
}

// Verify checks the chain in files (numbered audit files are put in order;
// other names keep the order given), from seq 1 to the end. With k0 it checks
// every MAC; with a nil k0 only the structure (seq, prev links, torn-write
// recovery) and the unkeyed hash chain, and the Summary says so. It streams:
// memory does not grow with the log. A broken chain is a *VerifyError naming
// the first bad record.
func Verify(files []string, k0 []byte, checkpoints []Head) (Summary, error) {
	return VerifyFiles(files, VerifyOptions{Key: k0, Checkpoints: checkpoints})
}

// VerifyFiles is Verify with options. Files may include archived ones
// (audit-NNNNNN.jsonl.zst), which it decompresses as it reads. A log whose
// first file starts after seq 1 verifies when an archive record in it names
// the record just before, with that record's mac and h: its records up to
// there were archived, not removed.
func VerifyFiles(files []string, o VerifyOptions) (Summary, error) {
	sum, _, err := verify(sortFiles(files), &o, 0)
	return sum, err
}

// captured is the chain as it stood after one chosen seq.
type captured struct {
	ok  bool
	mac string
	key []byte
}

// fileEnd is where the chain stood at the end of a file: what an archive
// record names.
type fileEnd struct {
	seq    uint64
	mac    [macHex]byte
	hash   [sha256.Size]byte
	hashed bool
}

// anchor is the start of a log whose earlier files were archived: its
// first record, taken on trust until an archive record names the record
// before it.
type anchor struct {
	seq      uint64 // the first record's seq - 1: the last archived record
	prev     []byte // the first record's prev: the archived record's mac
	content  []byte // the first record's T (format 2), to check its h
	hash     []byte // the first record's h field (hex), nil in format 1
	resolved bool
}

// checkpointAt is a checkpoint of either kind, for the scan.
type checkpointAt struct {
	seq    uint64
	mac    string // legacy: a MAC prefix
	hash   *[sha256.Size]byte
	signed bool
}

func verify(files []string, o *VerifyOptions, captureSeq uint64) (Summary, captured, error) {
	var sum Summary
	var cap captured
	k0 := o.Key
	if len(files) == 0 {
		return sum, cap, errors.New("no audit files to verify (pass the files, or check audit.dir)")
	}
	if k0 != nil && len(k0) != keySize {
		return sum, cap, fmt.Errorf("%w: want %d bytes, got %d", ErrKeySize, keySize, len(k0))
	}
	var cps []checkpointAt
	for _, h := range o.Checkpoints {
		cps = append(cps, checkpointAt{seq: h.Seq, mac: h.MAC})
	}
	for i := range o.Signed {
		cps = append(cps, checkpointAt{seq: o.Signed[i].Seq, hash: &o.Signed[i].Hash, signed: true})
	}
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].seq < cps[j].seq })
	for i := 1; i < len(cps); i++ {
		a, b := cps[i-1], cps[i]
		if a.seq == b.seq && a.hash != nil && b.hash != nil && *a.hash != *b.hash {
			return sum, cap, &VerifyError{Seq: a.seq, File: filepath.Base(files[0]),
				Reason: fmt.Sprintf("two signed checkpoints for seq %d name different hashes (%.16x…, %.16x…): the log forked, and its checkpoint key signed both", a.seq, a.hash[:], b.hash[:])}
		}
	}
	next := 0

	c := newChain(k0)
	defer func() {
		if c.s != nil {
			c.s.zero() // the anchor may have replaced the first sealer
		}
	}()
	sum.MACsVerified = k0 != nil
	sum.Files = len(files)
	sum.Start = 1

	var total, done int64
	if o.Progress != nil {
		for _, p := range files {
			if fi, err := os.Stat(p); err == nil {
				total += fi.Size()
			}
		}
		o.Progress(0, total)
	}

	var ends []fileEnd
	var anc *anchor
	c.onArchive = func(h *header) string {
		r := checkArchive(h, ends, anc, c.seq, o.PublicKey)
		if r == "" {
			sum.Archives++
		}
		return r
	}
	for fi, path := range files {
		name := filepath.Base(path)
		if fi == 0 {
			first, err := firstLine(path)
			if err != nil {
				return sum, cap, fmt.Errorf("verify: %w", err)
			}
			if anc = startAnchor(first, c, k0); anc != nil {
				sum.Start = anc.seq + 1
				for next < len(cps) && cps[next].seq <= anc.seq {
					sum.Unchecked++
					next++
				}
			}
		}
		var wrap func(io.Reader) io.Reader
		if o.Progress != nil {
			wrap = func(r io.Reader) io.Reader { return &progressReader{r: r, done: &done, total: total, fn: o.Progress} }
		}
		in, closeFn, err := openLog(path, wrap)
		if err != nil {
			return sum, cap, fmt.Errorf("verify: %w", err)
		}
		// A buffer that stays in a core's L2 cache: the kernel copies
		// into it and SHA-256 reads it back while it is still there.
		verr, err := scan(in, 0, name, verifyBuffer, c, func(end int64, line int) *VerifyError {
			sum.Records++
			if c.seq == captureSeq {
				cap.ok, cap.mac = true, string(c.mac[:])
				if c.s != nil {
					cap.key = append([]byte(nil), c.s.key[:]...)
				}
			}
			for next < len(cps) && cps[next].seq == c.seq {
				cp := cps[next]
				switch {
				case cp.signed && !c.hashed:
					return &VerifyError{Seq: c.seq, File: name, Line: line,
						Reason: fmt.Sprintf("a signed checkpoint names seq %d, a format-1 record without h (it cannot be from this log)", cp.seq)}
				case cp.signed && c.hash != *cp.hash:
					return &VerifyError{Seq: c.seq, File: name, Line: line,
						Reason: fmt.Sprintf("does not match signed checkpoint seq=%d h=%.16x…: the log was rewritten up to here, or forked", cp.seq, cp.hash[:])}
				case cp.signed:
					sum.Signed++
				case !strings.HasPrefix(string(c.mac[:]), cp.mac):
					return &VerifyError{Seq: c.seq, File: name, Line: line,
						Reason: fmt.Sprintf("does not match checkpoint seq=%d mac=%s: the log was rewritten up to here", cp.seq, cp.mac)}
				default:
					sum.Checkpoints++
				}
				next++
			}
			return nil
		})
		closeFn()
		if err != nil {
			return sum, cap, fmt.Errorf("verify: read %s: %w", name, err)
		}
		if verr != nil {
			return sum, cap, verr
		}
		c.endFile()
		if !c.suspect() && c.seq > 0 {
			ends = append(ends, fileEnd{seq: c.seq, mac: c.mac, hash: c.hash, hashed: c.hashed})
		}
		if o.fileEnds != nil {
			*o.fileEnds = ends
		}
	}
	if e := c.finish(); e != nil {
		if e.Reason == reasonIncomplete && c.regionParts == 1 && e.File == filepath.Base(files[len(files)-1]) {
			e.Reason = "torn last line with no recovery record after it (a crash or full disk: start relay once to record the recovery; otherwise the tail was cut)"
		}
		return sum, cap, e
	}
	sum.Head = Head{Seq: c.seq, MAC: string(c.mac[:]), File: c.lastFile}
	if c.hashed {
		sum.Head.Hash = hex.EncodeToString(c.hash[:])
	}
	sum.Recoveries = c.recoveries
	sum.HashedFrom = c.firstHashed
	if c.seq == 0 {
		return sum, cap, &VerifyError{Seq: 1, File: filepath.Base(files[0]), Reason: "the log holds no records"}
	}
	if anc != nil && !anc.resolved {
		return sum, cap, &VerifyError{Seq: anc.seq + 1, File: filepath.Base(files[0]), Line: 1,
			Reason: fmt.Sprintf("the log starts at seq %d and no archive record names seq %d: records 1-%d deleted (if they were archived, pass the archived files too)", anc.seq+1, anc.seq, anc.seq)}
	}
	if next < len(cps) {
		return sum, cap, &VerifyError{Seq: cps[next].seq, File: c.lastFile,
			Reason: fmt.Sprintf("truncated after checkpoint: the checkpoint names seq %d but the log ends at seq %d", cps[next].seq, c.seq)}
	}
	return sum, cap, nil
}

// startAnchor looks at the first line of a log's first file. When it is a
// rotate record after seq 1, the files before it were archived, or
// removed: the chain starts there on trust, with K(seq-1) derived from k0,
// and verify fails unless an archive record later names the record before
// it.
func startAnchor(line []byte, c *chain, k0 []byte) *anchor {
	h, reason := parseHeader(line)
	if reason != "" || h.seq <= 1 || string(h.typ) != "rotate" || len(h.prev) != macHex {
		return nil
	}
	a := &anchor{seq: h.seq - 1, prev: append([]byte(nil), h.prev...)}
	c.seq = a.seq
	copy(c.mac[:], h.prev)
	if h.hash != nil {
		a.content = append([]byte(nil), h.content...)
		a.hash = append([]byte(nil), h.hash...)
		c.trustHash = true
	}
	if c.s != nil {
		s := newSealer(k0)
		for i := uint64(0); i < a.seq; i++ {
			s.next()
		}
		c.s.zero()
		c.s = s
	}
	return a
}

// checkArchive checks an archive record against the chain: the record it
// names must be the end of a file seen so far, or the record just before
// the log's first (anc), with the same mac and h; or lie before anything
// these files hold. It returns why not, or "".
func checkArchive(h *header, ends []fileEnd, anc *anchor, headSeq uint64, publicKey string) string {
	obj := make([]byte, 0, len(h.content)+1)
	obj = append(append(obj, h.content...), '}')
	var r struct {
		Archived *Archived `json:"archived"`
	}
	if err := json.Unmarshal(obj, &r); err != nil || r.Archived == nil {
		return "malformed archive record: no archived field"
	}
	a := r.Archived
	if reason := a.check(h.seq); reason != "" {
		return "malformed archive record: " + reason
	}
	if a.Note != "" && publicKey != "" {
		cp, err := OpenCheckpoint([]byte(a.Note), publicKey)
		if err != nil {
			return "archive record's signed checkpoint: " + err.Error()
		}
		if cp.Seq != a.Seq || cp.HashHex() != a.Hash {
			return fmt.Sprintf("archive record's signed checkpoint names seq %d h=%.16s…, not the archived seq %d", cp.Seq, cp.HashHex(), a.Seq)
		}
	}
	i := sort.Search(len(ends), func(i int) bool { return ends[i].seq >= a.Seq })
	if i < len(ends) && ends[i].seq == a.Seq {
		e := ends[i]
		wantHash := ""
		if e.hashed {
			wantHash = hex.EncodeToString(e.hash[:])
		}
		if string(e.mac[:]) != a.MAC || wantHash != a.Hash {
			return fmt.Sprintf("archive record names seq %d with a mac or h that differs from the log's record %d (the archived files were changed)", a.Seq, a.Seq)
		}
		return ""
	}
	if anc != nil && a.Seq == anc.seq {
		if a.MAC != string(anc.prev) {
			return fmt.Sprintf("archive record names seq %d with mac %.16s…, but the log's first record links to %.16s…", a.Seq, a.MAC, anc.prev)
		}
		if anc.hash != nil {
			var hp [sha256.Size]byte
			if a.Hash != "" {
				hex.Decode(hp[:], []byte(a.Hash))
			}
			got := newLinkHash().of(&hp, anc.content)
			if hex.EncodeToString(got[:]) != string(anc.hash) {
				return fmt.Sprintf("archive record names seq %d with an h that the log's first record does not chain from", a.Seq)
			}
		}
		anc.resolved = true
		return ""
	}
	if anc != nil && a.Seq < anc.seq {
		return "" // archived before the files given begin: nothing to check it against
	}
	return fmt.Sprintf("archive record names seq %d, which does not end a file of this log", a.Seq)
}

// check validates an Archived's fields for a record at seq.
func (a *Archived) check(seq uint64) string {
	switch {
	case a.Seq == 0 || a.Seq >= seq:
		return fmt.Sprintf("archived seq %d is not before the record", a.Seq)
	case len(a.MAC) != macHex || !isHex([]byte(a.MAC)):
		return "archived mac is not 64 lower-case hex"
	case a.Hash != "" && (len(a.Hash) != macHex || !isHex([]byte(a.Hash))):
		return "archived h is not 64 lower-case hex"
	case len(a.Files) == 0:
		return "no files named"
	}
	last := uint64(0)
	for _, f := range a.Files {
		if !fileName().MatchString(f.Name) || f.First == 0 || f.First > f.Last || f.First <= last || f.Bytes <= 0 || len(f.SHA256) != macHex || !isHex([]byte(f.SHA256)) {
			return fmt.Sprintf("bad file entry %q", f.Name)
		}
		last = f.Last
	}
	if last != a.Seq {
		return fmt.Sprintf("the files end at seq %d, not the archived seq %d", last, a.Seq)
	}
	return ""
}

// VerifyDir verifies every file in a log directory, and also checks the key
// state against the log: a state ahead of the log means records were cut
// from the tail, and a state whose key or MAC differs means the state or the
// log was replaced.
func VerifyDir(dir string, k0 []byte, checkpoints []Head) (Summary, error) {
	return VerifyDirWith(dir, VerifyOptions{Key: k0, Checkpoints: checkpoints})
}

// VerifyDirWith is VerifyDir with options.
func VerifyDirWith(dir string, o VerifyOptions) (Summary, error) {
	files, err := ListFiles(dir)
	if err != nil {
		return Summary{}, err
	}
	if len(o.Archived) > 0 {
		files = sortFiles(append(append([]string(nil), o.Archived...), files...))
	}
	st, err := readState(dir)
	if err != nil {
		sum, _, verr := verify(files, &o, 0)
		if verr != nil {
			return sum, verr
		}
		return sum, &VerifyError{Seq: sum.Head.Seq, File: sum.Head.File, Reason: "the key state is missing, so a cut tail cannot be ruled out (" + err.Error() + ")"}
	}
	defer st.zero()
	sum, cap, err := verify(files, &o, st.Seq)
	if err != nil {
		return sum, err
	}
	defer clear(cap.key)
	switch {
	case st.Seq > sum.Head.Seq:
		return sum, &VerifyError{Seq: st.Seq, File: st.File,
			Reason: fmt.Sprintf("truncated: the key state is at seq %d but the log ends at seq %d (records were cut from the tail)", st.Seq, sum.Head.Seq)}
	case !cap.ok || cap.mac != st.MAC || (cap.key != nil && !bytes.Equal(cap.key, st.Key)):
		return sum, &VerifyError{Seq: st.Seq, File: st.File,
			Reason: "the key state does not match the log at this seq (the state was replaced, or the log rewritten from here)"}
	}
	sum.StateChecked = true
	return sum, nil
}

// verifyBuffer is verify's read size.
const verifyBuffer = 256 << 10

const reasonIncomplete = "incomplete line (a torn write, or longer than the record limit)"

// scan feeds the lines of r, which starts at offset off of its file, into
// c. accepted is called after each record that extends the chain, with the
// offset just past it and its line number; an error it returns stops the
// scan.
func scan(r io.Reader, off int64, name string, bufSize int, c *chain, accepted func(end int64, line int) *VerifyError) (*VerifyError, error) {
	br := bufio.NewReaderSize(r, bufSize)
	lineNo := 1
	pos := off
	for {
		s, err := br.ReadSlice('\n')
		if len(s) > 0 {
			pos += int64(len(s))
			ok, verr := c.feed(s, name, lineNo)
			if verr != nil {
				return verr, nil
			}
			if ok && accepted != nil {
				if verr := accepted(pos, lineNo); verr != nil {
					return verr, nil
				}
			}
			if s[len(s)-1] == '\n' {
				lineNo++
			}
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return nil, nil
		default:
			return nil, err
		}
	}
}

func sectionFrom(f io.ReaderAt, off int64) io.Reader {
	return io.NewSectionReader(f, off, math.MaxInt64-off)
}
