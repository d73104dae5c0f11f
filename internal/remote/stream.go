package remote

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Frame types.
const (
	FrameHello     = 'H'
	FrameOutput    = 'O'
	FrameKeepalive = 'K'
	FrameList      = 'L'
	FrameTrailer   = 'T'
	// The witness's answers.
	FrameCheckpoint = 'C'
	FrameAudit      = 'A'
	FrameEnd        = 'E'
)

// Frame limits.
const (
	HelloPrefix   = "relay-stream-v1 "
	MaxHelloBytes = 256
	MaxChunkBytes = 64 << 10
	MaxListBytes  = 1 << 20
	// MaxNoteBytes bounds a signed checkpoint: three short lines and a
	// few signatures.
	MaxNoteBytes = 4096
	endBytes     = 8
	headerBytes  = 5
)

// FrameOverhead is what framing adds to n bytes of output sent in chunks
// of at most MaxChunkBytes, beyond the hello and the trailer.
func FrameOverhead(n int64) int64 { return (n/MaxChunkBytes + 1) * headerBytes }

// MaxFixedBytes is the most a stream holds besides output and keepalive
// frames: the hello and the trailer with their headers.
const MaxFixedBytes = 2*headerBytes + MaxHelloBytes + MaxTrailerBytes

// KeepaliveBytes is the size of one keepalive frame.
const KeepaliveBytes = headerBytes

// Writer writes frames to a member's stdout, each with one Write call, so
// that a frame is never interleaved with anything else on the pipe.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (w *Writer) frame(typ byte, p []byte) error {
	w.buf = append(w.buf[:0], typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(w.buf[1:], uint32(len(p)))
	w.buf = append(w.buf, p...)
	_, err := w.w.Write(w.buf)
	return err
}

// Hello writes the first frame, naming the member's relay version.
func (w *Writer) Hello(version string) error {
	s := HelloPrefix + version
	if len(s) > MaxHelloBytes || badText(version) != "" {
		return errors.New("stream: version string too long or not text")
	}
	return w.frame(FrameHello, []byte(s))
}

// Output writes p as output frames of at most MaxChunkBytes.
func (w *Writer) Output(p []byte) error { return w.chunks(FrameOutput, p) }

// chunks writes p as frames of typ of at most MaxChunkBytes.
func (w *Writer) chunks(typ byte, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), MaxChunkBytes)
		if err := w.frame(typ, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// Keepalive writes an empty frame, so that a dead hub is noticed while a
// command is silent.
func (w *Writer) Keepalive() error { return w.frame(FrameKeepalive, nil) }

// List writes the allowlist document.
func (w *Writer) List(doc []byte) error {
	if len(doc) == 0 || len(doc) > MaxListBytes {
		return fmt.Errorf("stream: list document of %d bytes", len(doc))
	}
	return w.frame(FrameList, doc)
}

// Checkpoint writes a signed checkpoint: the whole of an audit-head answer.
func (w *Writer) Checkpoint(note []byte) error {
	if len(note) == 0 || len(note) > MaxNoteBytes {
		return fmt.Errorf("stream: checkpoint of %d bytes", len(note))
	}
	return w.frame(FrameCheckpoint, note)
}

// Audit writes record lines as audit frames of at most MaxChunkBytes.
func (w *Writer) Audit(p []byte) error { return w.chunks(FrameAudit, p) }

// End writes the last frame of an audit-since answer: how many record
// lines were sent. Without it the witness takes the records as cut off,
// not as the log's end.
func (w *Writer) End(lines uint64) error {
	return w.frame(FrameEnd, binary.BigEndian.AppendUint64(nil, lines))
}

// AuditWriter is an io.Writer of audit frames, for audit.RecordsSince.
func (w *Writer) AuditWriter() io.Writer { return auditWriter{w} }

type auditWriter struct{ w *Writer }

func (a auditWriter) Write(p []byte) (int, error) {
	if err := a.w.Audit(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Trailer writes the last frame.
func (w *Writer) Trailer(t *Trailer) error {
	s, err := t.Format()
	if err != nil {
		return err
	}
	return w.frame(FrameTrailer, []byte(s))
}

// Handler receives what a Decoder reads. Any callback may be nil; an error
// it returns stops the decoder.
type Handler struct {
	// Hello receives the member's version string.
	Hello func(version string) error
	// Output receives output bytes as they arrive, with their offset in
	// the stream (for a caller that indexes the stream it kept). A frame
	// may arrive in several pieces.
	Output func(p []byte, streamOff int64) error
	// Keepalive is called for each keepalive frame.
	Keepalive func() error
	// List receives the whole allowlist document.
	List func(doc []byte) error
	// Trailer receives the parsed trailer.
	Trailer func(t *Trailer) error
	// Checkpoint receives an audit-head's signed checkpoint, unverified.
	Checkpoint func(note []byte) error
	// Audit receives record lines as they arrive (a line may come in
	// several pieces); End the count of lines the member says it sent.
	Audit func(p []byte) error
	End   func(lines uint64) error
}

// Decoder reads a member's stream incrementally and strictly: Write feeds
// it bytes as they arrive, Close says the stream ended. Its memory is
// bounded by the largest frame it must hold whole (a list document).
type Decoder struct {
	h      Handler
	off    int64 // stream bytes consumed
	hdr    [headerBytes]byte
	nhdr   int
	typ    byte
	remain int    // payload bytes of the current frame still to come
	whole  []byte // payload of a frame delivered whole (H, L, T)
	hello  bool
	body   byte // FrameOutput, FrameList, FrameCheckpoint or FrameAudit once the body's kind is known
	done   bool // the trailer was read
	err    error
}

// NewDecoder returns a Decoder calling h.
func NewDecoder(h Handler) *Decoder { return &Decoder{h: h} }

// ProtocolError is a stream that breaks the format.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "protocol error: " + e.Reason }

func (d *Decoder) fail(format string, a ...any) error {
	d.err = &ProtocolError{Reason: fmt.Sprintf(format, a...)}
	return d.err
}

// Write consumes p. After an error every call returns it.
func (d *Decoder) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n := len(p)
	for len(p) > 0 {
		if d.done {
			return 0, d.fail("%d bytes after the trailer", len(p))
		}
		if d.nhdr < headerBytes {
			c := copy(d.hdr[d.nhdr:], p)
			d.nhdr += c
			d.off += int64(c)
			p = p[c:]
			if d.nhdr < headerBytes {
				break
			}
			if err := d.begin(); err != nil {
				return 0, err
			}
			if d.remain == 0 {
				if err := d.end(); err != nil {
					return 0, err
				}
			}
			continue
		}
		c := min(len(p), d.remain)
		chunk := p[:c]
		switch d.typ {
		case FrameOutput:
			if d.h.Output != nil {
				if err := d.h.Output(chunk, d.off); err != nil {
					d.err = err
					return 0, err
				}
			}
		case FrameAudit:
			if d.h.Audit != nil {
				if err := d.h.Audit(chunk); err != nil {
					d.err = err
					return 0, err
				}
			}
		default:
			d.whole = append(d.whole, chunk...)
		}
		d.off += int64(c)
		d.remain -= c
		p = p[c:]
		if d.remain == 0 {
			if err := d.end(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// begin checks a complete frame header against the order and the bounds.
func (d *Decoder) begin() error {
	d.typ = d.hdr[0]
	l := binary.BigEndian.Uint32(d.hdr[1:])
	if !d.hello && d.typ != FrameHello {
		return d.fail("first frame is %s, want a hello", frameName(d.typ))
	}
	var lo, hi uint32
	switch d.typ {
	case FrameHello:
		if d.hello {
			return d.fail("a second hello")
		}
		lo, hi = uint32(len(HelloPrefix)), MaxHelloBytes
	case FrameOutput, FrameKeepalive:
		if d.body != 0 && d.body != FrameOutput {
			return d.fail("%s in a %s answer", frameName(d.typ), frameName(d.body))
		}
		d.body = FrameOutput
		lo, hi = 1, MaxChunkBytes
		if d.typ == FrameKeepalive {
			lo, hi = 0, 0
		}
	case FrameList:
		if d.body != 0 {
			return d.fail("a list frame after the answer began")
		}
		d.body = FrameList
		lo, hi = 1, MaxListBytes
	case FrameTrailer:
		if d.body != 0 && d.body != FrameOutput {
			return d.fail("a trailer in a %s answer", frameName(d.body))
		}
		lo, hi = 1, MaxTrailerBytes
	case FrameCheckpoint:
		if d.body != 0 {
			return d.fail("a checkpoint frame after the answer began")
		}
		d.body = FrameCheckpoint
		lo, hi = 1, MaxNoteBytes
	case FrameAudit:
		if d.body != 0 && d.body != FrameAudit {
			return d.fail("an audit frame in a %s answer", frameName(d.body))
		}
		d.body = FrameAudit
		lo, hi = 1, MaxChunkBytes
	case FrameEnd:
		if d.body != 0 && d.body != FrameAudit {
			return d.fail("an end frame in a %s answer", frameName(d.body))
		}
		d.body = FrameAudit
		lo, hi = endBytes, endBytes
	default:
		return d.fail("unknown frame type %s", frameName(d.typ))
	}
	if l < lo || l > hi {
		return d.fail("%s frame of %d bytes, want %d-%d", frameName(d.typ), l, lo, hi)
	}
	d.remain = int(l)
	d.whole = d.whole[:0]
	return nil
}

// end finishes the current frame and delivers it.
func (d *Decoder) end() error {
	d.nhdr = 0
	var err error
	switch d.typ {
	case FrameHello:
		s := string(d.whole)
		v, ok := strings.CutPrefix(s, HelloPrefix)
		if !ok || v == "" || badText(v) != "" {
			return d.fail("hello %s is not %s<version>", show(s), HelloPrefix)
		}
		d.hello = true
		if d.h.Hello != nil {
			err = d.h.Hello(v)
		}
	case FrameKeepalive:
		if d.h.Keepalive != nil {
			err = d.h.Keepalive()
		}
	case FrameList:
		// A list answer is complete with its document.
		d.done = true
		if d.h.List != nil {
			err = d.h.List(append([]byte(nil), d.whole...))
		}
	case FrameCheckpoint:
		// An audit-head answer is complete with its checkpoint.
		d.done = true
		if d.h.Checkpoint != nil {
			err = d.h.Checkpoint(append([]byte(nil), d.whole...))
		}
	case FrameEnd:
		// No records after seq is an answer too: hello then end.
		d.done = true
		if d.h.End != nil {
			err = d.h.End(binary.BigEndian.Uint64(d.whole))
		}
	case FrameTrailer:
		// A command may print nothing: hello then trailer is a run.
		t, perr := ParseTrailer(string(d.whole))
		if perr != nil {
			return d.fail("%v", perr)
		}
		d.done = true
		if d.h.Trailer != nil {
			err = d.h.Trailer(t)
		}
	}
	d.whole = d.whole[:0]
	if err != nil {
		d.err = err
	}
	return err
}

// Close reports a stream that ended before its last frame (a trailer, a
// list, a checkpoint or an end).
func (d *Decoder) Close() error {
	if d.err != nil {
		return d.err
	}
	if !d.done {
		if d.off == 0 {
			return d.fail("empty stream")
		}
		return d.fail("stream ended after %d bytes without a trailer", d.off)
	}
	return nil
}

// Done reports whether the trailer was read.
func (d *Decoder) Done() bool { return d.done }

// Offset is the number of stream bytes consumed.
func (d *Decoder) Offset() int64 { return d.off }

// frameName names a frame type for messages.
func frameName(t byte) string {
	switch t {
	case FrameHello:
		return "hello"
	case FrameOutput:
		return "output"
	case FrameKeepalive:
		return "keepalive"
	case FrameList:
		return "list"
	case FrameTrailer:
		return "trailer"
	case FrameCheckpoint:
		return "checkpoint"
	case FrameAudit:
		return "audit"
	case FrameEnd:
		return "end"
	}
	return fmt.Sprintf("0x%02x", t)
}
