package playground

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

const botToken = "1234567890:PLAYGROUND_token_for_these_tests_only"

var testOwner = fakebotapi.User{ID: DefaultOwner, FirstName: "You"}

// hangGuard bounds a test that would otherwise hang on a bug; it is not a
// timing assertion.
func hangGuard(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// botPage starts a fake Bot API and the chat page over it, without a
// daemon: the test plays the bot through the fake's HTTP API.
func botPage(t *testing.T) (*fakebotapi.Server, *page) {
	t.Helper()
	fake := fakebotapi.New(botToken, fakebotapi.WithLenientHTML())
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	p, err := startPage(fake, testOwner, func() (string, int) { return "123456", 17 },
		pageInfo{Bot: BotUsername, Policy: "a test", Commands: 0}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return fake, p
}

// bot calls a Bot API method on the fake, as relay would, and returns
// the result.
func bot(t *testing.T, fake *fakebotapi.Server, method string, params map[string]any) json.RawMessage {
	t.Helper()
	body, _ := json.Marshal(params)
	resp, err := http.Post(fake.URL()+"/bot"+botToken+"/"+method, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return botReply(t, method, resp)
}

func botReply(t *testing.T, method string, resp *http.Response) json.RawMessage {
	t.Helper()
	defer resp.Body.Close()
	var r struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		Description string          `json:"description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || !r.OK {
		t.Fatalf("%s: %v %s", method, err, r.Description)
	}
	return r.Result
}

// botDocument uploads a document to the owner's chat.
func botDocument(t *testing.T, fake *fakebotapi.Server, name string, data []byte, caption string) int {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	w.WriteField("chat_id", "4242")
	w.WriteField("caption", caption)
	w.WriteField("parse_mode", "HTML")
	fw, _ := w.CreateFormFile("document", name)
	fw.Write(data)
	w.Close()
	resp, err := http.Post(fake.URL()+"/bot"+botToken+"/sendDocument", w.FormDataContentType(), &b)
	if err != nil {
		t.Fatal(err)
	}
	return messageID(t, botReply(t, "sendDocument", resp))
}

func messageID(t *testing.T, raw json.RawMessage) int {
	t.Helper()
	var m struct {
		ID int `json:"message_id"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// pageRequest is a request as the page's own script makes it.
func pageRequest(t *testing.T, p *page, method, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(hangGuard(t), method, p.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", p.srv.origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// stream follows the page's event stream.
type stream struct {
	t    *testing.T
	sc   *bufio.Scanner
	seen []pageEvent
}

func follow(t *testing.T, p *page) *stream {
	t.Helper()
	resp := pageRequest(t, p, http.MethodGet, "events", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: got %s, want 200", resp.Status)
	}
	return &stream{t: t, sc: newScanner(resp)}
}

func newScanner(resp *http.Response) *bufio.Scanner {
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return sc
}

// next returns the next event of kind, failing if the stream ends first.
func (s *stream) next(kind string) pageEvent {
	s.t.Helper()
	for s.sc.Scan() {
		data, ok := strings.CutPrefix(s.sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e pageEvent
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			s.t.Fatalf("event %q: %v", data, err)
		}
		s.seen = append(s.seen, e)
		if e.Kind == kind {
			return e
		}
	}
	s.t.Fatalf("stream ended before a %s event (%v); saw %+v", kind, s.sc.Err(), s.seen)
	return pageEvent{}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
