package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
)

// chain is the verifier's state machine. Verify, Open and the writer's
// recovery all run it, so the writer can only produce what verify accepts.
//
// Lines are fed in log order. A line that does not extend the chain opens
// a suspect region; the region is forgiven only when the next valid record,
// in the same file, is a recovery record naming the region's length and
// SHA-256 (with or without one separating newline). Anything else makes the
// first suspect line the first bad record.
type chain struct {
	s   *sealer // nil: structure only, MACs not checked
	seq uint64  // last accepted seq (0: none yet)
	mac [macHex]byte
	// hash is the head's h when hashed (a format-2 head), else zero: the
	// hprev of the next record. Once hashed, every later record must be
	// format 2.
	hash   [sha256.Size]byte
	hashed bool
	lh     *linkHash
	// cand is the h that check computed for the record it passed, for
	// accept to adopt.
	cand [sha256.Size]byte
	// trustHash makes the next record's h field be taken as given instead
	// of recomputed: verify sets it for the first record of a log whose
	// earlier files were archived, whose hprev is only known later, from
	// the archive record (see anchor).
	trustHash bool
	// firstHashed is the first format-2 record's seq (0: none yet).
	firstHashed uint64
	// onArchive, when set (by verify), checks an archive record that
	// otherwise extends the chain, and returns why it does not fit, or "".
	onArchive func(h *header) string
	// prevFile is where the last accepted record was.
	lastFile string
	lastLine int

	// Suspect region, from the first line that did not extend the chain.
	bad         *VerifyError // first bad line; nil when not suspect
	badAhead    bool         // bad line's seq was ahead of the expected one
	wantSeq     uint64       // seq expected at the bad line
	seenWant    bool         // a later line claims wantSeq: reordered
	regionLen   int64
	regionParts int // lines and fragments in the region
	regionHash  hash.Hash
	regionLast  int  // last byte of the region held back, -1 if none
	sealed      bool // region crossed a file end: no recovery can match it
	// foreign is set when the region holds a complete, well-framed record
	// that does not extend the chain. Torn writes only ever leave prefixes
	// of lines, so such a region is not a crash's leftover and no recovery
	// record can excuse it.
	foreign bool

	recoveries int

	// digits is the decimal form of digitsSeq, kept for extend, which
	// would otherwise format the expected seq for every record.
	digits    []byte
	digitsSeq uint64
	digitsBuf [20]byte
}

func newChain(k []byte) *chain {
	c := &chain{regionHash: sha256.New(), regionLast: -1, lh: newLinkHash()}
	if k != nil {
		c.s = newSealer(k)
	}
	return c
}

func (c *chain) prevHex() []byte {
	if c.seq == 0 {
		return nil
	}
	return c.mac[:]
}

// check reports why h does not extend the chain, or "" if it does. For a
// format-2 record it leaves the h it computed in cand.
func (c *chain) check(h *header) string {
	want := c.seq + 1
	switch {
	case h.seq > want:
		return fmt.Sprintf("seq %d where %d was expected", h.seq, want)
	case h.seq < want:
		return fmt.Sprintf("seq %d repeats or goes backwards after %d (replayed or reordered)", h.seq, c.seq)
	case !bytes.Equal(h.prev, c.prevHex()):
		return "prev does not match the previous record's mac (records spliced from another chain)"
	}
	if h.hash == nil {
		if c.hashed {
			return "a format-1 record (no h) after format-2 records: records were rewritten without the hash chain"
		}
		if c.s != nil {
			if m := c.s.mac(h.content, closeBrace); !macMatches(&m, h.mac) {
				return "bad mac: the record was edited, forged with a later key, or comes from another log"
			}
		}
		if c.onArchive != nil && string(h.typ) == "archive" {
			return c.onArchive(h)
		}
		return ""
	}
	if c.trustHash {
		hex.Decode(c.cand[:], h.hash)
	} else {
		c.cand = c.lh.of(&c.hash, h.content)
	}
	if c.s != nil {
		if m := c.s.mac(c.cand[:], nil); !macMatches(&m, h.mac) {
			return "bad mac: the record was edited, forged with a later key, or comes from another log"
		}
	}
	if !macMatches(&c.cand, h.hash) {
		return "h does not match the record and the previous record's h (the record was edited, or records before it removed or changed)"
	}
	if c.onArchive != nil && string(h.typ) == "archive" {
		return c.onArchive(h)
	}
	return ""
}

// accept makes h the new head and moves the key on. For a format-2 record
// hv is its h; nil for format 1.
func (c *chain) accept(h *header, file string, line int, hv *[sha256.Size]byte) {
	c.seq = h.seq
	copy(c.mac[:], h.mac)
	c.lastFile, c.lastLine = file, line
	if hv != nil {
		c.hash, c.hashed = *hv, true
		if c.firstHashed == 0 {
			c.firstHashed = h.seq
		}
	} else {
		c.hash, c.hashed = [sha256.Size]byte{}, false
	}
	c.trustHash = false
	if c.s != nil {
		c.s.next()
	}
}

// acceptChecked is accept after check passed h.
func (c *chain) acceptChecked(h *header, file string, line int) {
	if h.hash == nil {
		c.accept(h, file, line, nil)
		return
	}
	c.accept(h, file, line, &c.cand)
}

func (c *chain) suspect() bool { return c.bad != nil }

func (c *chain) addRegion(b []byte) {
	if len(b) == 0 {
		return
	}
	if c.regionLast >= 0 {
		c.regionHash.Write([]byte{byte(c.regionLast)})
	}
	c.regionHash.Write(b[:len(b)-1])
	c.regionLast = int(b[len(b)-1])
	c.regionLen += int64(len(b))
	c.regionParts++
}

func (c *chain) resetRegion() {
	c.bad, c.badAhead, c.seenWant, c.sealed, c.foreign = nil, false, false, false, false
	c.regionLen, c.regionLast, c.regionParts = 0, -1, 0
	c.regionHash.Reset()
}

// regionDigest returns the region's length and SHA-256, as the writer names
// them in a recovery record, and whether the region ends in a newline.
func (c *chain) regionDigest() (n int64, sum string, endsNL bool) {
	h := c.regionHash
	if c.regionLast >= 0 {
		h.Write([]byte{byte(c.regionLast)})
		endsNL = c.regionLast == '\n'
		c.regionLast = -1
	}
	return c.regionLen, hex.EncodeToString(h.Sum(nil)), endsNL
}

// matches reports whether a recovery record naming n bytes with digest sum
// covers the region: the region is those bytes, or those bytes and "\n".
func (c *chain) matches(n int64, sum string) bool {
	if c.sealed || c.foreign || n <= 0 {
		return false
	}
	if c.regionLast == '\n' && n == c.regionLen-1 && hex.EncodeToString(c.regionHash.Sum(nil)) == sum {
		return true
	}
	if n != c.regionLen {
		return false
	}
	// Fold the held-back byte in; the caller stops at a mismatch anyway.
	if c.regionLast >= 0 {
		c.regionHash.Write([]byte{byte(c.regionLast)})
		c.regionLast = -1
	}
	return hex.EncodeToString(c.regionHash.Sum(nil)) == sum
}

// feed consumes one line (with its "\n", or a final unterminated fragment).
// It returns accepted when the line became the head, and a non-nil error
// when the log is definitely broken (verification stops there).
func (c *chain) feed(line []byte, file string, lineNo int) (accepted bool, err *VerifyError) {
	if !c.suspect() && c.extend(line, file, lineNo) {
		return true, nil
	}
	return c.feedFull(line, file, lineNo)
}

// feedFull is feed without the fast path.
func (c *chain) feedFull(line []byte, file string, lineNo int) (accepted bool, err *VerifyError) {
	h, reason := parseHeader(line)
	framed := reason == ""
	if framed {
		reason = c.check(&h)
	}
	isRecovery := framed && bytes.Equal(h.typ, []byte("recovery"))
	if !c.suspect() {
		if reason == "" {
			if isRecovery {
				if n, _, perr := recoveryTorn(&h); perr != nil {
					return false, &VerifyError{Seq: h.seq, File: file, Line: lineNo, Reason: perr.Error()}
				} else if n > 0 {
					return false, &VerifyError{Seq: h.seq, File: file, Line: lineNo,
						Reason: fmt.Sprintf("recovery record names %d torn bytes but none precede it (the torn line was removed)", n)}
				}
				c.recoveries++
			}
			c.acceptChecked(&h, file, lineNo)
			return true, nil
		}
		seq := c.seq + 1
		if framed {
			seq = h.seq
		}
		c.bad = &VerifyError{Seq: seq, File: file, Line: lineNo, Reason: reason}
		c.wantSeq = c.seq + 1
		c.badAhead = framed && h.seq > c.wantSeq
		c.foreign = framed
		c.addRegion(line)
		return false, nil
	}
	if reason == "" {
		if isRecovery {
			n, sum, perr := recoveryTorn(&h)
			if perr == nil && c.matches(n, sum) {
				c.recoveries++
				c.resetRegion()
				c.acceptChecked(&h, file, lineNo)
				return true, nil
			}
			if perr == nil && n > 0 && !c.foreign && !c.sealed {
				e := *c.bad
				e.Reason = fmt.Sprintf("these bytes do not match the torn_bytes and torn_sha256 of the recovery record (seq %d) after them: the torn bytes were changed", h.seq)
				return false, &e
			}
		}
		// A valid record after bad bytes that no recovery explains: the
		// expected record exists, just not where it should be.
		c.seenWant = true
		return false, c.finish()
	}
	if framed {
		c.foreign = true
		if h.seq == c.wantSeq {
			c.seenWant = true
		}
	}
	c.addRegion(line)
	return false, nil
}

// extend is feed's fast path for the line every healthy log is made of:
// the next record, not a recovery or archive record, that verifies. It accepts a line only
// when parseHeader would frame it and check would pass it, and leaves
// every other line, untouched, to the full path, which then finds the
// reason. What the chain already proved is not parsed again: the seq is
// compared with the expected digits, prev with the head's MAC (so neither
// is read as a number or checked as hex), and the MAC with the one
// computed (so it is hex when it matches).
func (c *chain) extend(line []byte, file string, lineNo int) bool {
	n := len(line)
	if n < minLine || n > MaxRecordBytes+1 || line[n-1] != '\n' || c.trustHash {
		return false
	}
	content, suf := line[:n-suffixLen], line[n-suffixLen:]
	if string(suf[:len(prefixMAC)]) != string(prefixMAC) || suf[suffixLen-3] != '"' || suf[suffixLen-2] != '}' {
		return false
	}
	mac := suf[len(prefixMAC) : len(prefixMAC)+macHex]
	// A format-2 record ends its S with the h field; T is what is left.
	hf, content, v2 := cutHashField(content)
	if !v2 && c.hashed {
		return false
	}
	want := c.nextDigits()
	p, ok := cut(content, prefixSeq)
	if ok {
		p, ok = cut(p, want)
	}
	if ok {
		p, ok = cut(p, prefixTS)
	}
	if !ok || len(p) < tsLen {
		return false
	}
	p, ok = cut(p[tsLen:], prefixPrev)
	if ok {
		p, ok = cut(p, c.prevHex())
	}
	if ok {
		p, ok = cut(p, prefixType)
	}
	if !ok {
		return false
	}
	k := bytes.IndexByte(p, '"')
	if k <= 0 || !validType(p[:k]) || string(p[:k]) == "recovery" || string(p[:k]) == "archive" {
		return false
	}
	if v2 {
		c.cand = c.lh.of(&c.hash, content)
		if !macMatches(&c.cand, hf) {
			return false
		}
		if c.s != nil {
			if m := c.s.mac(c.cand[:], nil); !macMatches(&m, mac) {
				return false
			}
		} else if !isHex(mac) {
			return false
		}
		c.hash, c.hashed = c.cand, true
		if c.firstHashed == 0 {
			c.firstHashed = c.seq + 1
		}
	} else {
		if c.s != nil {
			if m := c.s.mac(content, closeBrace); !macMatches(&m, mac) {
				return false
			}
		} else if !isHex(mac) {
			return false
		}
	}
	c.seq++
	c.digits, c.digitsSeq = incDigits(c.digits), c.seq+1
	copy(c.mac[:], mac)
	c.lastFile, c.lastLine = file, lineNo
	if c.s != nil {
		c.s.next()
	}
	return true
}

// nextDigits returns the decimal digits of the seq the chain expects next.
func (c *chain) nextDigits() []byte {
	if c.digitsSeq != c.seq+1 || c.digits == nil {
		c.digits, c.digitsSeq = strconv.AppendUint(c.digitsBuf[:0], c.seq+1, 10), c.seq+1
	}
	return c.digits
}

// incDigits adds one to a decimal number in place (growing it by a digit
// when it was all nines).
func incDigits(d []byte) []byte {
	for i := len(d) - 1; i >= 0; i-- {
		if d[i] != '9' {
			d[i]++
			return d
		}
		d[i] = '0'
	}
	return append(append(d[:0:0], '1'), d...)
}

// minLine is the shortest line parseHeader frames.
var minLine = len(prefixSeq) + suffixLen + len(prefixTS) + tsLen + len(prefixPrev) + len(prefixType)

func cut(b, prefix []byte) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != string(prefix) {
		return b, false
	}
	return b[len(prefix):], true
}

// hexWords maps a byte to its two lower-case hex digits as they lie in
// memory read little-endian, so that macMatches, which runs once per record
// in verify, compares eight digits at a time.
var hexWords = func() (t [256]uint64) {
	const digits = "0123456789abcdef"
	for i := range t {
		t[i] = uint64(digits[i>>4]) | uint64(digits[i&15])<<8
	}
	return t
}()

// macMatches reports, in constant time, whether h is the lower-case hex
// of m.
func macMatches(m *[sha256.Size]byte, h []byte) bool {
	if len(h) != macHex {
		return false
	}
	var d uint64
	for i := 0; i+4 <= len(m); i += 4 {
		w := hexWords[m[i]] | hexWords[m[i+1]]<<16 | hexWords[m[i+2]]<<32 | hexWords[m[i+3]]<<48
		d |= w ^ binary.LittleEndian.Uint64(h[2*i:])
	}
	return d == 0
}

// clone copies the chain's head and key, for a dry run.
func (c *chain) clone() *chain {
	d := newChain(nil)
	if c.s != nil {
		d.s = newSealer(c.s.key[:])
	}
	d.seq, d.mac, d.lastFile, d.lastLine = c.seq, c.mac, c.lastFile, c.lastLine
	d.hash, d.hashed, d.firstHashed, d.trustHash = c.hash, c.hashed, c.firstHashed, c.trustHash
	return d
}

// endFile is called at the end of each file: a suspect region can no longer
// be forgiven, because recovery records follow torn bytes in the same file.
func (c *chain) endFile() {
	if c.suspect() {
		c.sealed = true
	}
}

// finish returns the first bad record, its reason refined by what followed.
func (c *chain) finish() *VerifyError {
	if c.bad == nil {
		return nil
	}
	e := *c.bad
	if c.badAhead {
		if c.seenWant {
			e.Reason += ": records reordered"
		} else {
			e.Reason += fmt.Sprintf(": %d record(s) deleted", e.Seq-c.wantSeq)
		}
	}
	return &e
}

// recoveryTorn reads torn_bytes and torn_sha256 from a recovery record.
func recoveryTorn(h *header) (int64, string, error) {
	obj := make([]byte, 0, len(h.content)+1)
	obj = append(append(obj, h.content...), '}')
	var r struct {
		TornBytes  int64  `json:"torn_bytes"`
		TornSHA256 string `json:"torn_sha256"`
	}
	if err := json.Unmarshal(obj, &r); err != nil {
		return 0, "", fmt.Errorf("malformed recovery record: %v", err)
	}
	if r.TornBytes < 0 || (r.TornBytes > 0 && (len(r.TornSHA256) != macHex || !isHex([]byte(r.TornSHA256)))) {
		return 0, "", fmt.Errorf("recovery record has a malformed torn_bytes or torn_sha256")
	}
	return r.TornBytes, r.TornSHA256, nil
}
