package fakebotapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// relayOutput is what relay typically sends: escaped output in <pre> and
// an italic footer, near the 4096 limit.
var relayOutput = "<pre>" + strings.Repeat("Filesystem      Size  Used Avail Use% Mounted on &lt;x&gt;\n", 60) + "</pre>\n<i>exit 0 · 12 ms</i>"

func BenchmarkParseHTML(b *testing.B) {
	b.SetBytes(int64(len(relayOutput)))
	for b.Loop() {
		if _, _, err := ParseHTML(relayOutput); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendMessage is one sendMessage round trip through the fake over
// loopback HTTP: the fake's share of any latency measured through it.
func BenchmarkSendMessage(b *testing.B) {
	s := New(testToken)
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body, _ := json.Marshal(map[string]any{"chat_id": 1, "text": relayOutput, "parse_mode": "HTML"})
	c := &http.Client{Transport: &http.Transport{}}
	u := s.URL() + "/bot" + testToken + "/sendMessage"
	for b.Loop() {
		resp, err := c.Post(u, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("got %d", resp.StatusCode)
		}
	}
}

// BenchmarkUpdateToReply is the loop the overhead measurement runs,
// with a minimal Go client in place of relay: an update is pushed to a
// waiting long poll, the client answers with sendMessage, and the test
// sees the reply. It is the floor the fake adds to relay's figure.
func BenchmarkUpdateToReply(b *testing.B) {
	s := New(testToken)
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := &http.Client{Transport: &http.Transport{}}
	base := s.URL() + "/bot" + testToken + "/"
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var offset int64
		for {
			select {
			case <-stop:
				return
			default:
			}
			body, _ := json.Marshal(map[string]any{"offset": offset, "timeout": 10})
			resp, err := c.Post(base+"getUpdates", "application/json", bytes.NewReader(body))
			if err != nil {
				return
			}
			var r struct {
				Result []wireUpdate `json:"result"`
			}
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			for _, u := range r.Result {
				offset = u.UpdateID + 1
				msg, _ := json.Marshal(map[string]any{"chat_id": u.Message.Chat.ID, "text": "<pre>ok</pre>", "parse_mode": "HTML"})
				if resp, err := c.Post(base+"sendMessage", "application/json", bytes.NewReader(msg)); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	ctx := b.Context()
	n := 0
	for b.Loop() {
		s.SendMessage(owner, Private(owner), "/uptime")
		n++
		want := n
		if _, err := s.WaitMessage(ctx, func(m Message) bool { return m.ID == 2*want }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	s.Close()
	<-done
}
