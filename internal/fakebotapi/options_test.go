package fakebotapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	clock := newFakeClock()
	s := start(t, WithClock(clock), WithBotUser(User{ID: 99, FirstName: "Box", Username: "box_bot"}),
		WithLenientHTML(), WithFirstUpdateID(1))

	var me User
	json.Unmarshal(call(t, s, "getMe", nil).Result, &me)
	if me.ID != 99 || me.Username != "box_bot" || !me.IsBot {
		t.Errorf("got %+v, want the configured bot", me)
	}
	if id, _ := s.SendMessage(owner, Private(owner), "/x"); id != 1 {
		t.Errorf("got first update_id %d, want 1", id)
	}
	// Lenient HTML is Telegram's own: a bare & is text.
	r := call(t, s, "sendMessage", map[string]any{"chat_id": owner.ID, "text": "AT&T", "parse_mode": "HTML"})
	wantOK(t, r)
	m := s.Sent()[0]
	if m.Text != "AT&T" || !m.Date.Equal(clock.Now()) {
		t.Errorf("got %q at %v, want AT&T at the fake clock's %v", m.Text, m.Date, clock.Now())
	}
	clock.Advance(3 * time.Second)
	wantOK(t, call(t, s, "editMessageText", map[string]any{"chat_id": owner.ID, "message_id": m.ID, "text": "AT&amp;T!", "parse_mode": "HTML"}))
	if got := s.Sent()[0]; len(got.EditedAt) != 1 || !got.EditedAt[0].Equal(clock.Now()) || got.Edits[0] != "AT&T!" {
		t.Errorf("got edits %v at %v, want one at %v", got.Edits, got.EditedAt, clock.Now())
	}
}

func TestObservers(t *testing.T) {
	s := start(t)
	ctx := hangCtx(t)
	id, msg := s.SendMessage(owner, Private(owner), "/reboot")

	got := make(chan time.Time, 1)
	go func() {
		at, err := s.WaitConfirmed(ctx, id)
		if err != nil {
			t.Error(err)
		}
		got <- at
	}()
	call(t, s, "getUpdates", map[string]any{"offset": id + 1})
	if at := <-got; at.IsZero() {
		t.Error("got a zero confirmation time")
	}

	cmds := make(chan []Command, 1)
	go func() {
		c, _ := s.WaitCommands(ctx)
		cmds <- c
	}()
	wantOK(t, call(t, s, "setMyCommands", map[string]any{"commands": []Command{{"reboot", "reboot the box"}}}))
	if c := <-cmds; len(c) != 1 || c[0].Command != "reboot" {
		t.Errorf("got %v, want the reboot command", c)
	}

	r := call(t, s, "sendMessage", map[string]any{"chat_id": owner.ID, "text": "sure?", "reply_parameters": map[string]any{"message_id": msg}})
	wantOK(t, r)
	var wm wireMessage
	json.Unmarshal(r.Result, &wm)
	if wm.ReplyToMessage == nil || wm.ReplyToMessage.MessageID != msg || s.Sent()[0].ReplyTo != msg {
		t.Errorf("got %s, want a reply to %d", r.Result, msg)
	}
	wantError(t, call(t, s, "sendMessage", map[string]any{"chat_id": owner.ID, "text": "x", "reply_to_message_id": 999}), 400, "Bad Request: message to be replied not found")

	q := s.PressButton(owner, owner.ID, wm.MessageID, "c")
	wantOK(t, call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q, "text": "done", "show_alert": true}))
	if a := s.CallbackAnswers(); len(a) != 1 || !a[0].ShowAlert || a[0].QueryID != q {
		t.Errorf("got %+v, want one alert answer", a)
	}
	wantError(t, call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q, "text": strings.Repeat("x", 201)}), 400, "Bad Request: MESSAGE_TOO_LONG")
}

// TestErrorsNeverEchoTheToken: the fake's own answers hold no token, so a
// token found in relay's logs came from relay (or from a Fail page, which
// echoes it on purpose).
func TestErrorsNeverEchoTheToken(t *testing.T) {
	s := start(t)
	for _, path := range []string{"/bot" + testToken + "/nope", "/bot" + testToken + "x/getMe", "/bot" + testToken} {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+path, nil)
		r := do(t, req)
		if strings.Contains(r.Raw, "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0") {
			t.Errorf("%s: answer %s holds the token", path, r.Raw)
		}
	}
}
