package telegram

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

// Update kinds.
const (
	KindMessage       = "message"
	KindEditedMessage = "edited_message"
	KindCallbackQuery = "callback_query"
	KindChannelPost   = "channel_post"
	// KindBusinessMessage is a message in a chat of a business account
	// the bot is connected to (business_message, edited_business_message):
	// written by or to the account's customers, never a command.
	KindBusinessMessage = "business_message"
	// KindGenerationStopped is the owner pressing the stop button of a
	// draft sent with CanStop (Bot API 10.3, MessageGenerationStopped).
	KindGenerationStopped = "stopped_message_generation"
	KindOther             = "other"
)

// Update is one Bot API update, reduced to what relay acts on. It is
// decoded by this package, not by the library, and carries no entities:
// commands are parsed from Text by ParseCommand.
//
// Text and CallbackData may hold secrets (a /login code): String and the
// zerolog marshaller leave them out, and so must anything else that logs.
type Update struct {
	// ID is the update_id; updates arrive in increasing ID order.
	ID int64
	// Kind is one of the Kind constants; anything relay does not handle
	// is KindOther, with only ID set.
	Kind string
	// MessageID is the message's id; for a callback query, the id of the
	// message that carries the button (0 if Telegram did not send it).
	MessageID int
	// UserID is the sender (the presser, for a callback query); 0 when the
	// update has no user, as in a channel post.
	UserID int64
	// FromBot is set when the sender is a bot.
	FromBot bool
	// ChatID and ChatType ("private", "group", "supergroup", "channel")
	// are the chat the message is in.
	ChatID   int64
	ChatType string
	// Date is when the message was sent (edited, for an edited message).
	// It is the zero time for a callback query or a stopped draft, which
	// carry no date: freshness of a press comes from the daemon's own
	// records of the prompts and drafts it sent.
	Date time.Time
	// Text is the message text; empty for messages without text.
	Text string
	// CallbackID and CallbackData are set for a callback query.
	CallbackID   string
	CallbackData string
	// DraftID is the draft whose stop button was pressed, for
	// KindGenerationStopped. That update names only the chat, so UserID
	// is the chat's ID when the chat is private (a private chat's ID is
	// its user's ID) and 0 otherwise.
	DraftID int64

	// Indirect says why a message's text may not have been typed by its
	// sender in this chat, or is "" when nothing says so: one of the
	// Indirect* constants. A message can be from the owner's account and
	// still carry someone else's words (a forward), an inline bot's
	// (via_bot), a chat's (sender_chat), a business bot's or a scheduled
	// or automatic message's; none of those is a command.
	Indirect string
}

// Reasons for Update.Indirect, checked in this order. Field names as in
// the Bot API's Message (checked against go-telegram/bot v1.24.0's
// models.Message): forward_origin (Bot API 7.0; the older forward_date
// too, for a server that predates it) and is_automatic_forward; via_bot;
// sender_chat; business_connection_id and sender_business_bot (Bot API
// 7.2 and 9.x); is_from_offline (Bot API 7.2: a scheduled, away or
// greeting message, sent by no one at the keyboard).
const (
	IndirectForwarded  = "forwarded"
	IndirectViaBot     = "via_bot"
	IndirectSenderChat = "sender_chat"
	IndirectBusiness   = "business"
	IndirectOffline    = "offline"
)

// String describes the update without its text or callback data.
func (u Update) String() string {
	return "update " + strconv.FormatInt(u.ID, 10) + " (" + u.Kind + ")"
}

// GoString is String, so %#v cannot print the text either.
func (u Update) GoString() string { return u.String() }

// MarshalZerologObject logs the update's identifiers, never its content.
func (u Update) MarshalZerologObject(e *zerolog.Event) {
	e.Int64("update_id", u.ID).Str("kind", u.Kind).Int64("chat_id", u.ChatID).
		Int64("user_id", u.UserID).Int("message_id", u.MessageID)
	if u.DraftID != 0 {
		e.Int64("draft_id", u.DraftID)
	}
	if u.Indirect != "" {
		e.Str("indirect", u.Indirect)
	}
}

type rawUpdate struct {
	UpdateID          int64        `json:"update_id"`
	Message           *rawMessage  `json:"message"`
	EditedMessage     *rawMessage  `json:"edited_message"`
	ChannelPost       *rawMessage  `json:"channel_post"`
	EditedChannelPost *rawMessage  `json:"edited_channel_post"`
	CallbackQuery     *rawCallback `json:"callback_query"`
	Stopped           *rawStopped  `json:"stopped_message_generation"`
	Business          *rawMessage  `json:"business_message"`
	EditedBusiness    *rawMessage  `json:"edited_business_message"`
}

// rawStopped is MessageGenerationStopped: chat, message_thread_id (unused:
// relay streams outside threads) and draft_id.
type rawStopped struct {
	Chat    rawChat `json:"chat"`
	DraftID int64   `json:"draft_id"`
}

type rawMessage struct {
	MessageID int      `json:"message_id"`
	From      *rawUser `json:"from"`
	Chat      rawChat  `json:"chat"`
	Date      int64    `json:"date"`
	EditDate  int64    `json:"edit_date"`
	Text      string   `json:"text"`

	// Provenance: only whether each is present matters, so the objects
	// are kept raw and never decoded further.
	ForwardOrigin      json.RawMessage `json:"forward_origin"`
	ForwardDate        int64           `json:"forward_date"`
	AutomaticForward   bool            `json:"is_automatic_forward"`
	ViaBot             json.RawMessage `json:"via_bot"`
	SenderChat         json.RawMessage `json:"sender_chat"`
	BusinessConnection string          `json:"business_connection_id"`
	SenderBusinessBot  json.RawMessage `json:"sender_business_bot"`
	FromOffline        bool            `json:"is_from_offline"`
}

// present reports whether a raw field was sent with a value: absent and
// null are the same to the Bot API.
func present(r json.RawMessage) bool { return len(r) > 0 && string(r) != "null" }

// indirect is Update.Indirect for m.
func (m *rawMessage) indirect() string {
	switch {
	case present(m.ForwardOrigin) || m.ForwardDate != 0 || m.AutomaticForward:
		return IndirectForwarded
	case present(m.ViaBot):
		return IndirectViaBot
	case present(m.SenderChat):
		return IndirectSenderChat
	case m.BusinessConnection != "" || present(m.SenderBusinessBot):
		return IndirectBusiness
	case m.FromOffline:
		return IndirectOffline
	}
	return ""
}

type rawUser struct {
	ID    int64 `json:"id"`
	IsBot bool  `json:"is_bot"`
}

type rawChat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

type rawCallback struct {
	ID      string      `json:"id"`
	From    rawUser     `json:"from"`
	Message *rawMessage `json:"message"`
	Data    string      `json:"data"`
}

// updateID reads only the update_id, so that an update that fails to
// decode can still be skipped past.
func updateID(raw []byte) (int64, bool) {
	var v struct {
		UpdateID int64 `json:"update_id"`
	}
	if json.Unmarshal(raw, &v) != nil || v.UpdateID <= 0 {
		return 0, false
	}
	return v.UpdateID, true
}

// decodeUpdate turns one raw update into an Update. It never panics; an
// error never quotes the input.
func decodeUpdate(raw []byte) (u Update, err error) {
	defer func() {
		if r := recover(); r != nil {
			u, err = Update{}, fmt.Errorf("decode update: panic %T", r)
		}
	}()
	var r rawUpdate
	if err := json.Unmarshal(raw, &r); err != nil {
		return Update{}, errors.New("decode update: malformed json")
	}
	if r.UpdateID <= 0 {
		return Update{}, errors.New("decode update: missing update_id")
	}
	u = Update{ID: r.UpdateID, Kind: KindOther}
	switch {
	case r.Message != nil:
		u.Kind = KindMessage
		fillMessage(&u, r.Message)
	case r.EditedMessage != nil:
		u.Kind = KindEditedMessage
		fillMessage(&u, r.EditedMessage)
		if r.EditedMessage.EditDate > 0 {
			u.Date = time.Unix(r.EditedMessage.EditDate, 0)
		}
	case r.ChannelPost != nil:
		u.Kind = KindChannelPost
		fillMessage(&u, r.ChannelPost)
	case r.Business != nil || r.EditedBusiness != nil:
		// Relay never asks for these (allowedUpdates), but a server
		// that sends them anyway must not have them read as messages.
		m := r.Business
		if m == nil {
			m = r.EditedBusiness
		}
		u.Kind = KindBusinessMessage
		fillMessage(&u, m)
		u.Indirect = IndirectBusiness
	case r.CallbackQuery != nil:
		cq := r.CallbackQuery
		u.Kind = KindCallbackQuery
		u.CallbackID = cq.ID
		u.CallbackData = cq.Data
		u.UserID = cq.From.ID
		u.FromBot = cq.From.IsBot
		if cq.Message != nil {
			u.MessageID = cq.Message.MessageID
			u.ChatID = cq.Message.Chat.ID
			u.ChatType = cq.Message.Chat.Type
		}
	case r.Stopped != nil && r.Stopped.DraftID != 0:
		u.Kind = KindGenerationStopped
		u.DraftID = r.Stopped.DraftID
		u.ChatID = r.Stopped.Chat.ID
		u.ChatType = r.Stopped.Chat.Type
		if u.ChatType == "private" {
			u.UserID = u.ChatID
		}
	}
	return u, nil
}

func fillMessage(u *Update, m *rawMessage) {
	u.MessageID = m.MessageID
	if m.From != nil {
		u.UserID = m.From.ID
		u.FromBot = m.From.IsBot
	}
	u.ChatID = m.Chat.ID
	u.ChatType = m.Chat.Type
	u.Date = time.Unix(m.Date, 0)
	u.Text = m.Text
	u.Indirect = m.indirect()
}
