package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testToken has the shape of a real token; it is only ever sent to the
// tests' own loopback servers.
const (
	testToken  = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
	testSecret = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
)

// syncBuffer is a log sink that goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sleeper records the waits the client asks for instead of waiting.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeper) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// fakeAPI is a small Bot API stand-in: handlers by method name, call
// counts, and a 404 for any path that does not carry the test token.
type fakeAPI struct {
	srv      *httptest.Server
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	calls    map[string]int
}

func newFake(t testing.TB, handlers map[string]http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{handlers: handlers, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+testToken+"/")
	if !ok {
		apiError(w, 404, "Not Found", 0)
		return
	}
	f.mu.Lock()
	f.calls[method]++
	h := f.handlers[method]
	f.mu.Unlock()
	if h == nil {
		apiError(w, 404, "Not Found: method not found", 0)
		return
	}
	h(w, r)
}

func (f *fakeAPI) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func apiOK(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func apiError(w http.ResponseWriter, code int, desc string, retryAfter int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]any{"ok": false, "error_code": code, "description": desc}
	if retryAfter > 0 {
		body["parameters"] = map[string]any{"retry_after": retryAfter}
	}
	json.NewEncoder(w).Encode(body)
}

// sequence answers the i-th call with steps[i], repeating the last step.
func sequence(steps ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := min(n, len(steps)-1)
		n++
		mu.Unlock()
		steps[i](w, r)
	}
}

func sentMessage(id int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		apiOK(w, map[string]any{"message_id": id, "date": 1, "chat": map[string]any{"id": 42, "type": "private"}})
	}
}

func failWith(code int, desc string, retryAfter int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { apiError(w, code, desc, retryAfter) }
}

// echoPage answers like a misconfigured proxy: an HTML error page quoting
// the request path, which holds the token.
func echoPage(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><body><h1>%d</h1><p>upstream failed for %s (%s)</p></body></html>", status, r.URL.Path, r.URL.String())
	}
}

type harness struct {
	c     *Client
	sleep *sleeper
	logs  *syncBuffer
}

func newHarness(t *testing.T, apiURL string, edit ...func(*Options)) *harness {
	t.Helper()
	h := &harness{sleep: &sleeper{}, logs: &syncBuffer{}}
	o := Options{
		Token:       testToken,
		APIURL:      apiURL,
		PollTimeout: 2 * time.Second,
		Logger:      zerolog.New(h.logs).Level(zerolog.DebugLevel),
		Sleep:       h.sleep.Sleep,
	}
	for _, e := range edit {
		e(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.c = c
	return h
}

// assertNoToken fails if s holds the token or its secret half.
func assertNoToken(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, testSecret) || strings.Contains(s, "AAHdqTcvCH1vGWJx") {
		t.Errorf("%s reveals the token: %q", what, s)
	}
}

// testCtx is a hang guard, not a timing assumption.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
