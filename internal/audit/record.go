package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"
)

// Record is one audited event. The writer adds seq, ts, prev and mac; the
// caller fills in what applies and leaves the rest zero (omitted from the
// line). Records never hold secrets: Append redacts registered ones.
type Record struct {
	// Type is what happened: one of Kinds (see the package doc). init,
	// rotate, recovery and archive are written by the log itself.
	// Lower-case letters and underscores.
	Type Kind `json:"type"`
	// Outcome is how it went: one of Outcomes.
	Outcome Outcome `json:"outcome,omitempty"`
	// Reason says why (a denial, a failure), safe to show the owner.
	Reason  string            `json:"reason,omitempty"`
	UserID  int64             `json:"user,omitempty"`
	ChatID  int64             `json:"chat,omitempty"`
	Command string            `json:"command,omitempty"`
	Params  map[string]string `json:"params,omitempty"` // bound parameters
	Argv    []string          `json:"argv,omitempty"`   // resolved argv
	Workdir string            `json:"workdir,omitempty"`
	Sandbox string            `json:"sandbox,omitempty"` // sandbox profile
	Job     string            `json:"job,omitempty"`
	Exit    *int              `json:"exit,omitempty"`
	Signal  string            `json:"signal,omitempty"`
	// TimedOut is set when the job was killed by its timeout.
	TimedOut     bool   `json:"timed_out,omitempty"`
	DurationMS   int64  `json:"duration_ms,omitempty"`
	OutputBytes  int64  `json:"output_bytes,omitempty"`
	OutputSHA256 string `json:"output_sha256,omitempty"`
	// CPUMS is the job's CPU time, user and system, every process of it;
	// MemoryPeak its peak memory in bytes where it had a cgroup of its
	// own (else MaxRSS, its largest single process); OOMKills how often
	// the kernel killed one of its processes for memory.
	CPUMS      int64 `json:"cpu_ms,omitempty"`
	MemoryPeak int64 `json:"memory_peak,omitempty"`
	MaxRSS     int64 `json:"max_rss,omitempty"`
	OOMKills   int64 `json:"oom_kills,omitempty"`
	// Count is how many similar events this record stands for beyond
	// itself (unauthorized updates dropped by the rate limit).
	Count  int    `json:"count,omitempty"`
	Detail string `json:"detail,omitempty"` // kind of update, file, version, ...

	// Fleet control. A hub's remote_request and remote_end records name
	// the member (Host), the arguments as sent (Args: the member binds
	// them), and in remote_end the member's audit head after its own
	// record of the call (RemoteSeq, RemoteMAC: a 16-hex prefix). A
	// member's request, exec_start and exec_end records for a call name
	// who made it (Peer: the hub key's fingerprint, the forced command's
	// --peer label, the client address). Call is the call's ID in both
	// logs, so that they can be cross-checked.
	Host      string   `json:"host,omitempty"`
	Args      []string `json:"args,omitempty"`
	Call      string   `json:"call,omitempty"`
	Peer      string   `json:"peer,omitempty"`
	RemoteSeq uint64   `json:"remote_seq,omitempty"`
	RemoteMAC string   `json:"remote_mac,omitempty"`

	// Redacted is set by the writer when it replaced a registered secret.
	Redacted bool `json:"redacted,omitempty"`
	// TornBytes and TornSHA256 describe, in a recovery record, the bytes
	// of a cut-short write that precede it. Set by the writer only.
	TornBytes  int64  `json:"torn_bytes,omitempty"`
	TornSHA256 string `json:"torn_sha256,omitempty"`
	// Archived is set, by the log only, in an archive record.
	Archived *Archived `json:"archived,omitempty"`
}

// Archived is what an archive record says: which whole files left the live
// log, and where the chain stood at their end, so that the live log's
// first record can be linked to it and verify over live and archived
// files together checks the whole history.
type Archived struct {
	// Seq is the last archived record; MAC its mac and Hash its h ("" for a
	// format-1 record).
	Seq  uint64 `json:"seq"`
	MAC  string `json:"mac"`
	Hash string `json:"h,omitempty"`
	// Dir is the archive directory, as given.
	Dir   string         `json:"dir"`
	Files []ArchivedFile `json:"files"`
	// Note is a signed checkpoint of Seq and Hash, when the log has a
	// checkpoint key: the archive boundary, checkable without K0.
	Note string `json:"note,omitempty"`
}

// ArchivedFile is one archived file: its name in the live log, the seqs it
// held, and its length and SHA-256 before compression.
type ArchivedFile struct {
	Name   string `json:"name"`
	First  uint64 `json:"first"`
	Last   uint64 `json:"last"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Entry is a record as read back from the log.
type Entry struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"-"`
	Prev string    `json:"prev"`
	MAC  string    `json:"mac"`
	// Hash is the record's h, the head of the unkeyed hash chain at this
	// record (64 hex); "" in a format-1 record, which has none.
	Hash string `json:"h,omitempty"`
	Record
}

const (
	tsLayout = "2006-01-02T15:04:05.000000000Z"
	tsLen    = len(tsLayout)
	macHex   = 64
	// suffixLen is `,"mac":"` + 64 hex + `"}` + "\n".
	suffixLen = len(`,"mac":"`) + macHex + len(`"}`) + 1
	// hashFieldLen is `,"h":"` + 64 hex + `"`: what a format-2 record has
	// in front of its MAC suffix.
	hashFieldLen = len(`,"h":"`) + macHex + 1

	// MaxRecordBytes bounds one line, so a reader's memory is bounded and
	// one write(2) stays well inside what the kernel writes at once.
	MaxRecordBytes = 64 << 10

	keySize = 32
)

var (
	prefixSeq  = []byte(`{"seq":`)
	prefixTS   = []byte(`,"ts":"`)
	prefixPrev = []byte(`","prev":"`)
	prefixType = []byte(`","type":"`)
	prefixMAC  = []byte(`,"mac":"`)
	prefixHash = []byte(`,"h":"`)
	nextLabel  = []byte("next")
	closeBrace = []byte("}")
)

// sealer computes HMAC-SHA256 under the current evolving key. It is a
// hand-rolled HMAC so that one pair of hash states is reused for every
// record: verify spends its time in SHA-256, not in allocation. Each key
// seals exactly two messages (its record and "next", which makes the
// following key), so the states after the key's ipad and opad blocks are
// computed once per key and restored for both (FIPS 198-1 section 6 allows
// this): two SHA-256 blocks per record fewer than a plain HMAC.
type sealer struct {
	key     [keySize]byte
	in, out hash.Hash
	// ist and ost are in's and out's marshaled states after the ipad and
	// opad blocks. They are as secret as the key, and zeroed with it.
	ist, ost []byte
	// inFresh and outFresh are set while in and out still hold those
	// states untouched, so that the first use skips the restore.
	inFresh, outFresh bool
	// sum, res and pad are scratch space kept here because a buffer
	// passed to a hash.Hash method escapes: on the stack, each would be
	// an allocation per call.
	sum, res [sha256.Size]byte
	pad      [sha256.BlockSize]byte
}

// hashState is what the sealer needs beyond hash.Hash; crypto/sha256
// documents that its hashes implement it.
type hashState interface {
	hash.Hash
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

func newSealer(k []byte) *sealer {
	s := &sealer{in: sha256.New(), out: sha256.New()}
	if _, ok := s.in.(hashState); !ok {
		panic("audit: crypto/sha256 cannot save its state")
	}
	s.setKey(k)
	return s
}

func (s *sealer) setKey(k []byte) {
	copy(s.key[:], k)
	// The pads are the key, zero-padded to a block, XOR 0x36 (inner) and
	// 0x5c (outer); eight bytes at a time, as this runs once per record.
	pad := &s.pad
	const ipad, opad = 0x3636363636363636, 0x5c5c5c5c5c5c5c5c
	for i := 0; i < sha256.BlockSize; i += 8 {
		var w uint64
		if i < keySize {
			w = binary.LittleEndian.Uint64(s.key[i:])
		}
		binary.LittleEndian.PutUint64(pad[i:], w^ipad)
	}
	s.ist = saveAfter(s.in, pad[:], s.ist)
	for i := 0; i < sha256.BlockSize; i += 8 {
		binary.LittleEndian.PutUint64(pad[i:], binary.LittleEndian.Uint64(pad[i:])^ipad^opad)
	}
	s.ost = saveAfter(s.out, pad[:], s.ost)
	clear(pad[:])
	s.inFresh, s.outFresh = true, true
}

// saveAfter resets h, writes pad and returns h's state, reusing dst.
func saveAfter(h hash.Hash, pad []byte, dst []byte) []byte {
	h.Reset()
	h.Write(pad)
	st, err := h.(hashState).AppendBinary(dst[:0])
	if err != nil {
		panic("audit: save a sha256 state: " + err.Error())
	}
	return st
}

func restore(h hash.Hash, st []byte) {
	if err := h.(hashState).UnmarshalBinary(st); err != nil {
		panic("audit: restore a sha256 state: " + err.Error())
	}
}

// mac returns HMAC(key, a || b).
func (s *sealer) mac(a, b []byte) [sha256.Size]byte {
	if !s.inFresh {
		restore(s.in, s.ist)
	}
	s.inFresh = false
	s.in.Write(a)
	s.in.Write(b)
	inner := s.in.Sum(s.sum[:0])
	if !s.outFresh {
		restore(s.out, s.ost)
	}
	s.outFresh = false
	s.out.Write(inner)
	s.out.Sum(s.res[:0])
	m := s.res
	clear(s.res[:])
	return m
}

// next moves to K(i+1) = HMAC(K(i), "next") and forgets K(i).
func (s *sealer) next() {
	k := s.mac(nextLabel, nil)
	s.setKey(k[:])
	clear(k[:])
	clear(s.sum[:])
}

func (s *sealer) zero() {
	clear(s.key[:])
	clear(s.ist)
	clear(s.ost)
	clear(s.sum[:])
	clear(s.res[:])
	clear(s.pad[:])
	s.in.Reset()
	s.out.Reset()
	s.inFresh, s.outFresh = false, false
}

// encodeBody serializes the caller's part of a record: `{"type":...}`.
func encodeBody(r *Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode %s record: %w", r.Type, err)
	}
	return b, nil
}

// appendLine appends one sealed format-2 line to dst: the header, body
// (without its opening brace), h and the MAC computed with s's current key,
// where h = SHA-256(hprev || T) and T is the object up to the h field with
// its closing brace (see the package doc). It returns the line's h too.
func appendLine(dst []byte, s *sealer, lh *linkHash, seq uint64, ts time.Time, prev []byte, hprev *[sha256.Size]byte, body []byte) ([]byte, [sha256.Size]byte, error) {
	start := len(dst)
	dst = append(dst, prefixSeq...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, prefixTS...)
	n := len(dst)
	dst = ts.UTC().AppendFormat(dst, tsLayout)
	if len(dst)-n != tsLen {
		return dst[:start], [sha256.Size]byte{}, fmt.Errorf("timestamp %v out of range (year 0-9999)", ts)
	}
	dst = append(dst, prefixPrev...)
	dst = append(dst, prev...)
	dst = append(dst, '"', ',')
	dst = append(dst, body[1:]...) // body ends with '}': dst[start:] is T
	h := lh.of(hprev, dst[start:len(dst)-1])
	dst = dst[:len(dst)-1]
	dst = append(dst, prefixHash...)
	dst = hex.AppendEncode(dst, h[:])
	dst = append(dst, '"')
	m := s.mac(h[:], nil)
	dst = append(dst, prefixMAC...)
	dst = hex.AppendEncode(dst, m[:])
	dst = append(dst, '"', '}', '\n')
	return dst, h, nil
}

// appendLineV1 appends one sealed format-1 line: no h, and the MAC over
// the object itself. Only tests write this format now, to hold the reader
// to logs written before format 2.
func appendLineV1(dst []byte, s *sealer, seq uint64, ts time.Time, prev []byte, body []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, prefixSeq...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, prefixTS...)
	n := len(dst)
	dst = ts.UTC().AppendFormat(dst, tsLayout)
	if len(dst)-n != tsLen {
		return dst[:start], fmt.Errorf("timestamp %v out of range (year 0-9999)", ts)
	}
	dst = append(dst, prefixPrev...)
	dst = append(dst, prev...)
	dst = append(dst, '"', ',')
	dst = append(dst, body[1:]...)
	m := s.mac(dst[start:], nil)
	dst = dst[:len(dst)-1]
	dst = append(dst, prefixMAC...)
	dst = hex.AppendEncode(dst, m[:])
	dst = append(dst, '"', '}', '\n')
	return dst, nil
}

// linkHash computes the unkeyed chain's links with one reused SHA-256
// state, so that verify does not allocate one per record.
type linkHash struct {
	d   hash.Hash
	sum [sha256.Size]byte
}

func newLinkHash() *linkHash { return &linkHash{d: sha256.New()} }

// of returns SHA-256(prev || content || "}"): the h of a record whose T,
// without its closing brace, is content.
func (x *linkHash) of(prev *[sha256.Size]byte, content []byte) [sha256.Size]byte {
	x.d.Reset()
	x.d.Write(prev[:])
	x.d.Write(content)
	x.d.Write(closeBrace)
	x.d.Sum(x.sum[:0])
	return x.sum
}

// header is what verify needs from a line, found without a JSON decoder.
// Its slices alias the line.
type header struct {
	seq  uint64
	prev []byte // "" or 64 hex
	mac  []byte // 64 hex
	// hash is a format-2 record's h field (64 hex), nil in format 1.
	hash []byte
	// content is the object the MAC (format 1) or h (format 2) covers,
	// without its closing brace: S in format 1, T in format 2.
	content []byte
	ts      []byte // tsLen bytes, not checked
	typ     []byte
}

// notHex marks all but the lower-case hex digits; a table keeps isHex, which
// runs twice per record in verify, free of branches.
var notHex = func() (t [256]uint8) {
	for i := range t {
		t[i] = 1
	}
	for _, c := range []byte("0123456789abcdef") {
		t[c] = 0
	}
	return t
}()

func isHex(b []byte) bool {
	var bad uint8
	for _, c := range b {
		bad |= notHex[c]
	}
	return bad == 0
}

// parseHeader checks a line's framing and reads its fixed fields. The
// returned reason is "" when the framing holds; the MAC is not checked.
func parseHeader(line []byte) (h header, reason string) {
	n := len(line)
	if n == 0 || line[n-1] != '\n' {
		return h, reasonIncomplete
	}
	if n > MaxRecordBytes+1 {
		return h, "line longer than the record limit"
	}
	if n < minLine {
		return h, "malformed record: too short"
	}
	suf := line[n-suffixLen:]
	if !bytes.HasPrefix(suf, prefixMAC) || suf[suffixLen-3] != '"' || suf[suffixLen-2] != '}' {
		return h, "malformed record: no mac at the end"
	}
	h.mac = suf[len(prefixMAC) : len(prefixMAC)+macHex]
	if !isHex(h.mac) {
		return h, "malformed record: mac is not lower-case hex"
	}
	c := line[:n-suffixLen]
	if hf, t, ok := cutHashField(c); ok {
		h.hash, c = hf, t
	}
	h.content = c
	if !bytes.HasPrefix(c, prefixSeq) {
		return h, "malformed record: does not start with seq"
	}
	i := len(prefixSeq)
	j := i
	for j < len(c) && c[j] >= '0' && c[j] <= '9' {
		j++
	}
	if j == i || j-i > 20 || (c[i] == '0') {
		return h, "malformed record: bad seq"
	}
	seq, err := strconv.ParseUint(string(c[i:j]), 10, 64)
	if err != nil {
		return h, "malformed record: bad seq"
	}
	h.seq = seq
	c = c[j:]
	if !bytes.HasPrefix(c, prefixTS) || len(c) < len(prefixTS)+tsLen {
		return h, "malformed record: bad ts"
	}
	h.ts = c[len(prefixTS) : len(prefixTS)+tsLen]
	c = c[len(prefixTS)+tsLen:]
	if !bytes.HasPrefix(c, prefixPrev) {
		return h, "malformed record: bad prev"
	}
	c = c[len(prefixPrev):]
	switch {
	case len(c) > macHex && isHex(c[:macHex]) && bytes.HasPrefix(c[macHex:], prefixType):
		h.prev = c[:macHex]
		c = c[macHex:]
	case bytes.HasPrefix(c, prefixType):
		h.prev = c[:0]
	default:
		return h, "malformed record: bad prev"
	}
	c = c[len(prefixType):]
	k := bytes.IndexByte(c, '"')
	if k <= 0 || !validType(c[:k]) {
		return h, "malformed record: bad type"
	}
	h.typ = c[:k]
	return h, ""
}

// cutHashField splits a format-2 record's S (without its closing brace)
// into the h field's hex and T (without its closing brace). No format-1
// line ends in `,"h":"<64 hex>"`: Record has no field h, and inside a JSON
// string a quote is always escaped, so the pattern marks format 2.
func cutHashField(c []byte) (hf, t []byte, ok bool) {
	m := len(c) - hashFieldLen
	if m <= 0 || string(c[m:m+len(prefixHash)]) != string(prefixHash) || c[len(c)-1] != '"' {
		return nil, c, false
	}
	hf = c[m+len(prefixHash) : len(c)-1]
	if !isHex(hf) {
		return nil, c, false
	}
	return hf, c[:m], true
}

func validType(t []byte) bool {
	if len(t) == 0 || len(t) > 32 {
		return false
	}
	for _, c := range t {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// ParseRecord parses one line (with or without its trailing newline) into an
// Entry. It checks the framing and that the JSON object agrees with it, but
// not the MAC: that needs the chain (Verify).
func ParseRecord(line []byte) (Entry, error) {
	var e Entry
	if len(line) == 0 || line[len(line)-1] != '\n' {
		line = append(line[:len(line):len(line)], '\n')
	}
	h, reason := parseHeader(line)
	if reason != "" {
		return e, errors.New(reason)
	}
	full := line[:len(line)-suffixLen]
	s := make([]byte, 0, len(full)+1)
	s = append(append(s, full...), '}')
	var w struct {
		Seq  *uint64 `json:"seq"`
		TS   string  `json:"ts"`
		Prev *string `json:"prev"`
		H    *string `json:"h"`
		Record
	}
	d := json.NewDecoder(bytes.NewReader(s))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return e, fmt.Errorf("malformed record: %w", err)
	}
	if d.More() {
		return e, errors.New("malformed record: data after the object")
	}
	// The header's fields are what the MAC and the show pre-check read: a
	// record whose JSON says otherwise (a duplicate key, or one in another
	// case, which encoding/json also matches) is not shown as either.
	if w.Seq == nil || *w.Seq != h.seq || w.Prev == nil || *w.Prev != string(h.prev) || w.Type != Kind(h.typ) || w.TS != string(h.ts) ||
		(w.H == nil) != (h.hash == nil) || (w.H != nil && *w.H != string(h.hash)) {
		return e, errors.New("malformed record: fields disagree with the header (duplicate keys?)")
	}
	t, err := time.Parse(tsLayout, w.TS)
	if err != nil || len(w.TS) != tsLen {
		return e, errors.New("malformed record: bad ts")
	}
	e.Seq, e.Time, e.Prev, e.MAC, e.Hash, e.Record = h.seq, t, string(h.prev), string(h.mac), string(h.hash), w.Record
	return e, nil
}
