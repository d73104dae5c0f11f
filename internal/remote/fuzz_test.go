package remote

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParseRequest: whatever SSH_ORIGINAL_COMMAND holds, the parser never
// panics, and what it accepts is shell-inert and the one canonical
// encoding of what it parsed.
func FuzzParseRequest(f *testing.F) {
	r := &Request{Op: OpRun, Call: CallID{1, 2, 3}, Command: "disk", Args: []string{"/", "-h"}, MaxOutput: 1 << 20}
	s, _ := r.Encode()
	f.Add(s)
	f.Add("true")
	f.Add(s + "; rm -rf /")
	s, _ = (&Request{Op: OpAuditSince, Call: CallID{4}, Since: 41}).Encode()
	f.Add(s)
	s, _ = (&Request{Op: OpAuditWitnessed, Call: CallID{5}, Note: []byte(sampleNote)}).Encode()
	f.Add(s)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRequest(s)
		if err != nil {
			if e, ok := err.(*Error); !ok || (e.Exit != ExitMalformed && e.Exit != ExitVersion) {
				t.Fatalf("got %T %v, want an *Error with a request code", err, err)
			}
			return
		}
		if !ShellInert(s) {
			t.Fatalf("accepted %q, which is not shell-inert", s)
		}
		again, err := r.Encode()
		if err != nil || again != s {
			t.Fatalf("re-encoding gave %q, %v; want %q", again, err, s)
		}
	})
}

// FuzzParseTrailer: the parser never panics and accepts only what Format
// writes.
func FuzzParseTrailer(f *testing.F) {
	s, _ := sampleTrailer().Format()
	f.Add(s)
	f.Add(TrailerPrefix)
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ParseTrailer(s)
		if err != nil {
			return
		}
		again, err := tr.Format()
		if err != nil || again != s {
			t.Fatalf("re-formatting gave %q, %v; want %q", again, err, s)
		}
	})
}

// FuzzDecodeStream: a member's stream, cut anywhere, never panics the
// decoder, and the output it reports is exactly the stream bytes at the
// offsets it names.
func FuzzDecodeStream(f *testing.F) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Hello("v1")
	w.Output([]byte("out"))
	w.Keepalive()
	w.Trailer(sampleTrailer())
	f.Add(b.Bytes(), uint8(3))
	f.Add([]byte("Filesystem\n"), uint8(1))
	b.Reset()
	w.Hello("v1")
	w.AuditWriter().Write([]byte(`{"seq":2}` + "\n"))
	w.End(1)
	f.Add(b.Bytes(), uint8(2))
	b.Reset()
	w.Hello("v1")
	w.Checkpoint([]byte(sampleNote))
	f.Add(b.Bytes(), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		n := int(step%64) + 1
		var out []byte
		dec := NewDecoder(Handler{
			Output: func(p []byte, off int64) error {
				if !bytes.Equal(data[off:off+int64(len(p))], p) {
					t.Fatalf("output piece at %d is not the stream's bytes", off)
				}
				out = append(out, p...)
				return nil
			},
			List: func(doc []byte) error {
				if len(doc) == 0 || len(doc) > MaxListBytes {
					t.Fatalf("list of %d bytes", len(doc))
				}
				return nil
			},
			Checkpoint: func(note []byte) error {
				if len(note) == 0 || len(note) > MaxNoteBytes {
					t.Fatalf("checkpoint of %d bytes", len(note))
				}
				return nil
			},
			Audit: func(p []byte) error {
				if len(p) == 0 || len(p) > MaxChunkBytes {
					t.Fatalf("audit piece of %d bytes", len(p))
				}
				return nil
			},
		})
		rest := data
		for len(rest) > 0 {
			k := min(n, len(rest))
			if _, err := dec.Write(rest[:k]); err != nil {
				return
			}
			rest = rest[k:]
		}
		if dec.Close() == nil && dec.Offset() != int64(len(data)) {
			t.Fatalf("decoded %d of %d bytes", dec.Offset(), len(data))
		}
	})
}

// FuzzParseList: a member's allowlist document never panics the hub, and
// what is accepted re-seals to the same digest.
func FuzzParseList(f *testing.F) {
	l := &List{Version: "v1", Commands: []ListCommand{{Name: "disk", Description: "disk usage", Usage: "/disk", Params: []ListParam{{Name: "path", Type: "path"}}}}}
	l.Seal()
	doc, _ := l.Marshal()
	f.Add(doc)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		l, err := ParseList(doc)
		if err != nil {
			return
		}
		d := l.Digest
		l.Seal()
		if l.Digest != d {
			t.Fatal("accepted a list whose digest does not match")
		}
	})
}

func TestSeedCorporaNotEmpty(t *testing.T) {
	for _, name := range []string{"FuzzParseRequest", "FuzzParseTrailer", "FuzzDecodeStream", "FuzzParseList"} {
		ents, err := os.ReadDir("testdata/fuzz/" + name)
		if err != nil || len(ents) == 0 {
			t.Errorf("seed corpus %s: got %d files (%v), want some", name, len(ents), err)
		}
	}
}
