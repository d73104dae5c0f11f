package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// queue models Telegram's getUpdates semantics: a request with offset N
// confirms, and drops, every update below N; the rest are returned (up to
// limit), or the request waits for one until its timeout.
type queue struct {
	mu      sync.Mutex
	updates []queued
	offsets []int64 // offset of every getUpdates request, in order
	wake    chan struct{}
}

type queued struct {
	id  int64
	raw string
}

func newQueue() *queue { return &queue{wake: make(chan struct{})} }

func (q *queue) push(id int64, raw string) {
	q.mu.Lock()
	q.updates = append(q.updates, queued{id, raw})
	close(q.wake)
	q.wake = make(chan struct{})
	q.mu.Unlock()
}

func (q *queue) Offsets() []int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]int64(nil), q.offsets...)
}

func (q *queue) handler(w http.ResponseWriter, r *http.Request) {
	var req getUpdatesRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, 400, "Bad Request: "+err.Error(), 0)
		return
	}
	deadline := time.After(time.Duration(req.Timeout) * time.Second)
	q.mu.Lock()
	q.offsets = append(q.offsets, req.Offset)
	q.mu.Unlock()
	for {
		q.mu.Lock()
		var out []json.RawMessage
		kept := q.updates[:0]
		for _, u := range q.updates {
			if u.id < req.Offset {
				continue // confirmed
			}
			kept = append(kept, u)
			if len(out) < req.Limit {
				out = append(out, json.RawMessage(u.raw))
			}
		}
		q.updates = kept
		wake := q.wake
		q.mu.Unlock()
		if len(out) > 0 || req.Timeout == 0 {
			apiOK(w, out)
			return
		}
		select {
		case <-wake:
		case <-deadline:
			apiOK(w, []any{})
			return
		case <-r.Context().Done():
			return
		}
	}
}

func textUpdate(id int64, text string) string {
	b, _ := json.Marshal(map[string]any{
		"update_id": id,
		"message": map[string]any{
			"message_id": id * 10, "date": 1700000000 + id, "text": text,
			"from": map[string]any{"id": 7, "is_bot": false, "first_name": "o"},
			"chat": map[string]any{"id": 7, "type": "private"},
		},
	})
	return string(b)
}

// recorder collects handled updates and signals each one.
type recorder struct {
	mu   sync.Mutex
	got  []Update
	seen chan Update
}

func newRecorder() *recorder { return &recorder{seen: make(chan Update, 100)} }

func (r *recorder) handle(_ context.Context, u Update) {
	r.mu.Lock()
	r.got = append(r.got, u)
	r.mu.Unlock()
	r.seen <- u
}

func (r *recorder) IDs() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []int64
	for _, u := range r.got {
		ids = append(ids, u.ID)
	}
	return ids
}

func waitFor(t *testing.T, ch <-chan Update, n int) {
	t.Helper()
	for range n {
		select {
		case <-ch:
		case <-time.After(30 * time.Second): // hang guard
			t.Fatalf("timed out waiting for updates")
		}
	}
}

// startPoll runs Poll in the background and returns a stop function that
// cancels it and returns its error.
func startPoll(t *testing.T, c *Client, handle func(context.Context, Update)) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- c.Poll(ctx, handle) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("Poll did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestPollDeliversInOrderAndConfirmsOnStop(t *testing.T) {
	q := newQueue()
	for id := int64(100); id < 103; id++ {
		q.push(id, textUpdate(id, fmt.Sprintf("/echo %d", id)))
	}
	f := newFake(t, map[string]http.HandlerFunc{"getUpdates": q.handler})
	h := newHarness(t, f.srv.URL)
	rec := newRecorder()
	stop := startPoll(t, h.c, rec.handle)
	waitFor(t, rec.seen, 3)
	if err := stop(); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if got := fmt.Sprint(rec.IDs()); got != "[100 101 102]" {
		t.Errorf("handled: got %s, want [100 101 102]", got)
	}
	offs := q.Offsets()
	if last := offs[len(offs)-1]; last != 103 {
		t.Errorf("last offset sent: got %d, want 103 (handled updates confirmed on stop); all %v", last, offs)
	}
	if u := rec.got[0]; u.Kind != KindMessage || u.Text != "/echo 100" || u.ChatID != 7 || u.UserID != 7 || u.MessageID != 1000 || u.Date.Unix() != 1700000100 {
		t.Errorf("decoded update: got %+v", u)
	}
	if logs := h.logs.String(); strings.Contains(logs, "/echo") {
		t.Errorf("logs hold message text: %s", logs)
	}
}

// TestPollConfirmsOnlyAfterHandle simulates a crash in the middle of a
// handler: while it runs, the offset past that update is never sent, so a
// new process polling the same bot gets the update again.
func TestPollConfirmsOnlyAfterHandle(t *testing.T) {
	q := newQueue()
	q.push(5, textUpdate(5, "/disk"))
	f := newFake(t, map[string]http.HandlerFunc{"getUpdates": q.handler})

	entered := make(chan struct{})
	release := make(chan struct{})
	first := newHarness(t, f.srv.URL)
	stop := startPoll(t, first.c, func(context.Context, Update) {
		close(entered)
		<-release
	})
	<-entered
	for _, off := range q.Offsets() {
		if off > 5 {
			t.Fatalf("offset %d sent while update 5 was still being handled", off)
		}
	}
	// "Restart": a second client sees the update again.
	second := newHarness(t, f.srv.URL)
	rec := newRecorder()
	stop2 := startPoll(t, second.c, rec.handle)
	waitFor(t, rec.seen, 1)
	stop2()
	if got := rec.IDs(); len(got) != 1 || got[0] != 5 {
		t.Errorf("redelivered: got %v, want [5]", got)
	}
	close(release)
	stop()
}

func TestPollPanickingHandler(t *testing.T) {
	q := newQueue()
	q.push(1, textUpdate(1, "/a"))
	q.push(2, textUpdate(2, "/login 123456"))
	q.push(3, textUpdate(3, "/c"))
	f := newFake(t, map[string]http.HandlerFunc{"getUpdates": q.handler})
	h := newHarness(t, f.srv.URL)
	var mu sync.Mutex
	calls := map[int64]int{}
	done := make(chan struct{})
	stop := startPoll(t, h.c, func(_ context.Context, u Update) {
		mu.Lock()
		calls[u.ID]++
		mu.Unlock()
		if u.ID == 2 {
			panic("handler failed on " + u.Text)
		}
		if u.ID == 3 {
			close(done)
		}
	})
	<-done
	// Let the loop poll again, so that a re-run of update 2 would show.
	q.push(4, textUpdate(4, "/d"))
	for len(q.Offsets()) < 3 {
		time.Sleep(time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls[1] != 1 || calls[2] != 1 || calls[3] != 1 {
		t.Errorf("handle calls per update: got %v, want each of 1, 2, 3 exactly once", calls)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"update_id":2`) || !strings.Contains(logs, "panicked") {
		t.Errorf("panic not logged with its update id: %s", logs)
	}
	if strings.Contains(logs, "123456") || strings.Contains(logs, "login") {
		t.Errorf("panic log holds message text: %s", logs)
	}
}

func TestPollSurvivesTransportFaults(t *testing.T) {
	q := newQueue()
	q.push(1, textUpdate(1, "/a"))
	dropped := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	f := newFake(t, map[string]http.HandlerFunc{
		"getUpdates": sequence(dropped, echoPage(502), failWith(429, "Too Many Requests: retry after 7", 7), q.handler),
	})
	h := newHarness(t, f.srv.URL)
	rec := newRecorder()
	stop := startPoll(t, h.c, rec.handle)
	waitFor(t, rec.seen, 1)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	waits := h.sleep.Waits()
	if len(waits) != 3 {
		t.Fatalf("waits: got %v, want backoff, backoff, 7s", waits)
	}
	if waits[0] < backoffBase/2 || waits[0] > backoffBase || waits[1] < backoffBase || waits[1] > 2*backoffBase {
		t.Errorf("backoffs: got %v, %v; want in [%v,%v] and [%v,%v]", waits[0], waits[1], backoffBase/2, backoffBase, backoffBase, 2*backoffBase)
	}
	if waits[2] != 7*time.Second {
		t.Errorf("429 wait: got %v, want 7s", waits[2])
	}
	assertNoToken(t, "logs", h.logs.String())
}

func TestPollStopsOnRejectedToken(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{"getUpdates": failWith(401, "Unauthorized", 0)})
	h := newHarness(t, f.srv.URL)
	err := h.c.Poll(testCtx(t), func(context.Context, Update) { t.Error("handler called") })
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("got %v, want ErrUnauthorized", err)
	}
	assertNoToken(t, "error", err.Error())
}

func TestPollGivesUpOnRepeatedConflict(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{"getUpdates": failWith(409, "Conflict: terminated by other getUpdates request", 0)})
	h := newHarness(t, f.srv.URL, func(o *Options) { o.MaxRetries = 2 })
	err := h.c.Poll(testCtx(t), func(context.Context, Update) {})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
	if got := f.Calls("getUpdates"); got != 3 {
		t.Errorf("getUpdates calls: got %d, want 3", got)
	}
}

func TestPollOnlyOneAtATime(t *testing.T) {
	q := newQueue()
	f := newFake(t, map[string]http.HandlerFunc{"getUpdates": q.handler})
	h := newHarness(t, f.srv.URL)
	stop := startPoll(t, h.c, func(context.Context, Update) {})
	for len(q.Offsets()) == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := h.c.Poll(testCtx(t), func(context.Context, Update) {}); err == nil {
		t.Errorf("second Poll: got nil, want an error")
	}
	stop()
}

// TestPollMalformedEntity feeds a real-looking update whose bot_command
// entity points far outside the text (the library's handler matching
// slices with it and panics): the update is delivered whole.
func TestPollMalformedEntity(t *testing.T) {
	q := newQueue()
	q.push(1, `{"update_id":1,"message":{"message_id":3,"date":1700000000,"text":"/disk now",`+
		`"from":{"id":7,"is_bot":false,"first_name":"o"},"chat":{"id":7,"type":"private"},`+
		`"entities":[{"type":"bot_command","offset":900000,"length":-5},{"type":"bot_command","offset":2,"length":99999999999}]}}`)
	q.push(2, `{"update_id":2,"message":"not an object"}`) // poison: skipped
	q.push(3, textUpdate(3, "/after"))
	f := newFake(t, map[string]http.HandlerFunc{"getUpdates": q.handler})
	h := newHarness(t, f.srv.URL)
	rec := newRecorder()
	stop := startPoll(t, h.c, rec.handle)
	waitFor(t, rec.seen, 2)
	stop()
	if ids := fmt.Sprint(rec.IDs()); ids != "[1 3]" {
		t.Fatalf("handled: got %s, want [1 3] (2 is undecodable)", ids)
	}
	u := rec.got[0]
	name, args, ok := ParseCommand(u.Text)
	if u.Text != "/disk now" || name != "disk" || args != "now" || !ok {
		t.Errorf("got text %q → (%q, %q, %v), want /disk now → (disk, now, true)", u.Text, name, args, ok)
	}
	if !strings.Contains(h.logs.String(), `"update_id":2`) {
		t.Errorf("skipped update not logged by id")
	}
}
