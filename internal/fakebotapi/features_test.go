package fakebotapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// These tests cover what Bot API 9.4 to 10.3 added that relay uses, and
// the fake's answers as a server that lacks each of them.

func draft(id int64, text string, extra ...any) map[string]any {
	m := map[string]any{"chat_id": owner.ID, "draft_id": id, "text": text}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func TestDraftRequests(t *testing.T) {
	s := start(t)
	s.AddChat(Group(-100, "friends"))
	tests := []struct {
		name   string
		params map[string]any
		desc   string // a prefix of the description
	}{
		{"no draft id", map[string]any{"chat_id": owner.ID, "text": "x"}, "Bad Request: invalid draft_id specified"},
		{"zero draft id", draft(0, "x"), "Bad Request: invalid draft_id specified"},
		{"draft id not a number", draft(1, "x", "draft_id", "seven"), "Bad Request: invalid draft_id specified"},
		{"group", map[string]any{"chat_id": -100, "draft_id": 1, "text": "x"}, "Bad Request: TEXTDRAFT_PEER_INVALID"},
		{"too long", draft(1, strings.Repeat("x", MaxMessageLength+1)), "Bad Request: message is too long"},
		{"bad html", draft(1, "<b>x", "parse_mode", "HTML"), "Bad Request: can't parse entities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, "sendMessageDraft", tt.params)
			if r.OK || r.ErrorCode != 400 || !strings.HasPrefix(r.Description, tt.desc) {
				t.Fatalf("got ok=%v %d %q, want 400 %q", r.OK, r.ErrorCode, r.Description, tt.desc)
			}
		})
	}
	if d := s.Drafts(); len(d) != 0 {
		t.Errorf("got drafts %+v from refused requests, want none", d)
	}
	// Empty text is the "Thinking…" placeholder, and the method answers True.
	r := call(t, s, "sendMessageDraft", draft(1, ""))
	wantOK(t, r)
	if string(r.Result) != "true" {
		t.Errorf("got result %s, want true", r.Result)
	}
}

func TestDraftLife(t *testing.T) {
	clock := newFakeClock()
	s := start(t, WithClock(clock))
	wantOK(t, call(t, s, "sendMessageDraft", draft(5, "<b>a</b>", "parse_mode", "HTML")))
	clock.Advance(DraftLifetime - time.Second)
	wantOK(t, call(t, s, "sendMessageDraft", draft(5, "<b>a</b>b", "parse_mode", "HTML")))
	clock.Advance(DraftLifetime - time.Second)
	d := s.Drafts()[0]
	if d.State != DraftLive || d.Updates != 2 || d.Text != "ab" || fmt.Sprint(d.Texts) != "[a ab]" {
		t.Fatalf("29 s after the last update: got %+v, want live with two updates", d)
	}
	clock.Advance(time.Second)
	d = s.Drafts()[0]
	if d.State != DraftExpired || !d.Ended.Equal(d.Updated.Add(DraftLifetime)) {
		t.Fatalf("30 s after the last update: got %s ended %v, want expired at %v", d.State, d.Ended, d.Updated.Add(DraftLifetime))
	}
	if s.LiveDrafts() != nil {
		t.Errorf("got live drafts %+v, want none", s.LiveDrafts())
	}
	// The same ID after expiry is a new draft on screen.
	wantOK(t, call(t, s, "sendMessageDraft", draft(5, "c")))
	// A message in the chat persists the output and ends the draft; a
	// draft elsewhere lives on.
	wantOK(t, call(t, s, "sendMessageDraft", map[string]any{"chat_id": 77, "draft_id": 5, "text": "other chat"}))
	sendText(t, s, owner.ID, "final", nil)
	ds := s.Drafts()
	if len(ds) != 3 || ds[1].State != DraftFinished || ds[1].Text != "c" || ds[2].State != DraftLive {
		t.Fatalf("got %+v, want the expired draft, a finished one, and the other chat's live one", ds)
	}
	// A long stream keeps a bounded history.
	for i := range maxDraftTexts + 50 {
		wantOK(t, call(t, s, "sendMessageDraft", draft(9, fmt.Sprint(i))))
	}
	d = s.Drafts()[3]
	if d.Updates != maxDraftTexts+50 || len(d.Texts) != maxDraftTexts || d.Texts[maxDraftTexts-1] != fmt.Sprint(maxDraftTexts+49) {
		t.Errorf("got %d updates, %d texts, want all counted and the last %d kept", d.Updates, len(d.Texts), maxDraftTexts)
	}
}

func TestStopDraft(t *testing.T) {
	s := start(t)
	wantOK(t, call(t, s, "sendMessageDraft", draft(8, "no button")))
	if _, err := s.StopDraft(owner.ID, 8); !errors.Is(err, ErrNoStopButton) {
		t.Fatalf("stop without can_stop: got %v, want ErrNoStopButton", err)
	}
	if _, err := s.StopDraft(owner.ID, 99); err == nil {
		t.Fatalf("stop of an unknown draft: got nil, want an error")
	}
	wantOK(t, call(t, s, "sendMessageDraft", draft(9, "working", "can_stop", true, "message_thread_id", 3)))
	id, err := s.StopDraft(owner.ID, 9)
	if err != nil {
		t.Fatal(err)
	}
	r := call(t, s, "getUpdates", nil)
	want := fmt.Sprintf(`[{"update_id":%d,"stopped_message_generation":{"chat":{"id":4242,"type":"private"},"message_thread_id":3,"draft_id":9}}]`, id)
	if string(r.Result) != want {
		t.Fatalf("got %s, want %s", r.Result, want)
	}
	// What the library decodes: the field names are the Bot API's.
	var ups []models.Update
	if err := json.Unmarshal(r.Result, &ups); err != nil || ups[0].StoppedMessageGeneration == nil || ups[0].StoppedMessageGeneration.DraftID != 9 {
		t.Fatalf("library decode: got %+v %v", ups, err)
	}
	wantOK(t, call(t, s, "sendMessageDraft", draft(9, "more", "can_stop", true, "message_thread_id", 3)))
	if d := s.Drafts()[1]; d.State != DraftStopped || d.AfterStop != 1 || d.Text != "working" {
		t.Errorf("got %+v, want the stopped draft unchanged, one update after the stop", d)
	}
	if _, err := s.StopDraft(owner.ID, 9); err == nil {
		t.Errorf("second stop: got nil, want an error (the button is gone)")
	}
	// A bot that did not ask for the update never gets it.
	wantOK(t, call(t, s, "getUpdates", map[string]any{"offset": id + 1, "allowed_updates": []string{"message"}}))
	wantOK(t, call(t, s, "sendMessageDraft", draft(10, "x", "can_stop", true)))
	if _, err := s.StopDraft(owner.ID, 10); err != nil {
		t.Fatal(err)
	}
	if n := s.Pending(); n != 0 {
		t.Errorf("got %d pending updates, want the stop dropped by allowed_updates", n)
	}
}

func TestWithoutFeatures(t *testing.T) {
	s := start(t, Without(Features...))
	wantError(t, call(t, s, "sendMessageDraft", draft(1, "x")), 404, "Not Found")
	kb := func(b map[string]any) map[string]any {
		return map[string]any{"inline_keyboard": [][]map[string]any{{b}}}
	}
	// An unknown field is ignored: a styled button shows plain.
	id := sendText(t, s, owner.ID, "Run?", kb(map[string]any{"text": "Run", "callback_data": "r", "style": "danger"}))
	if b := s.Sent()[0].Buttons[0][0]; b.Style != "" || b.Data != "r" {
		t.Errorf("got %+v, want a plain button", b)
	}
	// A disabled button has no kind this server knows.
	r := call(t, s, "editMessageReplyMarkup", map[string]any{"chat_id": owner.ID, "message_id": id, "reply_markup": kb(map[string]any{"text": "✓ Run", "disabled": map[string]any{}})})
	wantError(t, r, 400, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")

	s2 := start(t, Without(FeatureStopButton))
	wantOK(t, call(t, s2, "sendMessageDraft", draft(1, "x", "can_stop", true, "keep_on_stop", true)))
	if d := s2.Drafts()[0]; d.CanStop || d.KeepOnStop {
		t.Errorf("got %+v, want can_stop and keep_on_stop ignored", d)
	}
}

func TestButtonStyleAndDisabled(t *testing.T) {
	s := start(t)
	kb := map[string]any{"inline_keyboard": [][]map[string]any{{
		{"text": "Run", "callback_data": "r:1", "style": "danger"},
		{"text": "Cancel", "callback_data": "x:1"},
		{"text": "Docs", "url": "https://example.com"},
	}}}
	id := sendText(t, s, owner.ID, "Run /reboot?", kb)
	b := s.Sent()[0].Buttons[0]
	if b[0].Style != "danger" || b[1].Style != "" || b[0].Disabled {
		t.Fatalf("got %+v, want Run danger and Cancel plain", b)
	}
	bad := map[string]any{"inline_keyboard": [][]map[string]any{{{"text": "Run", "callback_data": "r", "style": "red"}}}}
	wantError(t, call(t, s, "sendMessage", map[string]any{"chat_id": owner.ID, "text": "x", "reply_markup": bad}), 400, "Bad Request: BUTTON_STYLE_INVALID")
	both := map[string]any{"inline_keyboard": [][]map[string]any{{{"text": "Run", "callback_data": "r", "disabled": map[string]any{}}}}}
	wantError(t, call(t, s, "sendMessage", map[string]any{"chat_id": owner.ID, "text": "x", "reply_markup": both}), 400,
		"Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")

	// Pressing by position, as a phone does.
	if _, err := s.PressButtonAt(owner, owner.ID, id, 3); err == nil {
		t.Errorf("press of a URL button: got nil, want an error")
	}
	if _, err := s.PressButtonAt(owner, owner.ID, id, 4); err == nil {
		t.Errorf("press of a missing button: got nil, want an error")
	}
	q, err := s.PressButtonAt(owner, owner.ID, id, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := call(t, s, "getUpdates", nil)
	var ups []wireUpdate
	json.Unmarshal(r.Result, &ups)
	if len(ups) != 1 || ups[0].CallbackQuery.ID != q || ups[0].CallbackQuery.Data != "r:1" {
		t.Fatalf("got %s, want the press of Run", r.Result)
	}

	done := map[string]any{"inline_keyboard": [][]map[string]any{{{"text": "✓ Run", "disabled": map[string]any{}, "style": "danger"}}}}
	r = call(t, s, "editMessageReplyMarkup", map[string]any{"chat_id": owner.ID, "message_id": id, "reply_markup": done})
	wantOK(t, r)
	if !strings.Contains(string(r.Result), `{"disabled":{},"style":"danger","text":"✓ Run"}`) {
		t.Errorf("got %s, want the disabled button in the returned message", r.Result)
	}
	if b := s.Sent()[0].Buttons; len(b) != 1 || !b[0][0].Disabled || b[0][0].Text != "✓ Run" {
		t.Errorf("got %+v, want one disabled button", b)
	}
	if _, err := s.PressButtonAt(owner, owner.ID, id, 1); err == nil {
		t.Errorf("press of a disabled button: got nil, want an error")
	}
	call(t, s, "deleteMessage", map[string]any{"chat_id": owner.ID, "message_id": id})
	if _, err := s.PressButtonAt(owner, owner.ID, id, 1); err == nil {
		t.Errorf("press on a deleted message: got nil, want an error")
	}
}

func TestLinkPreviewAndProtect(t *testing.T) {
	s := start(t)
	tests := []struct {
		name          string
		params        map[string]any
		off, previews bool
		protected     bool
	}{
		{"bare link", map[string]any{"text": "see https://example.com"}, false, true, false},
		{"www link", map[string]any{"text": "see www.example.com"}, false, true, false},
		{"a href", map[string]any{"text": `<a href="https://e.example/">x</a>`, "parse_mode": "HTML"}, false, true, false},
		{"no link", map[string]any{"text": "disk 91%"}, false, false, false},
		{"previews off", map[string]any{"text": "see https://example.com", "link_preview_options": map[string]any{"is_disabled": true}}, true, false, false},
		{"old option", map[string]any{"text": "see https://example.com", "disable_web_page_preview": true}, true, false, false},
		{"protected", map[string]any{"text": "x", "protect_content": true}, false, false, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.params["chat_id"] = owner.ID
			wantOK(t, call(t, s, "sendMessage", tt.params))
			m := s.Sent()[i]
			if m.NoLinkPreview != tt.off || m.LinkPreview != tt.previews || m.Protected != tt.protected {
				t.Errorf("got off=%v preview=%v protected=%v, want %v %v %v", m.NoLinkPreview, m.LinkPreview, m.Protected, tt.off, tt.previews, tt.protected)
			}
		})
	}
	wantError(t, call(t, s, "sendMessage", map[string]any{"chat_id": owner.ID, "text": "x", "link_preview_options": "{"}), 400, "Bad Request: can't parse link preview options JSON object")
	r := callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "4242", "protect_content": "true"}, "document", "a.txt", []byte("a"))
	wantOK(t, r)
	if !s.Documents()[0].Protected {
		t.Errorf("document: got unprotected, want protect_content recorded")
	}
}

func TestCommandScopes(t *testing.T) {
	s := start(t)
	set := func(scope any, cmds ...Command) {
		t.Helper()
		p := map[string]any{"commands": cmds}
		if scope != nil {
			p["scope"] = scope
		}
		wantOK(t, call(t, s, "setMyCommands", p))
	}
	stranger := Private(User{ID: 666})
	set(nil, Command{"help", "help"})
	if got := s.VisibleCommands(stranger); len(got) != 1 {
		t.Fatalf("default scope: stranger sees %v, want help", got)
	}
	set(map[string]any{"type": "all_private_chats"}, Command{"start", "start"})
	// A chat_id as a string names the same chat.
	set(map[string]any{"type": "chat", "chat_id": "4242"}, Command{"disk", "disk usage"})
	if got := s.VisibleCommands(Private(owner)); len(got) != 1 || got[0].Command != "disk" {
		t.Errorf("owner sees %v, want the chat scope's disk", got)
	}
	if got := s.VisibleCommands(stranger); len(got) != 1 || got[0].Command != "start" {
		t.Errorf("stranger sees %v, want all_private_chats' start", got)
	}
	if got := s.VisibleCommands(Group(-5, "g")); len(got) != 1 || got[0].Command != "help" {
		t.Errorf("a group sees %v, want the default help", got)
	}
	menus := s.CommandMenus()
	if len(menus) != 3 || menus[0].Scope != `{"chat_id":4242,"type":"chat"}` || menus[2].Scope != `{"type":"default"}` {
		t.Errorf("got menus %+v, want three by scope", menus)
	}
	if got, err := s.WaitCommandsFor(hangCtx(t), `{"type":"chat","chat_id":4242}`, ""); err != nil || len(got) != 1 {
		t.Errorf("WaitCommandsFor: got %v %v", got, err)
	}
	wantError(t, call(t, s, "setMyCommands", map[string]any{"commands": []Command{{"a", "b"}}, "scope": map[string]any{"type": "everyone"}}), 400, "Bad Request: wrong BotCommandScope type specified")
	wantError(t, call(t, s, "setMyCommands", map[string]any{"commands": []Command{{"a", "b"}}, "scope": map[string]any{"type": "chat"}}), 400, "Bad Request: can't parse BotCommandScope JSON object")
	wantOK(t, call(t, s, "deleteMyCommands", map[string]any{"scope": map[string]any{"type": "chat", "chat_id": 4242}}))
	if got := s.VisibleCommands(Private(owner)); len(got) != 1 || got[0].Command != "start" {
		t.Errorf("after deleting the chat scope the owner sees %v, want start", got)
	}
}

func TestEvents(t *testing.T) {
	s := start(t)
	ctx := hangCtx(t)
	kb := map[string]any{"inline_keyboard": [][]map[string]any{{{"text": "Run", "callback_data": "r"}}}}
	id := sendText(t, s, owner.ID, "one", kb)
	wantOK(t, call(t, s, "editMessageText", map[string]any{"chat_id": owner.ID, "message_id": id, "text": "two", "reply_markup": kb}))
	wantOK(t, call(t, s, "editMessageReplyMarkup", map[string]any{"chat_id": owner.ID, "message_id": id}))
	wantOK(t, call(t, s, "sendMessageDraft", draft(3, "…", "can_stop", true)))
	if _, err := s.StopDraft(owner.ID, 3); err != nil {
		t.Fatal(err)
	}
	wantOK(t, callMultipart(t, s, "sendDocument", map[string]string{"chat_id": "4242"}, "document", "a.txt", []byte("a\nb\n")))
	wantOK(t, call(t, s, "setMyCommands", map[string]any{"commands": []Command{{"a", "b"}}}))
	q := s.PressButton(owner, owner.ID, id, "r")
	wantOK(t, call(t, s, "answerCallbackQuery", map[string]any{"callback_query_id": q}))
	wantOK(t, call(t, s, "deleteMessage", map[string]any{"chat_id": owner.ID, "message_id": id}))

	evs, err := s.WaitEvents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i, e := range evs {
		kinds = append(kinds, string(e.Kind))
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d has Seq %d, want %d", i, e.Seq, i+1)
		}
	}
	want := "message edit buttons draft stop document commands answer delete"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("got events %s, want %s", got, want)
	}
	// Each event holds the state at its time, not now.
	if evs[0].Message.Text != "one" || len(evs[0].Message.Buttons) != 1 || evs[1].Message.Text != "two" || evs[2].Message.Buttons != nil || !evs[8].Message.Deleted {
		t.Errorf("got event snapshots %+v %+v %+v, want one, two, no keyboard", evs[0].Message, evs[1].Message, evs[2].Message)
	}
	if evs[3].Draft.State != DraftLive || evs[4].Draft.State != DraftStopped || evs[5].Document.Size != 4 || evs[6].Menu.Scope != `{"type":"default"}` || evs[7].Answer.QueryID != q {
		t.Errorf("got events %+v, want each to carry its object", evs[3:8])
	}
	if got := s.Events(evs[7].Seq); len(got) != 1 || got[0].Kind != EventDelete {
		t.Errorf("Events after %d: got %+v, want the delete", evs[7].Seq, got)
	}
	// Bounded: old events are dropped, and the gap shows in Seq.
	s.mu.Lock()
	for range maxEvents {
		s.eventLocked(Event{Kind: EventAnswer})
	}
	n, first := len(s.events), s.events[0].Seq
	s.mu.Unlock()
	if n > maxEvents || first == 1 {
		t.Errorf("got %d events starting at %d, want at most %d with the oldest dropped", n, first, maxEvents)
	}
}

func TestStartOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.168.1.10:0", "example.com:80", "[::]:0", "127.0.0.1"} {
		s := New(testToken)
		if err := s.StartOn(addr); err == nil {
			s.Close()
			t.Errorf("StartOn(%q): got nil, want a refusal", addr)
		}
	}
	// A fixed port, so api_url survives a restart of the fake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := New(testToken)
	if err := s.StartOn("localhost:" + strings.Split(addr, ":")[1]); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.URL() != "http://"+addr {
		t.Errorf("got URL %s, want http://%s", s.URL(), addr)
	}
	wantOK(t, call(t, s, "getMe", nil))
}

// TestLibraryNewFeatures sends drafts and disabled buttons with
// go-telegram/bot v1.24's own types, as relay's transport does.
func TestLibraryNewFeatures(t *testing.T) {
	s := start(t)
	ctx := hangCtx(t)
	b, err := bot.New(testToken, bot.WithServerURL(s.URL()), bot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}
	ok, err := b.SendMessageDraft(ctx, &bot.SendMessageDraftParams{ChatID: owner.ID, DraftID: "12", Text: "<b>up</b>", ParseMode: models.ParseModeHTML, CanStop: true})
	if err != nil || !ok {
		t.Fatalf("SendMessageDraft: %v %v", ok, err)
	}
	if d := s.Drafts()[0]; d.ID != 12 || d.Text != "up" || !d.CanStop {
		t.Errorf("got %+v, want draft 12 with a stop button", d)
	}
	m, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: owner.ID, Text: "x", ProtectContent: true,
		ReplyMarkup: &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "Run", CallbackData: "r", Style: "danger"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if m.ReplyMarkup.InlineKeyboard[0][0].Style != "danger" {
		t.Errorf("got %+v, want the style returned", m.ReplyMarkup)
	}
	_, err = b.EditMessageReplyMarkup(ctx, &bot.EditMessageReplyMarkupParams{ChatID: owner.ID, MessageID: m.ID,
		ReplyMarkup: &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "✓ Run", Disabled: &models.DisabledButton{}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sent()[0]
	if !got.Protected || !got.Buttons[0][0].Disabled {
		t.Errorf("got %+v, want a protected message with a disabled button", got)
	}
	if _, err := b.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: []models.BotCommand{{Command: "disk", Description: "d"}},
		Scope: &models.BotCommandScopeChat{ChatID: owner.ID}}); err != nil {
		t.Fatal(err)
	}
	if got := s.VisibleCommands(Private(owner)); len(got) != 1 {
		t.Errorf("owner sees %v, want disk", got)
	}
}
