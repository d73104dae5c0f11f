package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
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

// Checkpoint is the text the daemon sends to the owner's chat; verify
// accepts it back with --checkpoint.
func (h Head) Checkpoint() string {
	m := h.MAC
	if len(m) > checkpointHex {
		m = m[:checkpointHex]
	}
	return fmt.Sprintf("audit checkpoint seq=%d mac=%s", h.Seq, m)
}

var checkpointRE = regexp.MustCompile(`seq=([0-9]{1,20}) mac=([0-9a-f]{16,64})(?:[^0-9a-f]|$)`)

// ParseCheckpoint reads a checkpoint from text that contains one, such as
// the whole chat message pasted back.
func ParseCheckpoint(s string) (Head, error) {
	ms := checkpointRE.FindAllStringSubmatch(s, 2)
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
	Checkpoints  int  // checkpoints that matched
	MACsVerified bool // false when verified without a key: links only
	StateChecked bool // the key state agreed with the log (VerifyDir)
}

func (s Summary) String() string {
	var b strings.Builder
	if s.MACsVerified {
		b.WriteString("ok: ")
	} else {
		b.WriteString("links ok, MACS NOT VERIFIED (no key; pass --key K0): ")
	}
	fmt.Fprintf(&b, "%d records in %d file(s), head seq=%d mac=%.16s", s.Records, s.Files, s.Head.Seq, s.Head.MAC)
	if s.Recoveries > 0 {
		fmt.Fprintf(&b, ", %d recovery record(s)", s.Recoveries)
	}
	if s.Checkpoints > 0 {
		fmt.Fprintf(&b, ", %d checkpoint(s) matched", s.Checkpoints)
	}
	if s.StateChecked {
		b.WriteString(", key state matches")
	}
	return b.String()
}

// Verify checks the chain in files (numbered audit files are put in order;
// other names keep the order given), from seq 1 to the end. With k0 it checks
// every MAC; with a nil k0 only the structure (seq, prev links, torn-write
// recovery), and the Summary says so. It streams: memory does not grow with
// the log. A broken chain is a *VerifyError naming the first bad record.
func Verify(files []string, k0 []byte, checkpoints []Head) (Summary, error) {
	sum, _, err := verify(sortFiles(files), k0, checkpoints, 0)
	return sum, err
}

// captured is the chain as it stood after one chosen seq.
type captured struct {
	ok  bool
	mac string
	key []byte
}

func verify(files []string, k0 []byte, checkpoints []Head, captureSeq uint64) (Summary, captured, error) {
	var sum Summary
	var cap captured
	if len(files) == 0 {
		return sum, cap, errors.New("no audit files to verify (pass the files, or check audit.dir)")
	}
	if k0 != nil && len(k0) != keySize {
		return sum, cap, fmt.Errorf("the audit key must be %d bytes, got %d (pass K0 as printed by relay audit init)", keySize, len(k0))
	}
	cps := append([]Head(nil), checkpoints...)
	sort.Slice(cps, func(i, j int) bool { return cps[i].Seq < cps[j].Seq })
	next := 0

	c := newChain(k0)
	if c.s != nil {
		defer c.s.zero()
	}
	sum.MACsVerified = k0 != nil
	sum.Files = len(files)
	for _, path := range files {
		name := filepath.Base(path)
		f, err := os.Open(path)
		if err != nil {
			return sum, cap, fmt.Errorf("verify: %w", err)
		}
		// A buffer that stays in a core's L2 cache: the kernel copies
		// into it and SHA-256 reads it back while it is still there.
		verr, err := scan(f, 0, name, verifyBuffer, c, func(end int64, line int) *VerifyError {
			sum.Records++
			if c.seq == captureSeq {
				cap.ok, cap.mac = true, string(c.mac[:])
				if c.s != nil {
					cap.key = append([]byte(nil), c.s.key[:]...)
				}
			}
			for next < len(cps) && cps[next].Seq == c.seq {
				if !strings.HasPrefix(string(c.mac[:]), cps[next].MAC) {
					return &VerifyError{Seq: c.seq, File: name, Line: line,
						Reason: fmt.Sprintf("does not match checkpoint seq=%d mac=%s: the log was rewritten up to here", cps[next].Seq, cps[next].MAC)}
				}
				sum.Checkpoints++
				next++
			}
			return nil
		})
		f.Close()
		if err != nil {
			return sum, cap, fmt.Errorf("verify: read %s: %w", name, err)
		}
		if verr != nil {
			return sum, cap, verr
		}
		c.endFile()
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
	if c.seq == 0 {
		return sum, cap, &VerifyError{Seq: 1, File: filepath.Base(files[0]), Reason: "the log holds no records"}
	}
	if next < len(cps) {
		return sum, cap, &VerifyError{Seq: cps[next].Seq, File: c.lastFile,
			Reason: fmt.Sprintf("truncated after checkpoint: the checkpoint names seq %d but the log ends at seq %d", cps[next].Seq, c.seq)}
	}
	return sum, cap, nil
}

// VerifyDir verifies every file in a log directory, and also checks the key
// state against the log: a state ahead of the log means records were cut
// from the tail, and a state whose key or MAC differs means the state or the
// log was replaced.
func VerifyDir(dir string, k0 []byte, checkpoints []Head) (Summary, error) {
	files, err := ListFiles(dir)
	if err != nil {
		return Summary{}, err
	}
	st, err := readState(dir)
	if err != nil {
		sum, _, verr := verify(files, k0, checkpoints, 0)
		if verr != nil {
			return sum, verr
		}
		return sum, &VerifyError{Seq: sum.Head.Seq, File: sum.Head.File, Reason: "the key state is missing, so a cut tail cannot be ruled out (" + err.Error() + ")"}
	}
	defer st.zero()
	sum, cap, err := verify(files, k0, checkpoints, st.Seq)
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
