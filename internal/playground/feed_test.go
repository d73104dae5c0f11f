package playground

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// keyboard is what relay-like confirmation buttons look like on the wire,
// with every kind of button the page must show: styled, disabled, a link.
var keyboard = map[string]any{"inline_keyboard": [][]map[string]any{
	{{"text": "Run", "callback_data": "r:1", "style": "danger"}, {"text": "Cancel", "callback_data": "x:1", "style": "success"}},
	{{"text": "Expired", "disabled": map[string]any{}}, {"text": "Docs", "url": "https://example.org/docs"}},
}}

// pendingCallback waits, as a bot's long poll does, for the button press
// the bot has not yet received, and returns its data and ID.
func pendingCallback(t *testing.T, fake *fakebotapi.Server) (data, id string) {
	t.Helper()
	var ups []struct {
		CallbackQuery *struct {
			ID   string `json:"id"`
			Data string `json:"data"`
		} `json:"callback_query"`
	}
	if err := json.Unmarshal(bot(t, fake, "getUpdates", map[string]any{"timeout": 20, "allowed_updates": []string{"callback_query"}}), &ups); err != nil {
		t.Fatal(err)
	}
	for _, u := range ups {
		if u.CallbackQuery != nil {
			return u.CallbackQuery.Data, u.CallbackQuery.ID
		}
	}
	t.Fatalf("no callback query among %d updates", len(ups))
	return "", ""
}

// TestPageFollowsTheBot plays the bot through the fake's Bot API and reads
// the page's event stream: every kind of change a phone shows arrives, in
// order, as the page needs it.
func TestPageFollowsTheBot(t *testing.T) {
	fake, p := botPage(t)
	s := follow(t, p)

	if r := pageRequest(t, p, "POST", "send", `{"text":"/start"}`); r.StatusCode != 200 {
		t.Fatalf("send: %s", r.Status)
	}
	own := s.next(kindOwner)
	if flatten(own.Text) != "/start" || own.ID == 0 {
		t.Errorf("the owner's message: got %+v, want /start with an ID", own)
	}

	bot(t, fake, "setMyCommands", map[string]any{"commands": []map[string]string{{"command": "disk", "description": "disk usage"}},
		"scope": map[string]any{"type": "chat", "chat_id": testOwner.ID}})
	if m := s.next(kindMenu); !reflect.DeepEqual(m.Menu, []command{{"disk", "disk usage"}}) {
		t.Errorf("menu: got %+v, want /disk", m.Menu)
	}

	id := messageID(t, bot(t, fake, "sendMessage", map[string]any{"chat_id": testOwner.ID, "text": "<b>Run /disk?</b>",
		"parse_mode": "HTML", "reply_markup": keyboard}))
	msg := s.next(kindMessage)
	wantButtons := [][]button{
		{{N: 1, Text: "Run", Style: "danger"}, {N: 2, Text: "Cancel", Style: "success"}},
		{{N: 3, Text: "Expired", Disabled: true}, {N: 4, Text: "Docs", URL: "https://example.org/docs"}},
	}
	if msg.ID != id || !reflect.DeepEqual(msg.Buttons, wantButtons) {
		t.Errorf("message %d: got buttons %+v, want %+v", msg.ID, msg.Buttons, wantButtons)
	}
	if got, want := spansJSON(msg.Text), `[{"k":"b","c":[{"t":"Run /disk?"}]}]`; got != want {
		t.Errorf("text: got %s, want %s", got, want)
	}

	// What a phone cannot press is refused, and nothing reaches the bot.
	for _, n := range []int{3, 4, 9} {
		if r := pageRequest(t, p, "POST", "press", `{"id":`+strconv.Itoa(id)+`,"n":`+strconv.Itoa(n)+`}`); r.StatusCode != http.StatusConflict {
			t.Errorf("press button %d: got %s, want 409", n, r.Status)
		}
	}
	if r := pageRequest(t, p, "POST", "press", `{"id":`+strconv.Itoa(id)+`,"n":1}`); r.StatusCode != 200 {
		t.Fatalf("press Run: %s", r.Status)
	}
	data, qid := pendingCallback(t, fake)
	if data != "r:1" {
		t.Errorf("the press: got data %q, want r:1", data)
	}
	bot(t, fake, "answerCallbackQuery", map[string]any{"callback_query_id": qid, "text": "running"})
	if a := s.next(kindAnswer); a.Answer == nil || a.Answer.Text != "running" {
		t.Errorf("answer: got %+v, want running", a.Answer)
	}

	bot(t, fake, "editMessageReplyMarkup", map[string]any{"chat_id": testOwner.ID, "message_id": id})
	if b := s.next(kindButtons); b.ID != id || len(b.Buttons) != 0 {
		t.Errorf("buttons removed: got %+v", b)
	}
	bot(t, fake, "editMessageText", map[string]any{"chat_id": testOwner.ID, "message_id": id, "text": "/disk ⏳ running · 2s"})
	if e := s.next(kindEdit); e.ID != id || e.Edits != 1 || flatten(e.Text) != "/disk ⏳ running · 2s" {
		t.Errorf("edit: got %+v", e)
	}

	bot(t, fake, "sendMessageDraft", map[string]any{"chat_id": testOwner.ID, "draft_id": 7, "text": "<i>step 1</i>", "parse_mode": "HTML", "can_stop": true})
	if d := s.next(kindDraft); d.Draft == nil || *d.Draft != (draft{ID: 7, CanStop: true}) || spansJSON(d.Text) != `[{"k":"i","c":[{"t":"step 1"}]}]` {
		t.Errorf("draft: got %+v %s", d.Draft, spansJSON(d.Text))
	}
	if r := pageRequest(t, p, "POST", "stop", `{"draft":"7"}`); r.StatusCode != 200 {
		t.Fatalf("stop: %s", r.Status)
	}
	if d := s.next(kindStop); d.Draft == nil || d.Draft.ID != 7 {
		t.Errorf("stop: got %+v", d.Draft)
	}

	out := []byte(strings.Repeat("line é\n", 2000))
	docID := botDocument(t, fake, "big-20260101.txt", out, "<b>/big</b> · exit 0")
	doc := s.next(kindDocument)
	if doc.ID != docID || doc.Doc == nil || doc.Doc.Name != "big-20260101.txt" || doc.Doc.Size != int64(len(out)) || !doc.Doc.Kept || !doc.Doc.Truncated {
		t.Fatalf("document: got %+v", doc.Doc)
	}
	if !strings.HasPrefix(string(out), doc.Doc.Preview) || len(doc.Doc.Preview) < previewBytes-3 || len(doc.Doc.Preview) > previewBytes {
		t.Errorf("preview: got %d bytes, want the first %d cut at a character", len(doc.Doc.Preview), previewBytes)
	}
	if got := spansJSON(doc.Text); got != `[{"k":"b","c":[{"t":"/big"}]},{"t":" · exit 0"}]` {
		t.Errorf("caption: got %s", got)
	}
	r := pageRequest(t, p, "GET", "doc/"+strconv.Itoa(docID), "")
	if body := readAll(t, r.Body); r.StatusCode != 200 || body != string(out) {
		t.Errorf("download: got %s and %d bytes, want 200 and %d", r.Status, len(body), len(out))
	}
	if ct, cd := r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"); ct != "application/octet-stream" || !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("download headers: got %q, %q, want an octet-stream attachment", ct, cd)
	}

	bot(t, fake, "sendMessage", map[string]any{"chat_id": testOwner.ID, "text": "<code>audit checkpoint seq=12 mac=0123456789abcdef</code>",
		"parse_mode": "HTML", "disable_notification": true})
	if c := s.next(kindMessage); !c.Checkpoint || !c.Silent {
		t.Errorf("checkpoint: got %+v, want a silent checkpoint", c)
	}

	bot(t, fake, "deleteMessage", map[string]any{"chat_id": testOwner.ID, "message_id": docID})
	if d := s.next(kindDelete); d.ID != docID || d.Text != nil {
		t.Errorf("delete: got %+v, want only the ID", d)
	}
	if r := pageRequest(t, p, "GET", "doc/"+strconv.Itoa(docID), ""); r.StatusCode != http.StatusGone {
		t.Errorf("download of a deleted document: got %s, want 410", r.Status)
	}
	bot(t, fake, "deleteMessage", map[string]any{"chat_id": testOwner.ID, "message_id": own.ID})
	if d := s.next(kindDelete); d.ID != own.ID {
		t.Errorf("delete of the owner's message: got %+v", d)
	}

	p.close()
	s.next(kindStopped)
	for s.sc.Scan() {
		if s.sc.Text() != "" {
			t.Errorf("the stream goes on after stopped: %q", s.sc.Text())
		}
	}
	var seqs []uint64
	for _, e := range s.seen {
		seqs = append(seqs, e.Seq)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Errorf("event seqs: got %v, want consecutive", seqs)
			break
		}
	}
}

// TestStreamResumes: a page that reconnects with Last-Event-ID gets what
// came after, without a duplicate.
func TestStreamResumes(t *testing.T) {
	fake, p := botPage(t)
	for i := 0; i < 3; i++ {
		bot(t, fake, "sendMessage", map[string]any{"chat_id": testOwner.ID, "text": "m" + strconv.Itoa(i)})
	}
	s := follow(t, p)
	s.next(kindMessage)
	s.next(kindMessage)
	last := s.next(kindMessage)
	bot(t, fake, "sendMessage", map[string]any{"chat_id": testOwner.ID, "text": "after"})
	req, _ := http.NewRequestWithContext(hangGuard(t), "GET", p.url+"events", nil)
	req.Header.Set("Last-Event-ID", strconv.FormatUint(last.Seq-1, 10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	again := &stream{t: t, sc: newScanner(resp)}
	if e := again.next(kindMessage); flatten(e.Text) != "m2" {
		t.Errorf("first after reconnecting: got %q, want m2", flatten(e.Text))
	}
	if e := again.next(kindMessage); flatten(e.Text) != "after" {
		t.Errorf("then: got %q, want after", flatten(e.Text))
	}
}
