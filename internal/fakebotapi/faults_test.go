package fakebotapi

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	clock := newFakeClock()
	s := start(t, WithClock(clock))
	s.RateLimit("sendMessage", 2, 3*time.Second)
	send := func() reply { return call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "x"}) }
	steps := []struct {
		name      string
		advance   time.Duration
		ok        bool
		retry     int
		tooEarly  int
		delivered int
	}{
		{"first call limited", 0, false, 3, 0, 0},
		{"back at once: too early", 0, false, 3, 1, 0},
		{"back after 1 s: too early, 2 s left", time.Second, false, 2, 2, 0},
		{"back in time: second limited call", 2 * time.Second, false, 3, 2, 0},
		{"back in time: served", 3 * time.Second, true, 0, 2, 1},
		{"limit used up", 0, true, 0, 2, 2},
	}
	for _, st := range steps {
		clock.Advance(st.advance)
		r := send()
		if st.ok {
			wantOK(t, r)
		} else {
			wantError(t, r, 429, "Too Many Requests: retry after "+itoa(st.retry))
			if r.Parameters.RetryAfter != st.retry {
				t.Fatalf("%s: got retry_after %d, want %d", st.name, r.Parameters.RetryAfter, st.retry)
			}
		}
		if got := s.RetriedTooEarly(); got != st.tooEarly {
			t.Fatalf("%s: got %d too-early retries, want %d", st.name, got, st.tooEarly)
		}
		if got := len(s.Sent()); got != st.delivered {
			t.Fatalf("%s: got %d messages delivered, want %d", st.name, got, st.delivered)
		}
	}
	wantOK(t, call(t, s, "getMe", nil)) // other methods are not limited
	if got := s.Calls("sendMessage"); got != len(steps) {
		t.Errorf("got %d sendMessage calls counted, want %d", got, len(steps))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestFailEchoesPath(t *testing.T) {
	s := start(t)
	s.Fail("getMe", 1, http.StatusBadGateway, ProxyErrorPage, "text/html")
	resp, err := client.Post(methodURL(s, "getMe"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || resp.Header.Get("Content-Type") != "text/html" || !strings.Contains(string(body), "/bot"+testToken+"/getMe") {
		t.Fatalf("got %d %q %q, want a 502 HTML page echoing the token path", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	wantOK(t, call(t, s, "getMe", nil))
}

func TestDrop(t *testing.T) {
	s := start(t)
	s.Drop("sendMessage", 1)
	req, _ := http.NewRequest(http.MethodPost, methodURL(s, "sendMessage"), strings.NewReader(`{"chat_id":1,"text":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got HTTP %d, want the connection dropped", resp.StatusCode)
	}
	if n := len(s.Sent()); n != 0 {
		t.Fatalf("got %d messages from a dropped call, want 0", n)
	}
	wantOK(t, call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "x"}))
}

func TestDelay(t *testing.T) {
	clock := newFakeClock()
	s := start(t, WithClock(clock))
	s.Delay("sendMessage", 10*time.Second)
	got := make(chan reply, 1)
	go func() { got <- call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "x"}) }()
	clock.waitWaiters(t, 1)
	select {
	case r := <-got:
		t.Fatalf("got %s before the delay ended, want a wait", r.Raw)
	default:
	}
	if n := len(s.Sent()); n != 0 {
		t.Fatalf("got %d messages during the delay, want 0 (the call is held before it is handled)", n)
	}
	clock.Advance(10 * time.Second)
	wantOK(t, <-got)
	s.Delay("sendMessage", 0)
	wantOK(t, call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "y"}))
}

func TestFaultsAreBounded(t *testing.T) {
	s := start(t)
	s.Fail("getMe", 2, 500, "x", "")
	s.Drop("getMe", -1)
	s.RateLimit("getMe", -3, 0)
	s.Delay("getMe", -time.Second)
	for i, want := range []int{500, 500, 200} {
		resp, err := client.Post(methodURL(s, "GetMe"), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("call %d: got %d, want %d", i, resp.StatusCode, want)
		}
	}
}
