package telegram

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestWebhook(t *testing.T) {
	secret := RandomSecret()
	body := textUpdate(10, "/disk")
	tests := []struct {
		name       string
		method     string
		header     *string
		body       string
		wantStatus int
		wantCalls  int
	}{
		{"right secret", "POST", &secret, body, 200, 1},
		{"wrong secret", "POST", ptr(secret[:len(secret)-1] + "x"), body, 401, 0},
		{"secret prefix", "POST", ptr(secret[:10]), body, 401, 0},
		{"missing secret", "POST", nil, body, 401, 0},
		{"GET", "GET", &secret, "", 405, 0},
		{"oversized body", "POST", &secret, textUpdate(11, strings.Repeat("x", 5000)), 413, 0},
		{"malformed json", "POST", &secret, "{", 400, 0},
		{"undecodable update acknowledged", "POST", &secret, `{"update_id":12,"message":[]}`, 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "http://127.0.0.1:1")
			calls := 0
			wh := h.c.WebhookHandler(secret, 4096, func(context.Context, Update) { calls++ })
			req := httptest.NewRequest(tt.method, "/telegram/x", strings.NewReader(tt.body))
			if tt.header != nil {
				req.Header.Set(SecretHeader, *tt.header)
			}
			rr := httptest.NewRecorder()
			wh.ServeHTTP(rr, req)
			if rr.Code != tt.wantStatus {
				t.Errorf("status: got %d, want %d", rr.Code, tt.wantStatus)
			}
			if calls != tt.wantCalls {
				t.Errorf("handler calls: got %d, want %d", calls, tt.wantCalls)
			}
			if strings.Contains(h.logs.String(), secret) {
				t.Errorf("logs hold the webhook secret")
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestWebhookInvalidSecretFailsClosed: a handler built with an empty (or
// malformed) secret must not accept a request that sends the same empty
// value.
func TestWebhookInvalidSecretFailsClosed(t *testing.T) {
	for _, secret := range []string{"", "short", "has space in it!!"} {
		h := newHarness(t, "http://127.0.0.1:1")
		wh := h.c.WebhookHandler(secret, 4096, func(context.Context, Update) { t.Errorf("handler called with secret %q", secret) })
		req := httptest.NewRequest("POST", "/x", strings.NewReader(textUpdate(1, "/x")))
		req.Header.Set(SecretHeader, secret)
		rr := httptest.NewRecorder()
		wh.ServeHTTP(rr, req)
		if rr.Code != http.StatusUnauthorized {
			t.Errorf("secret %q: got %d, want 401", secret, rr.Code)
		}
	}
}

func TestWebhookOrderAndRedelivery(t *testing.T) {
	secret := RandomSecret()
	h := newHarness(t, "http://127.0.0.1:1")
	var mu sync.Mutex
	var got []int64
	wh := h.c.WebhookHandler(secret, 1<<20, func(_ context.Context, u Update) {
		mu.Lock()
		got = append(got, u.ID)
		mu.Unlock()
	})
	post := func(id int64) int {
		req := httptest.NewRequest("POST", "/x", strings.NewReader(textUpdate(id, "/x")))
		req.Header.Set(SecretHeader, secret)
		rr := httptest.NewRecorder()
		wh.ServeHTTP(rr, req)
		return rr.Code
	}
	for _, id := range []int64{1, 2, 2, 1, 3} {
		if code := post(id); code != 200 {
			t.Errorf("update %d: got %d, want 200", id, code)
		}
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("handed over: got %v, want [1 2 3] (redeliveries acknowledged, not re-run)", got)
	}
}

func TestRandomPathAndSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p, s := RandomPath(), RandomSecret()
		if !regexp.MustCompile(`^/telegram/[A-Za-z0-9_-]{32}$`).MatchString(p) {
			t.Fatalf("RandomPath() = %q, want /telegram/ and 32 url-safe characters", p)
		}
		if !secretFormat().MatchString(s) || len(s) < 43 {
			t.Fatalf("RandomSecret() = %q, want 43+ characters of [A-Za-z0-9_-]", s)
		}
		if seen[p] || seen[s] {
			t.Fatalf("repeated random value")
		}
		seen[p], seen[s] = true, true
	}
}

func TestSetWebhookRequest(t *testing.T) {
	var form map[string]string
	f := newFake(t, map[string]http.HandlerFunc{
		"setWebhook": func(w http.ResponseWriter, r *http.Request) {
			r.ParseMultipartForm(1 << 20)
			form = map[string]string{}
			for k, v := range r.MultipartForm.Value {
				form[k] = v[0]
			}
			apiOK(w, true)
		},
	})
	h := newHarness(t, f.srv.URL)
	secret := RandomSecret()
	if err := h.c.SetWebhook(testCtx(t), "https://relay.example.com/telegram/abc", secret); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"url": "https://relay.example.com/telegram/abc", "secret_token": secret, "max_connections": "1",
		"allowed_updates": `["message","edited_message","callback_query","stopped_message_generation"]`,
	}
	for k, v := range want {
		if form[k] != v {
			t.Errorf("%s: got %q, want %q", k, form[k], v)
		}
	}
	if _, ok := form["drop_pending_updates"]; ok {
		t.Errorf("drop_pending_updates sent: the backlog must be kept for the auth layer to judge")
	}
}
