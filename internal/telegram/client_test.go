package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"empty token", Options{}, "malformed"},
		{"token with a slash", Options{Token: "123:" + strings.Repeat("a", 30) + "/../x"}, "malformed"},
		{"token with spaces", Options{Token: " " + testToken}, "malformed"},
		{"plain http to a remote host", Options{Token: testToken, APIURL: "http://api.example.com"}, "plain http"},
		{"unknown scheme", Options{Token: testToken, APIURL: "ftp://127.0.0.1"}, "https"},
		{"credentials in url", Options{Token: testToken, APIURL: "https://u:p@example.com"}, "without credentials"},
		{"poll timeout too short", Options{Token: testToken, PollTimeout: time.Millisecond}, "below 1s"},
		{"client timeout inside poll", Options{Token: testToken, PollTimeout: 25 * time.Second, HTTPClient: &http.Client{Timeout: 30 * time.Second}}, "at least the poll timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: got error %v, want one containing %q", err, tt.want)
			}
			assertNoToken(t, "New error", err.Error())
		})
	}
	for _, u := range []string{"http://127.0.0.1:8081", "http://localhost:8081/", "http://[::1]:1", "https://api.telegram.org"} {
		if _, err := New(Options{Token: testToken, APIURL: u}); err != nil {
			t.Errorf("New(APIURL %q): %v, want nil", u, err)
		}
	}
	if _, err := New(Options{Token: testToken, APIURL: "http://10.0.0.2:8081", AllowInsecureHTTP: true}); err != nil {
		t.Errorf("New with AllowInsecureHTTP: %v, want nil", err)
	}
}

func TestClientNeverPrintsToken(t *testing.T) {
	h := newHarness(t, "http://127.0.0.1:1")
	var logs bytes.Buffer
	zl := zerolog.New(&logs)
	zl.Info().Interface("client", h.c).Msg("x")
	js, _ := json.Marshal(h.c)
	for _, s := range []string{
		fmt.Sprintf("%v", h.c), fmt.Sprintf("%+v", h.c), fmt.Sprintf("%#v", h.c),
		fmt.Sprintf("%+v", struct{ C *Client }{h.c}), fmt.Sprintf("%+v", []any{h.c}),
		fmt.Sprintf("%v", h.c.token), fmt.Sprintf("%#v", h.c.token), fmt.Sprintf("%+v", *h.c.token), string(js), logs.String(),
	} {
		assertNoToken(t, "formatted client", s)
	}
}

func TestRetryAfter429(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"sendMessage": sequence(failWith(429, "Too Many Requests: retry after 3", 3), failWith(429, "Too Many Requests: retry after 3", 3), sentMessage(77)),
	})
	h := newHarness(t, f.srv.URL)
	id, err := h.c.SendText(testCtx(t), 42, "hi")
	if err != nil {
		t.Fatalf("SendText: %v", err)
	}
	if id != 77 {
		t.Errorf("message id: got %d, want 77", id)
	}
	if got := h.sleep.Waits(); len(got) != 2 || got[0] != 3*time.Second || got[1] != 3*time.Second {
		t.Errorf("waits: got %v, want [3s 3s]", got)
	}
	if got := f.Calls("sendMessage"); got != 3 {
		t.Errorf("sendMessage calls: got %d, want 3", got)
	}
}

func TestRetryAfterIsBounded(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter int
		wantCalls  int
	}{
		{"retries stop after MaxRetries", 3, 1 + 2},
		{"a wait over MaxRetryAfter is not waited", 3600, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"sendMessage": failWith(429, "Too Many Requests", tt.retryAfter)})
			h := newHarness(t, f.srv.URL, func(o *Options) { o.MaxRetries = 2 })
			_, err := h.c.SendText(testCtx(t), 42, "hi")
			if !errors.Is(err, ErrRateLimited) {
				t.Fatalf("got error %v, want ErrRateLimited", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.RetryAfter != time.Duration(tt.retryAfter)*time.Second {
				t.Errorf("RetryAfter: got %+v, want %ds", e, tt.retryAfter)
			}
			if got := f.Calls("sendMessage"); got != tt.wantCalls {
				t.Errorf("calls: got %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		opts      []SendOpt
		wantCalls int
		wantErr   bool
	}{
		{"send retried after 502 by default", 502, nil, 2, false},
		{"send not retried after 502 with AtMostOnce", 502, []SendOpt{AtMostOnce()}, 1, true},
		{"send retried after 429 even with AtMostOnce", 429, []SendOpt{AtMostOnce()}, 2, false},
		{"400 never retried", 400, nil, 1, true},
		{"403 never retried", 403, nil, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{
				"sendMessage": sequence(failWith(tt.status, "failure", 1), sentMessage(5)),
			})
			h := newHarness(t, f.srv.URL)
			_, err := h.c.SendText(testCtx(t), 42, "hi", tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Errorf("error: got %v, want error %v", err, tt.wantErr)
			}
			if got := f.Calls("sendMessage"); got != tt.wantCalls {
				t.Errorf("calls: got %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestBackoffOn5xx(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"getMe": sequence(echoPage(502), failWith(500, "Internal Server Error", 0), func(w http.ResponseWriter, r *http.Request) {
			apiOK(w, map[string]any{"id": 1, "is_bot": true, "first_name": "r", "username": "relay_bot"})
		}),
	})
	h := newHarness(t, f.srv.URL)
	name, err := h.c.GetMe(testCtx(t))
	if err != nil || name != "relay_bot" {
		t.Fatalf("GetMe: got %q, %v; want relay_bot, nil", name, err)
	}
	waits := h.sleep.Waits()
	if len(waits) != 2 {
		t.Fatalf("waits: got %v, want two backoffs", waits)
	}
	for i, w := range waits {
		nominal := backoffBase << i
		if w < nominal/2 || w > nominal {
			t.Errorf("wait %d: got %v, want within [%v, %v]", i, w, nominal/2, nominal)
		}
	}
}

func TestBackoffIsCapped(t *testing.T) {
	for attempt := range 40 {
		if d := backoff(attempt); d <= 0 || d > backoffMax {
			t.Errorf("backoff(%d) = %v, want in (0, %v]", attempt, d, backoffMax)
		}
	}
}

// TestTokenNeverLeaks drives every method into a proxy-style HTML error
// page that echoes the token, a JSON description that quotes it, and a
// refused connection (whose *url.Error holds the URL), and checks the
// errors and every log line.
func TestTokenNeverLeaks(t *testing.T) {
	quoting := func(w http.ResponseWriter, r *http.Request) {
		apiError(w, 400, "Bad Request: token "+testToken+" in "+r.URL.Path, 0)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"502 html page echoing the path", echoPage(502)},
		{"200 html page echoing the path", echoPage(200)},
		{"json description quoting the token", quoting},
		{"refused connection", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := closedURL
			if tc.handler != nil {
				f := newFake(t, nil)
				f.srv.Config.Handler = tc.handler
				url = f.srv.URL
			}
			h := newHarness(t, url, func(o *Options) { o.MaxRetries = 1 })
			ctx := testCtx(t)
			var errs []error
			_, err := h.c.SendText(ctx, 1, "x")
			errs = append(errs, err)
			errs = append(errs, h.c.EditText(ctx, 1, 2, "x"))
			errs = append(errs, h.c.DeleteMessage(ctx, 1, 2))
			errs = append(errs, h.c.AnswerCallback(ctx, "id", ""))
			errs = append(errs, h.c.SetCommands(ctx, []Command{{"disk", "disk usage"}}))
			errs = append(errs, h.c.RemoveButtons(ctx, 1, 2))
			errs = append(errs, h.c.SendDocument(ctx, 1, "out.txt", func() (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader("data")), nil
			}, ""))
			_, err = h.c.GetMe(ctx)
			errs = append(errs, err)
			errs = append(errs, h.c.SetWebhook(ctx, "https://example.com/x", RandomSecret()))
			errs = append(errs, h.c.DeleteWebhook(ctx))
			pctx, cancel := context.WithCancel(ctx)
			base := len(h.sleep.Waits())
			go func() {
				// Stop polling once it has failed a few times.
				for len(h.sleep.Waits()) < base+5 && pctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
			errs = append(errs, h.c.Poll(pctx, func(context.Context, Update) {}))
			cancel()

			for i, err := range errs {
				if err == nil {
					if i != len(errs)-1 { // Poll returns nil when stopped
						t.Errorf("call %d: got nil error, want a failure", i)
					}
					continue
				}
				assertNoToken(t, fmt.Sprintf("call %d error", i), err.Error())
				assertNoToken(t, fmt.Sprintf("call %d %%+v", i), fmt.Sprintf("%+v", err))
				if strings.Contains(err.Error(), "<html>") || strings.Contains(err.Error(), "upstream failed") {
					t.Errorf("call %d error quotes the non-JSON body: %q", i, err)
				}
				var e *Error
				if errors.As(err, &e) {
					assertNoToken(t, "public message", e.Public())
				}
			}
			logs := h.logs.String()
			if logs == "" {
				t.Errorf("no log lines were written; the test would prove nothing")
			}
			assertNoToken(t, "logs", logs)
		})
	}
}

func TestRedactorCatchesEncodings(t *testing.T) {
	r := newRedactor(testToken)
	for _, s := range []string{
		testToken, "/bot" + testToken + "/getMe", "123456789%3A" + testSecret, testSecret,
		"other 987654321:ZZHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw9 token",
	} {
		got := r.String("x " + s + " y")
		assertNoToken(t, "redacted", got)
		if strings.Contains(got, "ZZHdqTcv") {
			t.Errorf("redact(%q) = %q, want any token-shaped string removed", s, got)
		}
	}
}

func TestBenignAnswersAreSuccess(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"editMessageText":        failWith(400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same", 0),
		"editMessageReplyMarkup": failWith(400, "Bad Request: message is not modified", 0),
		"deleteMessage":          failWith(400, "Bad Request: message to delete not found", 0),
	})
	h := newHarness(t, f.srv.URL)
	ctx := testCtx(t)
	if err := h.c.EditText(ctx, 1, 2, "same"); err != nil {
		t.Errorf("EditText not modified: got %v, want nil", err)
	}
	if err := h.c.RemoveButtons(ctx, 1, 2); err != nil {
		t.Errorf("RemoveButtons not modified: got %v, want nil", err)
	}
	if err := h.c.DeleteMessage(ctx, 1, 2); err != nil {
		t.Errorf("DeleteMessage not found: got %v, want nil", err)
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		status int
		target error
	}{
		{401, ErrUnauthorized}, {404, ErrUnauthorized}, {409, ErrConflict}, {403, ErrForbidden}, {429, ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"getMe": failWith(tt.status, "nope", 0)})
			h := newHarness(t, f.srv.URL, func(o *Options) { o.MaxRetries = -1 })
			_, err := h.c.GetMe(testCtx(t))
			if !errors.Is(err, tt.target) {
				t.Errorf("got %v, want errors.Is %v", err, tt.target)
			}
			var e *Error
			if !errors.As(err, &e) || e.Public() == "" || strings.Contains(e.Public(), "nope") {
				t.Errorf("Public: got %q, want a fixed safe message", e.Public())
			}
		})
	}
}

func TestSendTextRequest(t *testing.T) {
	var got map[string]string
	f := newFake(t, map[string]http.HandlerFunc{
		"sendMessage": func(w http.ResponseWriter, r *http.Request) {
			r.ParseMultipartForm(1 << 20)
			got = map[string]string{}
			for k, v := range r.MultipartForm.Value {
				got[k] = v[0]
			}
			sentMessage(9)(w, r)
		},
	})
	h := newHarness(t, f.srv.URL)
	ctx := testCtx(t)
	if _, err := h.c.SendText(ctx, 42, "<b>x</b>", Silent(), Buttons([]Button{{Text: "Run", Data: "c:1"}, {Text: "Cancel", Data: "c:0"}})); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"chat_id": "42", "text": "<b>x</b>", "parse_mode": "HTML", "disable_notification": "true",
		"link_preview_options": `{"is_disabled":true}`,
		"reply_markup":         `{"inline_keyboard":[[{"text":"Run","callback_data":"c:1"},{"text":"Cancel","callback_data":"c:0"}]]}`,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %s: got %q, want %q", k, got[k], v)
		}
	}
	if _, err := h.c.SendText(ctx, 42, "plain"); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["reply_markup"]; ok {
		t.Errorf("reply_markup sent without buttons: %q", got["reply_markup"])
	}
}

func TestSendValidation(t *testing.T) {
	h := newHarness(t, "http://127.0.0.1:1")
	ctx := testCtx(t)
	cases := map[string]error{}
	_, cases["empty text"] = h.c.SendText(ctx, 1, "")
	_, cases["invalid UTF-8"] = h.c.SendText(ctx, 1, "\xff")
	_, cases["button data too long"] = h.c.SendText(ctx, 1, "x", Buttons([]Button{{Text: "a", Data: strings.Repeat("d", 65)}}))
	_, cases["empty button row"] = h.c.SendText(ctx, 1, "x", Buttons([]Button{}))
	cases["bad command name"] = h.c.SetCommands(ctx, []Command{{"Disk", "x"}})
	cases["empty description"] = h.c.SetCommands(ctx, []Command{{"disk", ""}})
	cases["caption too long"] = h.c.SendDocument(ctx, 1, "f", func() (io.ReadCloser, error) { return nil, nil }, strings.Repeat("x", 1025))
	cases["long callback answer"] = h.c.AnswerCallback(ctx, "id", strings.Repeat("x", 201))
	cases["http webhook"] = h.c.SetWebhook(ctx, "http://example.com/x", RandomSecret())
	cases["short webhook secret"] = h.c.SetWebhook(ctx, "https://example.com/x", "short")
	for name, err := range cases {
		var e *Error
		if err == nil || errors.As(err, &e) {
			t.Errorf("%s: got %v, want a local validation error", name, err)
		}
	}
}

func TestSafeFilename(t *testing.T) {
	tests := map[string]string{
		"disk-2024-01-01T10:00.txt": "disk-2024-01-01T10_00.txt",
		"../../etc/passwd":          "_.._etc_passwd",
		"":                          "output.txt",
		"a\"b\r\n.txt":              "a_b__.txt",
		strings.Repeat("x", 100):    strings.Repeat("x", maxFilenameLength),
	}
	for in, want := range tests {
		if got := safeFilename(in); got != want {
			t.Errorf("safeFilename(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRetryLinesSayWhy: every retry line names its reason, without a URL
// (which holds the token), and logs its wait with a unit.
func TestRetryLinesSayWhy(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	closed.Close()
	gateway := newFake(t, map[string]http.HandlerFunc{"sendMessage": echoPage(502), "getUpdates": failWith(500, "Internal Server Error: restarting", 0)})
	tests := []struct {
		name, url, reason string
	}{
		{"refused connection", refused, "connection refused"},
		{"proxy error page", gateway.srv.URL, "http 502 Bad Gateway (response body is not bot api json, withheld)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.url, func(o *Options) { o.MaxRetries = 1 })
			if _, err := h.c.SendText(testCtx(t), 1, "x"); err == nil {
				t.Fatal("SendText: got nil, want a failure")
			} else if strings.Contains(err.Error(), "http://") {
				t.Errorf("error quotes a url: %v", err)
			}
			line := retryLine(t, h.logs.String(), "telegram call failed, retrying")
			if line["reason"] != tt.reason {
				t.Errorf("reason: got %q, want %q", line["reason"], tt.reason)
			}
			checkWait(t, line)
			assertNoToken(t, "logs", h.logs.String())
			if strings.Contains(h.logs.String(), "http://") {
				t.Errorf("logs quote a url: %s", h.logs.String())
			}
		})
	}
	t.Run("getUpdates", func(t *testing.T) {
		h := newHarness(t, gateway.srv.URL)
		ctx, cancel := context.WithCancel(testCtx(t))
		done := make(chan error, 1)
		go func() { done <- h.c.Poll(ctx, func(context.Context, Update) {}) }()
		for len(h.sleep.Waits()) < 2 {
			time.Sleep(time.Millisecond) // until two retries were logged
		}
		cancel()
		<-done
		line := retryLine(t, h.logs.String(), "getUpdates failed, retrying")
		if line["reason"] != "Internal Server Error: restarting" || line["hint"] == nil {
			t.Errorf("got %v, want the description as the reason and a hint", line)
		}
		checkWait(t, line)
		assertNoToken(t, "logs", h.logs.String())
	})
}

// retryLine returns the first JSON log line with message msg.
func retryLine(t *testing.T, logs, msg string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == msg {
			return m
		}
	}
	t.Fatalf("no %q line in logs:\n%s", msg, logs)
	return nil
}

// checkWait demands a wait with a unit ("750ms"), not zerolog's bare
// number of milliseconds.
func checkWait(t *testing.T, line map[string]any) {
	t.Helper()
	s, ok := line["wait"].(string)
	if d, err := time.ParseDuration(s); !ok || err != nil || d <= 0 {
		t.Errorf("wait: got %#v, want a duration with a unit", line["wait"])
	}
}

// TestStartCallsShareOneConnection: calls made at once, before the client
// has a connection, open one TLS connection between them (HTTP/2 carries
// them all), not one each: every extra one is a TCP and TLS handshake on
// the way to the relay's first getUpdates.
func TestStartCallsShareOneConnection(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	// Each answer waits until all four calls have arrived, so that they
	// are in flight together, as at a relay's start.
	var arrived sync.WaitGroup
	arrived.Add(4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		arrived.Wait()
		apiOK(w, true)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c, err := New(Options{Token: testToken, APIURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := c.DeleteWebhook(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("4 calls at start opened %d connections, want 1", conns)
	}
}

// A call that gives up while it waits for the first call's connection must
// close its request body, as every RoundTripper does. Left open, the
// library's form writer wakes to the library's own error while the library
// rewrites that error: a data race the race detector reports here.
func TestCallGivingUpBeforeTheFirstConnection(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	base := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		select { // the first call never gets its connection
		case <-release:
		case <-ctx.Done():
		}
		return nil, errors.New("no network here")
	}}
	c, err := New(Options{Token: testToken, APIURL: "http://127.0.0.1:1", HTTPClient: &http.Client{Transport: base}})
	if err != nil {
		t.Fatal(err)
	}
	first, stopFirst := context.WithCancel(context.Background())
	defer stopFirst()
	go c.SendText(first, 1, "first") //nolint:errcheck // it only holds the connection
	time.Sleep(50 * time.Millisecond)
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := c.SendText(ctx, 1, strings.Repeat("x", 64<<10))
		cancel()
		if err == nil {
			t.Fatal("a call with no connection succeeded")
		}
	}
}
