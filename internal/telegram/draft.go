package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// ErrDraftsUnsupported means the server will not show message drafts
// here: it does not know sendMessageDraft (a Bot API server older than
// 9.5, or a local Bot API build without it, both answer 404), the chat is
// not a private chat, or Telegram refused drafts for this peer
// (TEXTDRAFT_PEER_INVALID). The caller falls back to a message it edits.
var ErrDraftsUnsupported = errors.New("telegram: message drafts unsupported")

// peerInvalid is Telegram's description for a draft to a chat that cannot
// show one (a group, or a private chat the server will not stream to).
const peerInvalid = "TEXTDRAFT_PEER_INVALID"

// Draft is one state of a message draft: a preview the owner's app shows
// while a job runs, updated in place and gone by itself about 30 seconds
// after its last update. Nothing of it stays in the chat: the result must
// still be sent as a message or a document.
//
// Fields as in the Bot API's sendMessageDraft (Bot API 9.5 for every bot;
// can_stop and keep_on_stop from 10.3), checked against
// go-telegram/bot v1.24.0's SendMessageDraftParams.
type Draft struct {
	// ChatID is the private chat: the owner's user ID. Drafts exist only
	// in private chats.
	ChatID int64
	// ID identifies the draft and must not be 0. Updates with the same ID
	// are animated as one growing draft; a new ID replaces it.
	ID int64
	// HTML is the draft text, rendered by chatfmt (at most 4096 characters
	// after entity parsing). Empty shows Telegram's "Thinking…"
	// placeholder.
	HTML string
	// CanStop shows the owner a stop button; pressing it delivers a
	// KindGenerationStopped update with this draft's ID. A server before
	// Bot API 10.3 ignores it: no button, no update.
	CanStop bool
	// KeepOnStop keeps the draft on screen after a stop.
	KeepOnStop bool
}

// SendDraft starts or updates a draft. It makes one attempt and never
// waits: a draft is superseded by the next one, so a failed update is
// better skipped than retried late. A 429 is returned at once (RetryAfter
// says how long to skip updates).
//
// When the server will not show drafts the error satisfies
// errors.Is(err, ErrDraftsUnsupported). A server that does not know the
// method is remembered, and later calls fail the same way without a
// request.
func (c *Client) SendDraft(ctx context.Context, d Draft) error {
	if d.ID == 0 {
		return errors.New("telegram: draft id must not be 0")
	}
	if !utf8.ValidString(d.HTML) {
		return errors.New("telegram: draft text is not UTF-8 (render it with chatfmt)")
	}
	if d.ChatID <= 0 {
		// Groups and channels have negative IDs; users positive ones.
		return fmt.Errorf("%w: chat %d is not a private chat", ErrDraftsUnsupported, d.ChatID)
	}
	if c.noDrafts.Load() {
		return fmt.Errorf("%w: the bot api server does not know sendMessageDraft", ErrDraftsUnsupported)
	}
	params := &bot.SendMessageDraftParams{
		ChatID: d.ChatID,
		// The library types draft_id as a string here (and as an int in
		// MessageGenerationStopped); on the wire both are the same
		// decimal field of the multipart form.
		DraftID:    strconv.FormatInt(d.ID, 10),
		Text:       d.HTML,
		CanStop:    d.CanStop,
		KeepOnStop: d.KeepOnStop,
	}
	if d.HTML != "" {
		params.ParseMode = models.ParseModeHTML
	}
	err := c.callOnce(ctx, "sendMessageDraft", func(ctx context.Context) error {
		_, err := c.bot.SendMessageDraft(ctx, params)
		return err
	})
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case e.Code == 404:
		// A server answers 404 for a method it does not know; the token
		// itself was fine for every other call.
		e.unsupported = true
		if !c.noDrafts.Swap(true) {
			c.log.Info().Msg("the bot api server does not offer message drafts; progress falls back to edited messages")
		}
	case e.Code == 400 && strings.Contains(strings.ToUpper(e.desc), peerInvalid):
		e.unsupported = true
	}
	if e.unsupported {
		e.msg = fmt.Sprintf("%d %s (the server does not show message drafts here; fall back to an edited message)", e.Code, e.desc)
	}
	return e
}
