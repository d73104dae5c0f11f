package fakebotapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// updates decodes a getUpdates result.
func updates(t *testing.T, r reply) []wireUpdate {
	t.Helper()
	wantOK(t, r)
	var ups []wireUpdate
	if err := json.Unmarshal(r.Result, &ups); err != nil {
		t.Fatalf("getUpdates result %s: %v", r.Result, err)
	}
	return ups
}

func ids(ups []wireUpdate) []int64 {
	var out []int64
	for _, u := range ups {
		out = append(out, u.UpdateID)
	}
	return out
}

func TestOffsets(t *testing.T) {
	s := start(t)
	var pushed []int64
	for i := range 5 {
		id, _ := s.SendMessage(owner, Private(owner), fmt.Sprintf("m%d", i))
		pushed = append(pushed, id)
	}
	tests := []struct {
		name   string
		params map[string]any
		want   []int64
	}{
		{"no offset returns all", map[string]any{}, pushed},
		{"limit", map[string]any{"limit": 2}, pushed[:2]},
		{"limit is clamped to 1..100", map[string]any{"limit": 0}, pushed[:1]},
		{"limit over 100", map[string]any{"limit": 1000}, pushed},
		{"offset confirms earlier updates", map[string]any{"offset": pushed[2]}, pushed[2:]},
		{"confirmed updates are forgotten", map[string]any{}, pushed[2:]},
		{"an older offset brings nothing back", map[string]any{"offset": pushed[0]}, pushed[2:]},
		{"negative offset keeps the last", map[string]any{"offset": -1}, pushed[4:]},
		{"past the end confirms all", map[string]any{"offset": pushed[4] + 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(updates(t, call(t, s, "getUpdates", tt.params)))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, id := range pushed {
		if _, ok := s.UpdateConfirmed(id); !ok {
			t.Errorf("update %d not recorded as confirmed", id)
		}
		if _, ok := s.UpdateDelivered(id); !ok && id != pushed[1] {
			t.Errorf("update %d not recorded as delivered", id)
		}
	}
}

// TestLongPollWakesOnPush: a waiting getUpdates returns as soon as an
// update arrives, long before its timeout.
func TestLongPollWakesOnPush(t *testing.T) {
	s := start(t)
	got := make(chan reply, 1)
	go func() { got <- call(t, s, "getUpdates", map[string]any{"timeout": 50}) }()
	if err := s.WaitPolling(hangCtx(t)); err != nil {
		t.Fatal(err)
	}
	id, _ := s.SendMessage(owner, Private(owner), "/disk")
	select {
	case r := <-got:
		if ups := updates(t, r); len(ups) != 1 || ups[0].UpdateID != id || ups[0].Message.Text != "/disk" {
			t.Fatalf("got %s, want the pushed update", r.Result)
		}
	case <-time.After(hang):
		t.Fatal("getUpdates did not return after the push")
	}
	delivered, ok := s.UpdateDelivered(id)
	if !ok || delivered.IsZero() {
		t.Fatal("delivery time not recorded")
	}
	poll, err := s.WaitPoll(hangCtx(t))
	if err != nil || poll.After(delivered) {
		t.Fatalf("got first poll at %v (%v), want before delivery at %v", poll, err, delivered)
	}
}

func TestLongPollTimeout(t *testing.T) {
	clock := newFakeClock()
	s := start(t, WithClock(clock))
	got := make(chan reply, 1)
	go func() { got <- call(t, s, "getUpdates", map[string]any{"timeout": 5}) }()
	clock.waitWaiters(t, 1)
	select {
	case r := <-got:
		t.Fatalf("got %s before the timeout, want a wait", r.Raw)
	default:
	}
	clock.Advance(5 * time.Second)
	if ups := updates(t, <-got); len(ups) != 0 {
		t.Fatalf("got %d updates, want none", len(ups))
	}
	if n := len(s.PollTimes()); n != 1 {
		t.Fatalf("got %d poll times, want 1", n)
	}
}

// TestConcurrentPollConflict: as on Telegram, a second getUpdates ends
// the one that was waiting with 409, and itself carries on.
func TestConcurrentPollConflict(t *testing.T) {
	s := start(t)
	first := make(chan reply, 1)
	go func() { first <- call(t, s, "getUpdates", map[string]any{"timeout": 50}) }()
	if err := s.WaitPolling(hangCtx(t)); err != nil {
		t.Fatal(err)
	}
	second := make(chan reply, 1)
	go func() { second <- call(t, s, "getUpdates", map[string]any{"timeout": 50}) }()
	wantError(t, <-first, 409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
	if err := s.WaitCalls(hangCtx(t), "getUpdates", 2); err != nil {
		t.Fatal(err)
	}
	s.SendMessage(owner, Private(owner), "x")
	if ups := updates(t, <-second); len(ups) != 1 {
		t.Fatalf("got %d updates on the second poll, want 1", len(ups))
	}
	if got := s.Conflicts(); got != 1 {
		t.Errorf("got %d conflicts, want 1", got)
	}
}

func TestAllowedUpdates(t *testing.T) {
	s := start(t)
	wantOK(t, call(t, s, "getUpdates", map[string]any{"allowed_updates": []string{"message"}}))
	s.PressButton(owner, owner.ID, 1, "x")
	_, _ = s.SendMessage(owner, Private(owner), "a", Edited(1))
	id, _ := s.SendMessage(owner, Private(owner), "b")
	// Telegram remembers the list: later polls without it keep it.
	if got := ids(updates(t, call(t, s, "getUpdates", nil))); fmt.Sprint(got) != fmt.Sprint([]int64{id}) {
		t.Fatalf("got %v, want only the message %d", got, id)
	}
	wantOK(t, call(t, s, "getUpdates", map[string]any{"allowed_updates": []string{}, "offset": id + 1}))
	s.PressButton(owner, owner.ID, 1, "x")
	if got := updates(t, call(t, s, "getUpdates", nil)); len(got) != 1 || got[0].CallbackQuery == nil {
		t.Fatalf("got %v, want the callback once the list is reset", got)
	}
}

func TestOwnerMessages(t *testing.T) {
	s := start(t)
	stale := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	_, first := s.SendMessage(owner, Private(owner), "/login 123456 /status@relay_test_bot")
	s.SendMessage(owner, Private(owner), "/disk", At(stale))
	s.SendMessage(owner, Private(owner), "/disk", WithEntities(Entity{Type: "bot_command", Offset: 3, Length: 99}))
	s.SendMessage(owner, Private(owner), "/disk -h", Edited(first))
	s.SendMessage(owner, Group(-5, "ops"), "/uptime", ReplyTo(77))
	s.SendMessage(User{}, Channel(-1001, "news"), "post")
	raw, err := s.PushRawUpdate([]byte(`{"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"text":"x","entities":[{"type":"bot_command","offset":-1,"length":1}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PushRawUpdate([]byte(`not json`)); err == nil {
		t.Error("got nil error for a raw update that is not JSON, want one")
	}
	ups := updates(t, call(t, s, "getUpdates", nil))
	if len(ups) != 7 {
		t.Fatalf("got %d updates, want 7", len(ups))
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"commands get bot_command entities", fmt.Sprint(ups[0].Message.Entities) == fmt.Sprint([]Entity{{Type: "bot_command", Offset: 0, Length: 6}, {Type: "bot_command", Offset: 14, Length: 22}})},
		{"from and chat", ups[0].Message.From.ID == owner.ID && ups[0].Message.Chat.Type == "private" && ups[0].Message.Chat.ID == owner.ID},
		{"stale date", ups[1].Message.Date == stale.Unix()},
		{"malformed entity as given", ups[2].Message.Entities[0].Length == 99},
		{"edited message", ups[3].EditedMessage != nil && ups[3].EditedMessage.MessageID == first && ups[3].EditedMessage.EditDate != 0},
		{"group chat", ups[4].Message.Chat.Type == "group" && ups[4].Message.Chat.ID == -5},
		{"channel post", ups[5].ChannelPost != nil && ups[5].ChannelPost.From == nil && ups[5].ChannelPost.SenderChat.ID == -1001},
		{"raw update numbered", ups[6].UpdateID == raw && ups[6].Message.Entities[0].Offset == -1},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %+v", c.name, ups)
		}
	}
}

func TestDocuments(t *testing.T) {
	s := start(t, WithMaxDocumentSize(4096), WithDocumentMemory(1024))
	small := []byte("hello, document")
	r := callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "7", "caption": "<b>disk</b> · exit 0", "parse_mode": "HTML", "disable_notification": "true"}, "document", "disk-2026.txt", small)
	wantOK(t, r)
	var wm wireMessage
	json.Unmarshal(r.Result, &wm)
	if wm.Document == nil || wm.Document.FileSize != int64(len(small)) || wm.Document.FileName != "disk-2026.txt" || wm.Caption != "disk · exit 0" {
		t.Fatalf("got %s, want the document message", r.Result)
	}
	big := []byte(strings.Repeat("x", 4096))
	wantOK(t, callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "7"}, "document", "big.txt", big))
	wantError(t, callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "7"}, "document", "huge.txt", append(big, 'x')), 413, "Request Entity Too Large")
	wantError(t, callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "7"}, "document", "empty.txt", nil), 400, "Bad Request: file must be non-empty")
	wantError(t, callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "7"}, "", "", nil), 400, "Bad Request: there is no document in the request")
	wantError(t, callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "7", "document": "https://example.com/x"}, "", "", nil), 400, "Bad Request: wrong file identifier/HTTP URL specified")

	docs := s.Documents()
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2", len(docs))
	}
	if d := docs[0]; string(d.Data) != string(small) || d.SHA256 != sha(small) || !d.Silent || d.Caption != "disk · exit 0" || d.MessageID != wm.MessageID {
		t.Errorf("got %+v, want the small document with its bytes", d)
	}
	if d := docs[1]; d.Data != nil || d.Size != 4096 || d.SHA256 != sha(big) {
		t.Errorf("got size %d data %d bytes sha %s, want only size and hash over the memory cap", d.Size, len(d.Data), d.SHA256)
	}
	got, err := s.WaitDocument(hangCtx(t), func(d Document) bool { return d.FileName == "big.txt" })
	if err != nil || got.Size != 4096 {
		t.Fatalf("got %+v %v, want big.txt", got, err)
	}
	wantOK(t, call(t, s, "deleteMessage", map[string]any{"chat_id": 7, "message_id": wm.MessageID}))
	if !s.Documents()[0].Deleted {
		t.Error("got Deleted false for a deleted document, want true")
	}
	wantError(t, call(t, s, "editMessageText", map[string]any{"chat_id": 7, "message_id": docs[1].MessageID, "text": "x"}), 400, "Bad Request: there is no text in the message to edit")
}

func TestBodyCap(t *testing.T) {
	s := start(t)
	req, _ := http.NewRequest(http.MethodPost, methodURL(s, "sendMessage"), strings.NewReader(`{"text":"`+strings.Repeat("a", maxBody)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	wantError(t, do(t, req), 413, "Request Entity Too Large")
}
