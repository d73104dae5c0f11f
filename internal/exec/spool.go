package exec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"
)

// memThreshold is how much output a spool keeps in memory before it moves
// to a private temporary file: most command output fits, and anything
// larger costs one file, never more memory.
const memThreshold = 64 << 10

// tailSize is how much of the most recent output a job keeps for live
// progress, independent of the spool's cap.
const tailSize = 8 << 10

// Spool is a command's captured output: what was kept (at most the
// command's maximum) and how much was dropped. It is safe for concurrent
// use; Open may be called any number of times until Close.
type Spool struct {
	mu      sync.Mutex
	dir     string   // where the temp file goes
	max     int64    // hard cap on kept bytes
	mem     []byte   // kept bytes while below memThreshold; nil once f != nil
	f       *os.File // unlinked 0600 temp file holding all kept bytes
	kept    int64
	dropped int64
	total   int64
	hash    hash.Hash
	tail    []byte // ring of the last tailSize bytes of the whole stream
	tailPos int    // next write position in tail once full
	err     error  // first storage error; later output counts as dropped
	closed  bool
}

func newSpool(dir string, max int64) *Spool {
	return &Spool{dir: dir, max: max, hash: sha256.New()}
}

// Write appends command output. It never fails, so the pipe is always
// drained: bytes over the cap, or after a storage error, are counted as
// dropped and still hashed.
func (s *Spool) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hash.Write(p)
	s.total += int64(len(p))
	s.addTailLocked(p)
	keep := p
	if room := s.max - s.kept; int64(len(keep)) > room {
		keep = keep[:max(room, 0)]
	}
	if s.err != nil || s.closed {
		keep = nil
	}
	if len(keep) > 0 {
		if s.f == nil && len(s.mem)+len(keep) > memThreshold {
			s.spillLocked()
		}
		if s.f != nil {
			if _, err := s.f.WriteAt(keep, s.kept); err != nil {
				s.err = fmt.Errorf("write output spool: %w", err)
				keep = nil
			}
		} else if s.err == nil {
			s.mem = append(s.mem, keep...)
		} else {
			keep = nil
		}
	}
	s.kept += int64(len(keep))
	s.dropped += int64(len(p) - len(keep))
	return len(p), nil
}

// spillLocked moves the kept bytes into a temp file that is unlinked at
// once: it never has a name another process could open, and the
// descriptor is its only reference.
func (s *Spool) spillLocked() {
	dir := s.dir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, ".relay-spool-*")
	if err == nil {
		err = os.Remove(f.Name())
		if err == nil {
			_, err = f.WriteAt(s.mem, 0)
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		s.err = fmt.Errorf("create output spool in %s: %w", dir, err)
		return
	}
	s.f, s.mem = f, nil
}

func (s *Spool) addTailLocked(p []byte) {
	if len(p) >= tailSize {
		s.tail = append(s.tail[:0], p[len(p)-tailSize:]...)
		s.tailPos = 0
		return
	}
	for len(p) > 0 {
		if len(s.tail) < tailSize {
			n := min(tailSize-len(s.tail), len(p))
			s.tail = append(s.tail, p[:n]...)
			p = p[n:]
			continue
		}
		n := copy(s.tail[s.tailPos:], p)
		s.tailPos = (s.tailPos + n) % tailSize
		p = p[n:]
	}
}

// lastBytes returns up to n of the most recent bytes written.
func (s *Spool) lastBytes(n int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	ordered := append(append([]byte(nil), s.tail[s.tailPos:]...), s.tail[:s.tailPos]...)
	if n >= 0 && len(ordered) > n {
		ordered = ordered[len(ordered)-n:]
	}
	return ordered
}

func (s *Spool) marker() string {
	if s.dropped == 0 {
		return ""
	}
	return fmt.Sprintf("\n[relay: output truncated, %d bytes dropped]\n", s.dropped)
}

// Size is the number of bytes Open yields: the kept output plus the
// truncation marker, if any.
func (s *Spool) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kept + int64(len(s.marker()))
}

// ErrClosed is returned by Open after Close.
var ErrClosed = errors.New("output spool already closed")

// Open streams the kept output followed by the truncation marker. Each
// reader is independent; it must be closed, and it fails once the spool
// is closed.
func (s *Spool) Open() (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var body io.Reader
	if s.f != nil {
		body = io.NewSectionReader(s.f, 0, s.kept)
	} else {
		body = strings.NewReader(string(s.mem))
	}
	return io.NopCloser(io.MultiReader(body, strings.NewReader(s.marker()))), nil
}

// ReadAt reads kept output from offset off while the command may still
// be writing it, so that relay exec can show output as it arrives. It
// returns io.EOF at the end of what is kept so far; the truncation marker
// is only in Open's stream.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if off < 0 || off >= s.kept {
		return 0, io.EOF
	}
	n := min(int64(len(p)), s.kept-off)
	if s.f != nil {
		return s.f.ReadAt(p[:n], off)
	}
	return copy(p, s.mem[off:off+n]), nil
}

// Close frees the spool's temp file and memory.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.mem = nil
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

func (s *Spool) sum() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return hex.EncodeToString(s.hash.Sum(nil))
}
