package remote

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleTrailer() *Trailer {
	return &Trailer{Exit: 0, DurationMS: 12, Bytes: 5, Kept: 5, Sent: 5,
		SHA256: strings.Repeat("ab", 32), AuditSeq: 42, AuditMAC: "0123456789abcdef"}
}

func TestTrailerRoundTrip(t *testing.T) {
	for _, tr := range []*Trailer{
		sampleTrailer(),
		{Exit: -1, Signal: "SIGKILL", TimedOut: true, DurationMS: 30000, Bytes: 1 << 40, Kept: 1 << 30, Sent: 1 << 20,
			SHA256: strings.Repeat("0", 64), AuditSeq: 1, AuditMAC: strings.Repeat("f", 16)},
		{Exit: 255, Canceled: true, SHA256: strings.Repeat("e", 64), AuditSeq: 1<<63 - 1, AuditMAC: strings.Repeat("1", 16)},
	} {
		s, err := tr.Format()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseTrailer(s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		if !reflect.DeepEqual(got, tr) {
			t.Errorf("got %+v, want %+v", got, tr)
		}
	}
}

func TestTrailerStrict(t *testing.T) {
	good, _ := sampleTrailer().Format()
	for name, s := range map[string]string{
		"trailing space":    good + " ",
		"double space":      strings.Replace(good, " ", "  ", 1),
		"extra field":       good + " x=1",
		"swapped keys":      strings.Replace(good, "bytes=5 kept=5", "kept=5 bytes=5", 1),
		"leading zero":      strings.Replace(good, "duration_ms=12", "duration_ms=012", 1),
		"plus sign":         strings.Replace(good, "duration_ms=12", "duration_ms=+12", 1),
		"minus zero":        strings.Replace(good, "exit=0", "exit=-0", 1),
		"exit out of range": strings.Replace(good, "exit=0", "exit=256", 1),
		"signal with exit":  strings.Replace(good, "signal=-", "signal=SIGKILL", 1),
		"lower-case signal": strings.Replace(strings.Replace(good, "signal=-", "signal=sigkill", 1), "exit=0", "exit=-1", 1),
		"empty signal":      strings.Replace(good, "signal=-", "signal=", 1),
		"flag 2":            strings.Replace(good, "timed_out=0", "timed_out=2", 1),
		"sent over kept":    strings.Replace(good, "sent=5", "sent=6", 1),
		"upper-case hex":    strings.Replace(good, "abab", "ABAB", 1),
		"short mac":         strings.Replace(good, "0123456789abcdef", "0123456789abcde", 1),
		"seq zero":          strings.Replace(good, "audit_seq=42", "audit_seq=0", 1),
		"other version":     strings.Replace(good, TrailerPrefix, "relay-trailer-v2", 1),
		"newline":           good + "\n",
	} {
		if _, err := ParseTrailer(s); err == nil {
			t.Errorf("%s: %q accepted", name, s)
		}
	}
}

// stream builds a stream with a Writer.
func stream(t *testing.T, f func(w *Writer)) []byte {
	t.Helper()
	var b bytes.Buffer
	f(NewWriter(&b))
	return b.Bytes()
}

type decoded struct {
	version string
	output  []byte
	offs    []int64
	lens    []int
	keep    int
	list    []byte
	trailer *Trailer
}

func decode(data []byte, step int) (*decoded, error) {
	var d decoded
	dec := NewDecoder(Handler{
		Hello: func(v string) error { d.version = v; return nil },
		Output: func(p []byte, off int64) error {
			d.output = append(d.output, p...)
			d.offs = append(d.offs, off)
			d.lens = append(d.lens, len(p))
			return nil
		},
		Keepalive: func() error { d.keep++; return nil },
		List:      func(doc []byte) error { d.list = doc; return nil },
		Trailer:   func(t *Trailer) error { d.trailer = t; return nil },
	})
	for len(data) > 0 {
		n := min(step, len(data))
		if _, err := dec.Write(data[:n]); err != nil {
			return &d, err
		}
		data = data[n:]
	}
	return &d, dec.Close()
}

func TestStreamRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 20000) // several chunks
	data := stream(t, func(w *Writer) {
		w.Hello("v1.2.3")
		w.Output([]byte("hello "))
		w.Keepalive()
		w.Output(big)
		w.Trailer(sampleTrailer())
	})
	for _, step := range []int{1, 3, 5, 4096, len(data)} {
		d, err := decode(data, step)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if d.version != "v1.2.3" || d.keep != 1 || !bytes.Equal(d.output, append([]byte("hello "), big...)) || d.trailer == nil {
			t.Errorf("step %d: got version %q, %d keepalives, %d output bytes, trailer %v", step, d.version, d.keep, len(d.output), d.trailer)
		}
		// Each piece's offset points at its bytes inside the stream.
		pos := 0
		for i, off := range d.offs {
			n := d.lens[i]
			if !bytes.Equal(data[off:off+int64(n)], d.output[pos:pos+n]) {
				t.Fatalf("step %d: piece %d at stream offset %d is not output bytes %d..%d", step, i, off, pos, pos+n)
			}
			pos += n
		}
	}
	// A command that prints nothing: hello, then the trailer.
	if d, err := decode(stream(t, func(w *Writer) { w.Hello("v1"); w.Trailer(sampleTrailer()) }), 3); err != nil || d.trailer == nil || len(d.output) != 0 {
		t.Errorf("a silent run: got %+v, %v", d, err)
	}
	list := stream(t, func(w *Writer) {
		w.Hello("v1")
		w.List([]byte(`{"x":1}`))
	})
	if d, err := decode(list, 2); err != nil || string(d.list) != `{"x":1}` {
		t.Errorf("list: got %q, %v", d.list, err)
	}
}

// TestStreamAudit: the witness's answers come back whole, however the
// stream is cut: a checkpoint, and record lines (a line split across two
// frames) with the end frame's count.
func TestStreamAudit(t *testing.T) {
	note := []byte("origin\n3\nAAAA\n\n— origin sig\n")
	head := stream(t, func(w *Writer) { w.Hello("v1"); w.Checkpoint(note) })
	lines := bytes.Repeat([]byte(`{"seq":1}`+"\n"), 10000)
	since := stream(t, func(w *Writer) {
		w.Hello("v1")
		w.AuditWriter().Write(lines)
		w.End(10000)
	})
	for _, step := range []int{1, 7, 4096, len(since)} {
		var cp, got []byte
		var end uint64
		dec := NewDecoder(Handler{
			Checkpoint: func(n []byte) error { cp = n; return nil },
			Audit:      func(p []byte) error { got = append(got, p...); return nil },
			End:        func(n uint64) error { end = n; return nil },
		})
		for _, data := range [][]byte{head, since} {
			for rest := data; len(rest) > 0; {
				k := min(step, len(rest))
				if _, err := dec.Write(rest[:k]); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				rest = rest[k:]
			}
			if err := dec.Close(); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			dec = NewDecoder(dec.h)
		}
		if !bytes.Equal(cp, note) || !bytes.Equal(got, lines) || end != 10000 {
			t.Errorf("step %d: got checkpoint %q, %d record bytes, end %d", step, cp, len(got), end)
		}
	}
	// Nothing after seq is an answer: hello, then end.
	if _, err := decode(stream(t, func(w *Writer) { w.Hello("v1"); w.End(0) }), 3); err != nil {
		t.Errorf("an empty audit-since: %v", err)
	}
}

func TestStreamStrict(t *testing.T) {
	frame := func(typ byte, n int) []byte {
		var b bytes.Buffer
		NewWriter(&b).frame(typ, bytes.Repeat([]byte("x"), n))
		return b.Bytes()
	}
	hello := stream(t, func(w *Writer) { w.Hello("v1") })
	tr := stream(t, func(w *Writer) { w.Trailer(sampleTrailer()) })
	out := stream(t, func(w *Writer) { w.Output([]byte("x")) })
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, data := range map[string][]byte{
		"empty":                   nil,
		"shell output":            []byte("Filesystem Size Used\n"),
		"output before hello":     cat(out, hello, tr),
		"two hellos":              cat(hello, hello, out, tr),
		"no trailer":              cat(hello, out),
		"bytes after the trailer": cat(hello, out, tr, []byte("x")),
		"list inside a run":       cat(hello, out, frame(FrameList, 3), tr),
		"output inside a list":    cat(hello, frame(FrameList, 3), out, tr),
		"trailer after a list":    cat(hello, frame(FrameList, 3), tr),
		"empty output frame":      cat(hello, frame(FrameOutput, 0), tr),
		"oversized output frame":  cat(hello, frame(FrameOutput, MaxChunkBytes+1), tr),
		"keepalive with payload":  cat(hello, frame(FrameKeepalive, 1), tr),
		"unknown frame":           cat(hello, frame('Z', 1), tr),
		"bad hello":               cat(frame(FrameHello, 20), out, tr),
		"truncated header":        cat(hello, out[:3]),
		"huge length":             cat(hello, []byte{FrameList, 0xff, 0xff, 0xff, 0xff}),
		// The witness's answers: a cut-off record stream is never the
		// log's end, and nothing mixes with a run.
		"records without their end":   cat(hello, frame(FrameAudit, 3)),
		"records after the end":       cat(hello, frame(FrameEnd, 8), frame(FrameAudit, 3)),
		"short end":                   cat(hello, frame(FrameAudit, 3), frame(FrameEnd, 7)),
		"records inside a run":        cat(hello, out, frame(FrameAudit, 3), tr),
		"output inside records":       cat(hello, frame(FrameAudit, 3), out, frame(FrameEnd, 8)),
		"trailer ending records":      cat(hello, frame(FrameAudit, 3), tr),
		"end after a checkpoint":      cat(hello, frame(FrameCheckpoint, 3), frame(FrameEnd, 8)),
		"checkpoint inside records":   cat(hello, frame(FrameAudit, 3), frame(FrameCheckpoint, 3), frame(FrameEnd, 8)),
		"two checkpoints":             cat(hello, frame(FrameCheckpoint, 3), frame(FrameCheckpoint, 3)),
		"oversized checkpoint":        cat(hello, frame(FrameCheckpoint, MaxNoteBytes+1)),
		"empty checkpoint":            cat(hello, frame(FrameCheckpoint, 0)),
		"checkpoint before the hello": cat(frame(FrameCheckpoint, 3)),
		"empty audit frame":           cat(hello, frame(FrameAudit, 0), frame(FrameEnd, 8)),
	} {
		if _, err := decode(data, 7); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.As(err, new(*ProtocolError)) {
			t.Errorf("%s: got %v, want a *ProtocolError", name, err)
		}
	}
}
