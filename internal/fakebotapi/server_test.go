package fakebotapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestEnvelopes(t *testing.T) {
	s := start(t)
	tests := []struct {
		name, path string
		code       int
		desc       string
	}{
		{"getMe", "/bot" + testToken + "/getMe", 200, ""},
		{"method names are case-insensitive", "/bot" + testToken + "/GETME", 200, ""},
		{"wrong token", "/bot123456789:wrong/getMe", 401, "Unauthorized"},
		{"token of another bot", "/bot987:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0/getMe", 401, "Unauthorized"},
		{"unknown method", "/bot" + testToken + "/sendTelepathy", 404, "Not Found"},
		{"no method", "/bot" + testToken + "/", 404, "Not Found"},
		{"not a bot path", "/foo", 404, "Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.URL()+tt.path, nil)
			r := do(t, req)
			if tt.code == 200 {
				wantOK(t, r)
				var u User
				if err := json.Unmarshal(r.Result, &u); err != nil || u.ID != 123456789 || !u.IsBot {
					t.Fatalf("got getMe %s, want the bot with ID 123456789", r.Result)
				}
				return
			}
			wantError(t, r, tt.code, tt.desc)
		})
	}
	if got := s.Unauthorized(); got != 2 {
		t.Errorf("got %d unauthorized calls, want 2", got)
	}
	if got := s.Calls("getMe"); got != 2 {
		t.Errorf("got %d getMe calls, want 2", got)
	}
}

// TestEncodings sends the same message in every encoding the Bot API
// accepts.
func TestEncodings(t *testing.T) {
	s := start(t)
	markup := `{"inline_keyboard":[[{"text":"Yes","callback_data":"y"},{"text":"Docs","url":"https://example.com"}]]}`
	send := map[string]func() reply{
		"json": func() reply {
			return call(t, s, "sendMessage", map[string]any{"chat_id": 7, "text": "<b>hi</b>", "parse_mode": "HTML",
				"reply_markup": json.RawMessage(markup), "disable_notification": true})
		},
		"urlencoded": func() reply {
			return callForm(t, s, "sendMessage", url.Values{"chat_id": {"7"}, "text": {"<b>hi</b>"}, "parse_mode": {"HTML"},
				"reply_markup": {markup}, "disable_notification": {"true"}})
		},
		"multipart": func() reply {
			return callMultipart(t, s, "sendMessage", map[string]string{"chat_id": "7", "text": "<b>hi</b>", "parse_mode": "HTML",
				"reply_markup": markup, "disable_notification": "true"}, "", "", nil)
		},
		"query": func() reply {
			q := url.Values{"chat_id": {"7"}, "text": {"<b>hi</b>"}, "parse_mode": {"HTML"}, "reply_markup": {markup}, "disable_notification": {"1"}}
			req, _ := http.NewRequest(http.MethodGet, methodURL(s, "sendMessage")+"?"+q.Encode(), nil)
			return do(t, req)
		},
	}
	for name, f := range send {
		t.Run(name, func(t *testing.T) {
			before := len(s.Sent())
			r := f()
			wantOK(t, r)
			var wm wireMessage
			if err := json.Unmarshal(r.Result, &wm); err != nil {
				t.Fatal(err)
			}
			sent := s.Sent()
			if len(sent) != before+1 {
				t.Fatalf("got %d messages, want %d", len(sent), before+1)
			}
			m := sent[len(sent)-1]
			want := [][]Button{{{Text: "Yes", Data: "y"}, {Text: "Docs", URL: "https://example.com"}}}
			if m.Text != "hi" || m.RawText != "<b>hi</b>" || m.ParseMode != "HTML" || !m.Silent || m.ChatID != 7 || m.ID != wm.MessageID {
				t.Errorf("got %+v, want text hi, silent, in chat 7 with the returned ID", m)
			}
			if fmt.Sprint(m.Buttons) != fmt.Sprint(want) {
				t.Errorf("got buttons %v, want %v", m.Buttons, want)
			}
			if wm.Text != "hi" || len(wm.Entities) != 1 || wm.Entities[0].Type != "bold" || wm.From == nil || !wm.From.IsBot {
				t.Errorf("got result %+v, want the parsed message from the bot", wm)
			}
		})
	}
}

func TestMalformedRequests(t *testing.T) {
	s := start(t)
	post := func(ct, body string) reply {
		req, _ := http.NewRequest(http.MethodPost, methodURL(s, "sendMessage"), strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		return do(t, req)
	}
	tests := []struct {
		name string
		r    func() reply
		code int
		desc string
	}{
		{"broken JSON", func() reply { return post("application/json", `{"chat_id":`) }, 400, "Bad Request: can't parse JSON object"},
		{"JSON array", func() reply { return post("application/json", `[1]`) }, 400, "Bad Request: can't parse JSON object"},
		{"multipart without boundary", func() reply { return post("multipart/form-data", "x") }, 400, "Bad Request: can't parse multipart/form-data: no boundary"},
		{"no chat", func() reply { return call(t, s, "sendMessage", map[string]any{"text": "x"}) }, 400, "Bad Request: chat_id is empty"},
		{"no text", func() reply { return call(t, s, "sendMessage", map[string]any{"chat_id": 1}) }, 400, "Bad Request: message text is empty"},
		{"blank text", func() reply { return call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": " \n "}) }, 400, "Bad Request: message text is empty"},
		{"text empty after parsing", func() reply {
			return call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "<b></b>", "parse_mode": "HTML"})
		}, 400, "Bad Request: message text is empty"},
		{"invalid UTF-8", func() reply { return callForm(t, s, "sendMessage", url.Values{"chat_id": {"1"}, "text": {"\xff"}}) }, 400, "Bad Request: strings must be encoded in UTF-8"},
		{"bad chat id", func() reply { return call(t, s, "sendMessage", map[string]any{"chat_id": "@nobody", "text": "x"}) }, 400, "Bad Request: chat not found"},
		{"unknown parse mode", func() reply {
			return call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "x", "parse_mode": "BBCode"})
		}, 400, "Bad Request: unsupported parse_mode"},
		{"bad markup", func() reply {
			return call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "x", "reply_markup": "{"})
		}, 400, "Bad Request: can't parse reply keyboard markup JSON object"},
		{"callback data too long", func() reply {
			return call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "x", "reply_markup": map[string]any{
				"inline_keyboard": [][]map[string]string{{{"text": "a", "callback_data": strings.Repeat("d", 65)}}}}})
		}, 400, "Bad Request: BUTTON_DATA_INVALID"},
		{"button without action", func() reply {
			return call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "x", "reply_markup": map[string]any{
				"inline_keyboard": [][]map[string]string{{{"text": "a"}}}}})
		}, 400, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"},
		{"bad message id", func() reply {
			return call(t, s, "deleteMessage", map[string]any{"chat_id": 1, "message_id": "x"})
		}, 400, "Bad Request: invalid message_id specified"},
		{"bad offset", func() reply { return call(t, s, "getUpdates", map[string]any{"offset": "x"}) }, 400, "Bad Request: invalid offset specified"},
		{"HTML error", func() reply {
			return call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "1 < 2", "parse_mode": "HTML"})
		}, 400, `Bad Request: can't parse entities: Unsupported start tag "" at byte offset 2`},
		{"MarkdownV2 error", func() reply {
			return call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": "v1.2", "parse_mode": "MarkdownV2"})
		}, 400, `Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantError(t, tt.r(), tt.code, tt.desc) })
	}
	if n := len(s.Sent()); n != 0 {
		t.Errorf("got %d messages stored from malformed requests, want 0", n)
	}
}

func TestStrictChats(t *testing.T) {
	s := start(t, WithStrictChats())
	wantError(t, call(t, s, "sendMessage", map[string]any{"chat_id": owner.ID, "text": "x"}), 400, "Bad Request: chat not found")
	s.SendMessage(owner, Private(owner), "/start")
	wantOK(t, call(t, s, "sendMessage", map[string]any{"chat_id": owner.ID, "text": "x"}))
	s.AddChat(Channel(-1001, "news"))
	wantOK(t, call(t, s, "sendMessage", map[string]any{"chat_id": -1001, "text": "x"}))
}

func TestLengthLimits(t *testing.T) {
	s := start(t)
	emoji := "😀" // two UTF-16 units, four bytes
	tests := []struct {
		name, text, mode string
		ok               bool
	}{
		{"4096 ASCII", strings.Repeat("a", 4096), "", true},
		{"4097 ASCII", strings.Repeat("a", 4097), "", false},
		{"2048 emoji are 4096 units", strings.Repeat(emoji, 2048), "", true},
		{"2048 emoji and one more unit", strings.Repeat(emoji, 2048) + "a", "", false},
		{"4096 Cyrillic letters (8192 bytes)", strings.Repeat("ж", 4096), "", true},
		{"tags do not count", "<b>" + strings.Repeat("a", 4096) + "</b>", "HTML", true},
		{"an entity counts as its character", strings.Repeat("&amp;", 4096), "HTML", true},
		{"4097 decoded characters", strings.Repeat("&amp;", 4097), "HTML", false},
		{"escapes do not count in MarkdownV2", strings.Repeat(`\.`, 4096), "MarkdownV2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": tt.text, "parse_mode": tt.mode})
			if tt.ok {
				wantOK(t, r)
			} else {
				wantError(t, r, 400, "Bad Request: message is too long")
			}
		})
	}
	t.Run("caption", func(t *testing.T) {
		ok := callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "1", "caption": strings.Repeat(emoji, 512)}, "document", "a.txt", []byte("x"))
		wantOK(t, ok)
		long := callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "1", "caption": strings.Repeat(emoji, 512) + "a"}, "document", "a.txt", []byte("x"))
		wantError(t, long, 400, "Bad Request: message caption is too long")
	})
}

func sendText(t *testing.T, s *Server, chat int64, text string, markup any) int {
	t.Helper()
	p := map[string]any{"chat_id": chat, "text": text, "parse_mode": "HTML"}
	if markup != nil {
		p["reply_markup"] = markup
	}
	r := call(t, s, "sendMessage", p)
	wantOK(t, r)
	var wm wireMessage
	json.Unmarshal(r.Result, &wm)
	return wm.MessageID
}

func TestEditAndDelete(t *testing.T) {
	s := start(t)
	_, ownerMsg := s.SendMessage(owner, Private(owner), "/disk")
	kb := map[string]any{"inline_keyboard": [][]map[string]string{{{"text": "Stop", "callback_data": "stop"}}}}
	id := sendText(t, s, owner.ID, "<pre>1</pre>", kb)
	if id != ownerMsg+1 {
		t.Fatalf("got message ID %d, want %d (IDs are per chat)", id, ownerMsg+1)
	}
	edit := func(text string, markup any) reply {
		p := map[string]any{"chat_id": owner.ID, "message_id": id, "text": text, "parse_mode": "HTML"}
		if markup != nil {
			p["reply_markup"] = markup
		}
		return call(t, s, "editMessageText", p)
	}
	notModified := "Bad Request: " + notModified

	wantError(t, edit("<pre>1</pre>", kb), 400, notModified)
	wantError(t, edit("<pre>1</pre>", json.RawMessage(`{"inline_keyboard":[[{"callback_data":"stop","text":"Stop"}]]}`)), 400, notModified)
	wantOK(t, edit("<pre>2</pre>", kb))
	wantOK(t, edit("<b>2</b>", kb))  // same text, other entities
	wantOK(t, edit("<b>2</b>", nil)) // keyboard removed
	wantError(t, edit("<b>2</b>", nil), 400, notModified)
	wantError(t, call(t, s, "editMessageReplyMarkup", map[string]any{"chat_id": owner.ID, "message_id": id}), 400, notModified)
	wantOK(t, call(t, s, "editMessageReplyMarkup", map[string]any{"chat_id": owner.ID, "message_id": id, "reply_markup": kb}))

	m := s.Sent()[0]
	if fmt.Sprint(m.Edits) != "[2 2 2]" || m.Text != "2" || m.MarkupEdits != 1 || len(m.Buttons) != 1 {
		t.Errorf("got %+v, want three text edits, one markup edit and the keyboard back", m)
	}

	wantError(t, call(t, s, "editMessageText", map[string]any{"chat_id": owner.ID, "message_id": ownerMsg, "text": "x"}), 400, "Bad Request: message can't be edited")
	wantError(t, call(t, s, "editMessageText", map[string]any{"chat_id": owner.ID, "message_id": 999, "text": "x"}), 400, "Bad Request: message to edit not found")
	wantError(t, call(t, s, "editMessageText", map[string]any{"chat_id": owner.ID, "text": "x"}), 400, "Bad Request: message identifier is not specified")

	wantOK(t, call(t, s, "deleteMessage", map[string]any{"chat_id": owner.ID, "message_id": id}))
	if err := s.WaitDeleted(hangCtx(t), owner.ID, id); err != nil {
		t.Fatal(err)
	}
	wantError(t, call(t, s, "deleteMessage", map[string]any{"chat_id": owner.ID, "message_id": id}), 400, "Bad Request: message to delete not found")
	wantError(t, edit("<b>3</b>", nil), 400, "Bad Request: message to edit not found")
	if !s.Sent()[0].Deleted {
		t.Error("got Deleted false, want true")
	}
}

func TestCommands(t *testing.T) {
	s := start(t)
	cmds := []Command{{"disk", "disk usage"}, {"login", "log in with a code"}}
	wantOK(t, call(t, s, "setMyCommands", map[string]any{"commands": cmds}))
	if got := s.Commands(); fmt.Sprint(got) != fmt.Sprint(cmds) {
		t.Fatalf("got %v, want %v", got, cmds)
	}
	r := call(t, s, "getMyCommands", nil)
	wantOK(t, r)
	if string(r.Result) != `[{"command":"disk","description":"disk usage"},{"command":"login","description":"log in with a code"}]` {
		t.Errorf("got %s", r.Result)
	}
	wantOK(t, call(t, s, "setMyCommands", map[string]any{"commands": []Command{{"x", "y"}}, "scope": map[string]any{"type": "chat", "chat_id": 5}}))
	if got := s.CommandsFor(`{"chat_id":5,"type":"chat"}`, ""); len(got) != 1 {
		t.Errorf("got %v for the chat scope, want one command", got)
	}
	for _, bad := range []Command{{"Disk", "x"}, {"", "x"}, {strings.Repeat("a", 33), "x"}, {"a-b", "x"}} {
		wantError(t, call(t, s, "setMyCommands", map[string]any{"commands": []Command{bad}}), 400, "Bad Request: BOT_COMMAND_INVALID")
	}
	wantError(t, call(t, s, "setMyCommands", map[string]any{"commands": []Command{{"a", ""}}}), 400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
	wantOK(t, call(t, s, "deleteMyCommands", nil))
	if got := s.Commands(); len(got) != 0 {
		t.Errorf("got %v after deleteMyCommands, want none", got)
	}
}

func TestCallbackQueries(t *testing.T) {
	s := start(t)
	s.SendMessage(owner, Private(owner), "/reboot")
	id := sendText(t, s, owner.ID, "sure?", map[string]any{"inline_keyboard": [][]map[string]string{{{"text": "Yes", "callback_data": "confirm:1"}}}})
	q := s.PressButton(owner, owner.ID, id, "confirm:1")

	r := call(t, s, "getUpdates", map[string]any{"offset": 0})
	wantOK(t, r)
	var ups []wireUpdate
	json.Unmarshal(r.Result, &ups)
	last := ups[len(ups)-1]
	if last.CallbackQuery == nil || last.CallbackQuery.ID != q || last.CallbackQuery.Data != "confirm:1" ||
		last.CallbackQuery.Message == nil || last.CallbackQuery.Message.MessageID != id || last.CallbackQuery.From.ID != owner.ID {
		t.Fatalf("got %s, want the callback query on message %d", r.Result, id)
	}

	wantOK(t, call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q, "text": "ok"}))
	a, err := s.WaitCallbackAnswer(hangCtx(t), q)
	if err != nil || a.Text != "ok" {
		t.Fatalf("got %+v %v, want the answer", a, err)
	}
	tooOld := "Bad Request: query is too old and response timeout expired or query ID is invalid"
	wantError(t, call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q}), 400, tooOld)
	wantError(t, call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": "123"}), 400, tooOld)

	// A press on a message that is gone carries an inaccessible message.
	q2 := s.PressButton(owner, owner.ID, 999, "x")
	r = call(t, s, "getUpdates", map[string]any{"offset": ups[len(ups)-1].UpdateID + 1})
	json.Unmarshal(r.Result, &ups)
	if len(ups) != 1 || ups[0].CallbackQuery.ID != q2 || ups[0].CallbackQuery.Message.Date != 0 {
		t.Fatalf("got %s, want one callback with an inaccessible message", r.Result)
	}
}

func TestWebhook(t *testing.T) {
	s := start(t)
	wantOK(t, call(t, s, "setWebhook", map[string]any{"url": "https://relay.example/hook/abc", "secret_token": "s3cr3t_-", "allowed_updates": []string{"message"}}))
	wantError(t, call(t, s, "getUpdates", nil), 409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
	s.SendMessage(owner, Private(owner), "x")
	r := call(t, s, "getWebhookInfo", nil)
	var info struct {
		URL     string   `json:"url"`
		Pending int      `json:"pending_update_count"`
		Allowed []string `json:"allowed_updates"`
	}
	json.Unmarshal(r.Result, &info)
	if info.URL != "https://relay.example/hook/abc" || info.Pending != 1 || fmt.Sprint(info.Allowed) != "[message]" {
		t.Errorf("got %+v, want the webhook, one pending update and [message]", info)
	}
	wantError(t, call(t, s, "setWebhook", map[string]any{"url": "https://x.example", "secret_token": "no spaces"}), 400, "Bad Request: secret token contains unallowed characters")
	wantError(t, call(t, s, "setWebhook", map[string]any{"url": "relay.example"}), 400, "Bad Request: bad webhook: invalid webhook URL specified")
	wantOK(t, call(t, s, "deleteWebhook", map[string]any{"drop_pending_updates": true}))
	wantOK(t, call(t, s, "getUpdates", nil))
	if got := s.Pending(); got != 0 {
		t.Errorf("got %d pending after drop_pending_updates, want 0", got)
	}
	calls := s.WebhookCalls()
	if len(calls) != 2 || calls[0].SecretToken != "s3cr3t_-" || !calls[1].DropPending {
		t.Errorf("got %+v, want the setWebhook and the deleteWebhook", calls)
	}
}

// TestCloseLeavesNoGoroutines closes a server in the middle of a long
// poll and a delayed call and checks every goroutine it started ended.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	s := New(testToken)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	s.Delay("getMe", time.Hour)
	done := make(chan struct{}, 2)
	for _, m := range []string{"getUpdates?timeout=50", "getMe"} {
		go func() {
			defer func() { done <- struct{}{} }()
			resp, err := c.Post(s.URL()+"/bot"+testToken+"/"+m, "application/json", nil)
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	if err := s.WaitPolling(hangCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitCalls(hangCtx(t), "getMe", 1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	<-done
	<-done
	tr.CloseIdleConnections()
	deadline := time.Now().Add(hang)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("got %d goroutines, want %d:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling for the runtime to reap, not a timing assumption
	}
	// A closed server answers nothing more and its waits end.
	if _, err := s.WaitMessage(context.Background(), func(Message) bool { return false }); err == nil {
		t.Error("got nil from a wait on a closed server, want an error")
	}
}

func TestWaitHonoursContext(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.WaitMessage(ctx, func(Message) bool { return true }); err == nil {
		t.Fatal("got nil error from a wait with a cancelled context, want one")
	}
	got := make(chan Message, 1)
	go func() {
		m, _ := s.WaitMessage(hangCtx(t), func(m Message) bool { return strings.Contains(m.Text, "done") })
		got <- m
	}()
	sendText(t, s, 1, "not yet", nil)
	sendText(t, s, 1, "done &amp; dusted", nil)
	if m := <-got; m.Text != "done & dusted" {
		t.Fatalf("got %q, want the matching message", m.Text)
	}
}

func TestHandlerWithHTTPTest(t *testing.T) {
	s := New(testToken)
	defer s.Close()
	rec := &bytes.Buffer{}
	req, _ := http.NewRequest(http.MethodPost, "/bot"+testToken+"/getMe", nil)
	w := &recorder{h: http.Header{}, b: rec}
	s.Handler().ServeHTTP(w, req)
	if w.code != 200 || !strings.Contains(rec.String(), `"ok":true`) {
		t.Fatalf("got %d %s, want getMe ok", w.code, rec)
	}
}

type recorder struct {
	h    http.Header
	b    *bytes.Buffer
	code int
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(p []byte) (int, error) { return r.b.Write(p) }
func (r *recorder) WriteHeader(c int)           { r.code = c }
