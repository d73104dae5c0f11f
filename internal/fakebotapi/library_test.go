package fakebotapi

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// TestWithLibraryClient drives the fake with github.com/go-telegram/bot,
// the client relay uses, to prove the fake understands what it sends
// (multipart/form-data with JSON-encoded fields) and answers in a form it
// decodes.
func TestWithLibraryClient(t *testing.T) {
	s := start(t)
	ctx := hangCtx(t)
	b, err := bot.New(testToken, bot.WithServerURL(s.URL()), bot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("getMe", func(t *testing.T) {
		me, err := b.GetMe(ctx)
		if err != nil || me.ID != 123456789 || !me.IsBot || me.Username != "relay_test_bot" {
			t.Fatalf("got %+v %v, want the fake's bot", me, err)
		}
	})

	var sentID int
	t.Run("sendMessage with HTML and a keyboard", func(t *testing.T) {
		m, err := b.SendMessage(ctx, &bot.SendMessageParams{
			ChatID:              owner.ID,
			Text:                "<pre>a &lt; b</pre>\n<i>exit 0 · 1.2 s</i>",
			ParseMode:           models.ParseModeHTML,
			DisableNotification: true,
			LinkPreviewOptions:  &models.LinkPreviewOptions{IsDisabled: bot.True()},
			ReplyMarkup: &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{
				{Text: "Confirm", CallbackData: "c:1"}, {Text: "Cancel", CallbackData: "x:1"},
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		sentID = m.ID
		if m.Text != "a < b\nexit 0 · 1.2 s" || len(m.Entities) != 2 || m.Entities[0].Type != models.MessageEntityTypePre {
			t.Fatalf("got %q %+v, want the parsed text with pre and italic", m.Text, m.Entities)
		}
		got := s.Sent()[0]
		if !got.Silent || len(got.Buttons) != 1 || got.Buttons[0][1].Data != "x:1" {
			t.Fatalf("got %+v, want a silent message with two buttons", got)
		}
	})

	t.Run("edits and their errors", func(t *testing.T) {
		p := &bot.EditMessageTextParams{ChatID: owner.ID, MessageID: sentID, Text: "<b>done</b>", ParseMode: models.ParseModeHTML}
		if _, err := b.EditMessageText(ctx, p); err != nil {
			t.Fatal(err)
		}
		_, err := b.EditMessageText(ctx, p)
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "message is not modified") {
			t.Fatalf("got %v, want message is not modified", err)
		}
		_, err = b.SendMessage(ctx, &bot.SendMessageParams{ChatID: owner.ID, Text: "1 < 2", ParseMode: models.ParseModeHTML})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "can't parse entities") {
			t.Fatalf("got %v, want an entity parse error", err)
		}
		if ok, err := b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: owner.ID, MessageID: sentID}); !ok || err != nil {
			t.Fatalf("got %v %v, want the delete to succeed", ok, err)
		}
	})

	t.Run("sendDocument upload", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		m, err := b.SendDocument(ctx, &bot.SendDocumentParams{
			ChatID:                      owner.ID,
			Document:                    &models.InputFileUpload{Filename: "disk-20260102.txt", Data: bytes.NewReader(data)},
			Caption:                     "<b>/disk</b> exit 0",
			ParseMode:                   models.ParseModeHTML,
			DisableContentTypeDetection: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if m.Document == nil || m.Document.FileSize != int64(len(data)) || m.Caption != "/disk exit 0" {
			t.Fatalf("got %+v, want the document message", m)
		}
		d := s.Documents()[0]
		if d.SHA256 != sha(data) || !bytes.Equal(d.Data, data) || d.FileName != "disk-20260102.txt" {
			t.Fatalf("got %s %d bytes %q, want the uploaded file", d.SHA256, len(d.Data), d.FileName)
		}
	})

	t.Run("commands, callbacks, webhook", func(t *testing.T) {
		if _, err := b.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: []models.BotCommand{{Command: "disk", Description: "disk usage"}}}); err != nil {
			t.Fatal(err)
		}
		if got := s.Commands(); len(got) != 1 || got[0].Command != "disk" {
			t.Fatalf("got %v, want the disk command", got)
		}
		q := s.PressButton(owner, owner.ID, sentID, "c:1")
		if _, err := b.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: q, Text: "confirmed"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.SetWebhook(ctx, &bot.SetWebhookParams{URL: "https://relay.example/hook", SecretToken: "abc", AllowedUpdates: []string{"message"}}); err != nil {
			t.Fatal(err)
		}
		info, err := b.GetWebhookInfo(ctx)
		if err != nil || info.URL != "https://relay.example/hook" {
			t.Fatalf("got %+v %v, want the webhook", info, err)
		}
		if _, err := b.DeleteWebhook(ctx, &bot.DeleteWebhookParams{DropPendingUpdates: true}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("429 reaches the library as TooManyRequestsError", func(t *testing.T) {
		s.RateLimit("sendMessage", 1, 2*time.Second)
		_, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: owner.ID, Text: "x"})
		var tm *bot.TooManyRequestsError
		if !errors.As(err, &tm) || tm.RetryAfter != 2 {
			t.Fatalf("got %v, want TooManyRequestsError with retry_after 2", err)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		other, _ := bot.New("1:wrong", bot.WithServerURL(s.URL()), bot.WithSkipGetMe())
		if _, err := other.GetMe(ctx); !errors.Is(err, bot.ErrorUnauthorized) {
			t.Fatalf("got %v, want unauthorized", err)
		}
	})
}

// TestLibraryPolling runs the library's own getUpdates loop against the
// fake: updates arrive through a multipart getUpdates with an offset.
func TestLibraryPolling(t *testing.T) {
	s := start(t)
	got := make(chan string, 2)
	b, err := bot.New(testToken, bot.WithServerURL(s.URL()), bot.WithSkipGetMe(),
		bot.WithHTTPClient(3*time.Second, &httpClient), bot.WithAllowedUpdates(bot.AllowedUpdates{"message"}),
		bot.WithDefaultHandler(func(_ context.Context, _ *bot.Bot, u *models.Update) {
			if u.Message != nil {
				got <- u.Message.Text
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(hangCtx(t))
	done := make(chan struct{})
	go func() { b.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	s.SendMessage(owner, Private(owner), "/uptime")
	s.SendMessage(owner, Private(owner), "/disk")
	// The library hands updates to concurrent workers, so order is lost.
	seen := map[string]bool{}
	for range 2 {
		select {
		case text := <-got:
			seen[text] = true
		case <-ctx.Done():
			t.Fatal("the library's poll did not deliver the updates")
		}
	}
	if !seen["/uptime"] || !seen["/disk"] {
		t.Fatalf("got %v, want /uptime and /disk", seen)
	}
}
