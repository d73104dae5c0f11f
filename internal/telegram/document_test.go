package telegram

import (
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// patternReader yields n deterministic bytes without holding them.
type patternReader struct {
	n, off int64
	closed atomic.Bool
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := min(int64(len(b)), p.n-p.off)
	for i := range k {
		b[i] = byte((p.off + i) * 7 % 251)
	}
	p.off += k
	return int(k), nil
}

func (p *patternReader) Close() error { p.closed.Store(true); return nil }

func patternSum(n int64) []byte {
	h := sha256.New()
	io.Copy(h, &patternReader{n: n})
	return h.Sum(nil)
}

// docSink is a sendDocument endpoint that streams the upload into a hash
// instead of buffering it.
type docSink struct {
	mu       sync.Mutex
	sum      []byte
	size     int64
	filename string
	caption  string
	fail     []http.HandlerFunc // answers for the first calls, after reading the body
	calls    int
}

func (d *docSink) handler(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		apiError(w, 400, "Bad Request: not multipart", 0)
		return
	}
	var h hash.Hash
	var size int64
	var filename, caption string
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		switch part.FormName() {
		case "document":
			filename = part.FileName()
			h = sha256.New()
			size, _ = io.Copy(h, part)
		case "caption":
			b, _ := io.ReadAll(part)
			caption = string(b)
		}
	}
	d.mu.Lock()
	i := d.calls
	d.calls++
	d.mu.Unlock()
	if i < len(d.fail) {
		d.fail[i](w, r)
		return
	}
	d.mu.Lock()
	d.size, d.filename, d.caption = size, filename, caption
	if h != nil {
		d.sum = h.Sum(nil)
	}
	d.mu.Unlock()
	sentMessage(1)(w, r)
}

func TestSendDocumentStreams(t *testing.T) {
	const size = 20 << 20
	sink := &docSink{}
	f := newFake(t, map[string]http.HandlerFunc{"sendDocument": sink.handler})
	h := newHarness(t, f.srv.URL)
	var readers []*patternReader
	open := func() (io.ReadCloser, error) {
		p := &patternReader{n: size}
		readers = append(readers, p)
		return p, nil
	}

	growth := allocDuring(func() {
		if err := h.c.SendDocument(testCtx(t), 42, "disk 2024.txt", open, "<b>disk</b> · 20 MiB"); err != nil {
			t.Fatalf("SendDocument: %v", err)
		}
	})
	if sink.size != size || string(sink.sum) != string(patternSum(size)) {
		t.Fatalf("upload: got %d bytes, want %d with matching hash", sink.size, size)
	}
	if sink.filename != "disk_2024.txt" || sink.caption != "<b>disk</b> · 20 MiB" {
		t.Errorf("got filename %q caption %q", sink.filename, sink.caption)
	}
	if !readers[0].closed.Load() {
		t.Errorf("document reader not closed")
	}
	// Buffering the body would allocate at least the 20 MiB; streaming
	// allocates a few copy buffers.
	t.Logf("allocated %.2f MiB while uploading %d MiB", float64(growth)/(1<<20), size>>20)
	if growth > size/4 {
		t.Errorf("allocated %d bytes during a %d byte upload; the upload is being buffered", growth, size)
	}
}

// allocDuring returns the bytes allocated on the heap while fn ran: an
// upper bound on heap growth that does not depend on when the GC runs.
func allocDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestSendDocumentReopensForRetry(t *testing.T) {
	const size = 1 << 20
	sink := &docSink{fail: []http.HandlerFunc{failWith(429, "Too Many Requests: retry after 2", 2), echoPage(502)}}
	f := newFake(t, map[string]http.HandlerFunc{"sendDocument": sink.handler})
	h := newHarness(t, f.srv.URL)
	opens := 0
	open := func() (io.ReadCloser, error) {
		opens++
		return &patternReader{n: size}, nil
	}
	if err := h.c.SendDocument(testCtx(t), 42, "out.txt", open, ""); err != nil {
		t.Fatalf("SendDocument: %v", err)
	}
	if opens != 3 {
		t.Errorf("opens: got %d, want 3 (one per attempt)", opens)
	}
	if sink.size != size || string(sink.sum) != string(patternSum(size)) {
		t.Errorf("final upload: got %d bytes, want %d with matching hash", sink.size, size)
	}
	if w := h.sleep.Waits(); len(w) != 2 || w[0].Seconds() != 2 {
		t.Errorf("waits: got %v, want [2s backoff]", w)
	}
}

func TestSendDocumentOpenerFailureNotRetried(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{"sendDocument": sentMessage(1)})
	h := newHarness(t, f.srv.URL)
	opens := 0
	boom := errors.New("spool gone")
	err := h.c.SendDocument(testCtx(t), 1, "x", func() (io.ReadCloser, error) { opens++; return nil, boom }, "")
	if !errors.Is(err, boom) || opens != 1 || f.Calls("sendDocument") != 0 {
		t.Errorf("got err %v, %d opens, %d calls; want the opener's error, 1 open, 0 calls", err, opens, f.Calls("sendDocument"))
	}
}

func BenchmarkSendDocument20MiB(b *testing.B) {
	const size = 20 << 20
	sink := &docSink{}
	f := newFake(b, map[string]http.HandlerFunc{"sendDocument": sink.handler})
	defer f.srv.Close()
	c, err := New(Options{Token: testToken, APIURL: f.srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		err := c.SendDocument(context.Background(), 1, "x", func() (io.ReadCloser, error) { return &patternReader{n: size}, nil }, "")
		if err != nil {
			b.Fatal(err)
		}
	}
}
