package telegram

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		text, name, args string
		ok               bool
	}{
		{"/disk", "disk", "", true},
		{"/Disk", "disk", "", true},
		{"/disk  /var  ", "disk", "/var", true},
		{"/disk\n/var", "disk", "/var", true},
		{"/disk@relay_bot /var", "disk", "/var", true},
		{"/login 123456", "login", "123456", true},
		{"/a_b_9", "a_b_9", "", true},
		{"/" + strings.Repeat("a", 32), strings.Repeat("a", 32), "", true},
		{"/" + strings.Repeat("a", 33), "", "", false},
		{"disk", "", "", false},
		{" /disk", "", "", false},
		{"/", "", "", false},
		{"/ disk", "", "", false},
		{"/disk@", "", "", false},
		{"/disk@bad-name", "", "", false},
		{"/dis-k", "", "", false},
		{"/dísk", "", "", false},
		{"/\u212Aill", "", "", false}, // Kelvin sign lower-cases to "k"
		{"/disk\xff", "", "", false},
		{"/disk\u00a0x", "disk", "x", true}, // no-break space separates too
		{"//disk", "", "", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.text), func(t *testing.T) {
			name, args, ok := ParseCommand(tt.text)
			if name != tt.name || args != tt.args || ok != tt.ok {
				t.Errorf("ParseCommand(%q) = (%q, %q, %v), want (%q, %q, %v)", tt.text, name, args, ok, tt.name, tt.args, tt.ok)
			}
		})
	}
}

func TestParseCommandFor(t *testing.T) {
	tests := []struct {
		text string
		ok   bool
	}{
		{"/disk", true}, {"/disk@relay_bot", true}, {"/disk@Relay_Bot x", true}, {"/disk@other_bot", false},
	}
	for _, tt := range tests {
		if _, _, ok := ParseCommandFor(tt.text, "relay_bot"); ok != tt.ok {
			t.Errorf("ParseCommandFor(%q) ok = %v, want %v", tt.text, ok, tt.ok)
		}
	}
}

func TestDecodeUpdate(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Update
	}{
		{"message", textUpdate(1, "hi"), Update{ID: 1, Kind: KindMessage, MessageID: 10, UserID: 7, ChatID: 7, ChatType: "private", Text: "hi"}},
		{"edited", `{"update_id":2,"edited_message":{"message_id":5,"date":10,"edit_date":20,"text":"x","from":{"id":3},"chat":{"id":4,"type":"group"}}}`,
			Update{ID: 2, Kind: KindEditedMessage, MessageID: 5, UserID: 3, ChatID: 4, ChatType: "group", Text: "x"}},
		{"callback", `{"update_id":3,"callback_query":{"id":"cb1","data":"c:1","from":{"id":7},"message":{"message_id":9,"date":5,"chat":{"id":7,"type":"private"}}}}`,
			Update{ID: 3, Kind: KindCallbackQuery, MessageID: 9, UserID: 7, ChatID: 7, ChatType: "private", CallbackID: "cb1", CallbackData: "c:1"}},
		{"channel post", `{"update_id":4,"channel_post":{"message_id":1,"date":5,"text":"t","sender_chat":{"id":-100},"chat":{"id":-100,"type":"channel"}}}`,
			Update{ID: 4, Kind: KindChannelPost, MessageID: 1, ChatID: -100, ChatType: "channel", Text: "t", Indirect: IndirectSenderChat}},
		{"bot sender", `{"update_id":5,"message":{"message_id":1,"date":5,"text":"t","from":{"id":9,"is_bot":true},"chat":{"id":9,"type":"private"}}}`,
			Update{ID: 5, Kind: KindMessage, MessageID: 1, UserID: 9, FromBot: true, ChatID: 9, ChatType: "private", Text: "t"}},
		{"other", `{"update_id":6,"my_chat_member":{"chat":{"id":1}}}`, Update{ID: 6, Kind: KindOther}},
		{"draft stopped", `{"update_id":8,"stopped_message_generation":{"chat":{"id":7,"type":"private"},"draft_id":31}}`,
			Update{ID: 8, Kind: KindGenerationStopped, UserID: 7, ChatID: 7, ChatType: "private", DraftID: 31}},
		// The update names no user: only a private chat says who pressed.
		{"draft stopped in a group", `{"update_id":9,"stopped_message_generation":{"chat":{"id":-100,"type":"supergroup"},"message_thread_id":3,"draft_id":31}}`,
			Update{ID: 9, Kind: KindGenerationStopped, ChatID: -100, ChatType: "supergroup", DraftID: 31}},
		{"draft stopped without a draft", `{"update_id":10,"stopped_message_generation":{"chat":{"id":7,"type":"private"}}}`,
			Update{ID: 10, Kind: KindOther}},
		{"lone surrogate", `{"update_id":7,"message":{"message_id":1,"date":5,"text":"\ud800x","chat":{"id":1,"type":"private"}}}`,
			Update{ID: 7, Kind: KindMessage, MessageID: 1, ChatID: 1, ChatType: "private", Text: "\uFFFDx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeUpdate([]byte(tt.raw))
			if err != nil {
				t.Fatalf("decodeUpdate: %v", err)
			}
			got.Date = tt.want.Date // compared below where it matters
			if fmt.Sprintf("%#v", fields(got)) != fmt.Sprintf("%#v", fields(tt.want)) {
				t.Errorf("got %+v, want %+v", fields(got), fields(tt.want))
			}
		})
	}
	u, _ := decodeUpdate([]byte(`{"update_id":2,"edited_message":{"message_id":5,"date":10,"edit_date":20,"chat":{"id":4}}}`))
	if u.Date.Unix() != 20 {
		t.Errorf("edited message date: got %d, want the edit date 20", u.Date.Unix())
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"update_id":0}`, `{"update_id":-1,"message":{}}`, `{"update_id":"1"}`, `{"update_id":1,"message":5}`} {
		if _, err := decodeUpdate([]byte(bad)); err == nil {
			t.Errorf("decodeUpdate(%s): got nil error, want one", bad)
		} else if strings.Contains(err.Error(), bad) && bad != "" {
			t.Errorf("decode error quotes the input: %v", err)
		}
	}
}

// fields lists the comparable fields of an Update, bypassing its
// deliberately content-free String and GoString.
func fields(u Update) []any {
	return []any{u.ID, u.Kind, u.MessageID, u.UserID, u.FromBot, u.ChatID, u.ChatType, u.Text, u.CallbackID, u.CallbackData, u.DraftID, u.Indirect}
}

// TestDecodeIndirect: every way a message from the owner's own account
// can carry words the owner did not type in this chat is flagged, and a
// message with none of them is not. Field names as in the Bot API.
func TestDecodeIndirect(t *testing.T) {
	msg := func(extra string) string {
		return `{"update_id":1,"message":{"message_id":2,"date":5,"text":"/reboot","from":{"id":7},"chat":{"id":7,"type":"private"}` + extra + `}}`
	}
	tests := []struct {
		name, raw, want string
	}{
		{"typed", msg(``), ""},
		{"forward from a user", msg(`,"forward_origin":{"type":"user","date":4,"sender_user":{"id":9,"is_bot":false,"first_name":"M"}}`), IndirectForwarded},
		{"forward from a hidden user", msg(`,"forward_origin":{"type":"hidden_user","date":4,"sender_user_name":"M"}`), IndirectForwarded},
		{"forward from a channel", msg(`,"forward_origin":{"type":"channel","date":4,"chat":{"id":-100,"type":"channel"},"message_id":3}`), IndirectForwarded},
		{"forward of the owner's own message", msg(`,"forward_origin":{"type":"user","date":4,"sender_user":{"id":7,"is_bot":false,"first_name":"O"}}`), IndirectForwarded},
		{"forward before Bot API 7.0", msg(`,"forward_date":4`), IndirectForwarded},
		{"automatic forward", msg(`,"is_automatic_forward":true`), IndirectForwarded},
		{"via an inline bot", msg(`,"via_bot":{"id":11,"is_bot":true,"first_name":"gif"}`), IndirectViaBot},
		{"on behalf of a chat", msg(`,"sender_chat":{"id":-100,"type":"supergroup"}`), IndirectSenderChat},
		{"business connection", msg(`,"business_connection_id":"bc1"`), IndirectBusiness},
		{"business bot", msg(`,"sender_business_bot":{"id":12,"is_bot":true,"first_name":"b"}`), IndirectBusiness},
		{"scheduled or away message", msg(`,"is_from_offline":true`), IndirectOffline},
		{"null fields are absent", msg(`,"forward_origin":null,"via_bot":null,"sender_chat":null,"sender_business_bot":null`), ""},
		{"false flags are absent", msg(`,"is_automatic_forward":false,"is_from_offline":false,"business_connection_id":""`), ""},
		{"business message", `{"update_id":1,"business_message":{"message_id":2,"date":5,"text":"/reboot","from":{"id":7},"chat":{"id":8,"type":"private"}}}`, IndirectBusiness},
		{"edited business message", `{"update_id":1,"edited_business_message":{"message_id":2,"date":5,"text":"/reboot","from":{"id":7},"chat":{"id":7,"type":"private"}}}`, IndirectBusiness},
		{"edited forward", `{"update_id":1,"edited_message":{"message_id":2,"date":5,"edit_date":6,"text":"/x","from":{"id":7},"chat":{"id":7,"type":"private"},"via_bot":{"id":1}}}`, IndirectViaBot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := decodeUpdate([]byte(tt.raw))
			if err != nil {
				t.Fatalf("decodeUpdate: %v", err)
			}
			if u.Indirect != tt.want {
				t.Errorf("got Indirect %q, want %q", u.Indirect, tt.want)
			}
			if strings.Contains(tt.name, "business message") && u.Kind != KindBusinessMessage {
				t.Errorf("got kind %q, want %q", u.Kind, KindBusinessMessage)
			}
		})
	}
}

func TestUpdateNeverPrintsContent(t *testing.T) {
	u := Update{ID: 1, Kind: KindMessage, Text: "/login 654321", CallbackData: "confirm:s3cret"}
	var buf bytes.Buffer
	zl := zerolog.New(&buf)
	zl.Info().Object("update", u).Msg("x")
	for _, s := range []string{fmt.Sprintf("%v", u), fmt.Sprintf("%+v", u), fmt.Sprintf("%#v", u), fmt.Sprintf("%v", &u), buf.String()} {
		if strings.Contains(s, "654321") || strings.Contains(s, "s3cret") {
			t.Errorf("formatted update reveals content: %q", s)
		}
	}
}

func TestFuzzSeedCorpus(t *testing.T) {
	for _, name := range []string{"FuzzParseCommand", "FuzzDecodeUpdate"} {
		entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
		if err != nil || len(entries) == 0 {
			t.Errorf("seed corpus for %s: %d files, err %v; want at least one", name, len(entries), err)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"/disk /var", "/Disk@relay_bot a b", "/\u212A", "/x\xff", "/a@b@c", "/" + strings.Repeat("z", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		name, args, ok := ParseCommand(text)
		if !ok {
			if name != "" || args != "" {
				t.Fatalf("ParseCommand(%q) = (%q, %q, false), want empty results", text, name, args)
			}
			return
		}
		if !commandName().MatchString(name) {
			t.Fatalf("ParseCommand(%q) name %q does not match [a-z0-9_]{1,32}", text, name)
		}
		if !strings.HasPrefix(strings.ToLower(text), "/"+name) {
			t.Fatalf("ParseCommand(%q) name %q is not the start of the text", text, name)
		}
		if !utf8.ValidString(args) || !strings.HasSuffix(strings.TrimSpace(text), strings.TrimSpace(args)) {
			t.Fatalf("ParseCommand(%q) args %q are not the end of the text", text, args)
		}
	})
}

func FuzzDecodeUpdate(f *testing.F) {
	f.Add([]byte(textUpdate(1, "/disk")))
	f.Add([]byte(`{"update_id":1,"message":{"message_id":3,"date":1,"text":"/x","chat":{"id":7,"type":"private"},"entities":[{"type":"bot_command","offset":99999,"length":-1}]}}`))
	f.Add([]byte(`{"update_id":3,"stopped_message_generation":{"chat":{"id":7,"type":"private"},"draft_id":-9223372036854775808}}`))
	f.Add([]byte(`{"update_id":9223372036854775807,"callback_query":{"id":"x","from":{"id":1},"message":{"message_id":1,"chat":{"id":1},"date":0}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		u, err := decodeUpdate(raw)
		if err != nil {
			return
		}
		if u.ID <= 0 {
			t.Fatalf("decoded update with ID %d", u.ID)
		}
		if !utf8.ValidString(u.Text) || !utf8.ValidString(u.CallbackData) {
			t.Fatalf("decoded invalid UTF-8")
		}
		ParseCommand(u.Text)
		if u.Kind == KindGenerationStopped && (u.DraftID == 0 || (u.UserID != 0 && (u.ChatType != "private" || u.UserID != u.ChatID))) {
			t.Fatalf("stop update names user %d in %s chat %d (draft %d); want the chat's own id in a private chat only", u.UserID, u.ChatType, u.ChatID, u.DraftID)
		}
		if u.Kind == KindBusinessMessage && u.Indirect == "" {
			t.Fatalf("business message not marked indirect")
		}
		if id, ok := updateID(raw); !ok || id != u.ID {
			t.Fatalf("updateID = %d, %v; decodeUpdate ID %d", id, ok, u.ID)
		}
	})
}
