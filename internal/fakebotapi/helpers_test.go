package fakebotapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// testToken has the shape of a real token; it only ever goes to the
// tests' own loopback server.
const testToken = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"

var owner = User{ID: 4242, FirstName: "Owner", Username: "owner"}

// hang is the guard against a test that would otherwise block forever; it
// is never what makes a test pass.
const hang = 30 * time.Second

func hangCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := New(testToken, opts...)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// reply is a decoded Bot API answer.
type reply struct {
	Status      int
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
	Raw string
}

var client = &http.Client{Timeout: hang}

// httpClient is a client with its own transport for the library tests.
var httpClient = http.Client{Transport: &http.Transport{}}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Raw: string(b)}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: answer is not JSON: %q", req.URL.Path, b)
	}
	if r.OK && r.Status != http.StatusOK {
		t.Fatalf("ok answer with HTTP status %d", r.Status)
	}
	if !r.OK && r.Status != r.ErrorCode {
		t.Fatalf("HTTP status %d differs from error_code %d", r.Status, r.ErrorCode)
	}
	return r
}

func methodURL(s *Server, method string) string { return s.URL() + "/bot" + testToken + "/" + method }

// call posts params as JSON.
func call(t *testing.T, s *Server, method string, params map[string]any) reply {
	t.Helper()
	b, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, methodURL(s, method), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// callForm posts params urlencoded.
func callForm(t *testing.T, s *Server, method string, v url.Values) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, methodURL(s, method), bytes.NewBufferString(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// callMultipart posts fields and at most one file as multipart/form-data.
func callMultipart(t *testing.T, s *Server, method string, fields map[string]string, fileField, fileName string, data []byte) reply {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if fileField != "" {
		w, err := mw.CreateFormFile(fileField, fileName)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, methodURL(s, method), &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return do(t, req)
}

func wantOK(t *testing.T, r reply) {
	t.Helper()
	if !r.OK {
		t.Fatalf("got error %d %q, want ok", r.ErrorCode, r.Description)
	}
}

func wantError(t *testing.T, r reply, code int, desc string) {
	t.Helper()
	if r.OK || r.ErrorCode != code || r.Description != desc {
		t.Fatalf("got ok=%v %d %q, want %d %q", r.OK, r.ErrorCode, r.Description, code, desc)
	}
}

// fakeClock is a Clock moved by hand.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []clockWaiter
	changed chan struct{}
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitWaiters blocks until n timers are pending.
func (c *fakeClock) waitWaiters(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(hang)
	for {
		c.mu.Lock()
		got, ch := len(c.waiters), c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("got %d pending timers, want %d", got, n)
		}
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
