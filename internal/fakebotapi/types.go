package fakebotapi

import (
	"encoding/json"
	"time"
)

// User is a Telegram user, as the Bot API serialises it.
type User struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name,omitempty"`
	Username     string `json:"username,omitempty"`
	LanguageCode string `json:"language_code,omitempty"`
}

// Chat is a Telegram chat. Type is "private", "group", "supergroup" or
// "channel".
type Chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
}

// Private is the private chat between the bot and u.
func Private(u User) Chat {
	return Chat{ID: u.ID, Type: "private", FirstName: u.FirstName, Username: u.Username}
}

// Group is a basic group chat; id should be negative, as Telegram's are.
func Group(id int64, title string) Chat { return Chat{ID: id, Type: "group", Title: title} }

// Supergroup is a supergroup chat; id should be -100xxxxxxxxxx.
func Supergroup(id int64, title string) Chat {
	return Chat{ID: id, Type: "supergroup", Title: title}
}

// Channel is a channel; its messages arrive as channel_post updates.
func Channel(id int64, title string) Chat { return Chat{ID: id, Type: "channel", Title: title} }

// Button is one inline keyboard button. Exactly one of Data, URL and
// Disabled is set for the buttons relay sends; Other holds the JSON of any
// other kind.
type Button struct {
	Text  string
	Data  string
	URL   string
	Other string
	// Style is "danger", "success" or "primary" as sent (Bot API 9.4), or
	// "" for the app's default; always "" on a server Without
	// FeatureButtonStyle, which ignores the field.
	Style string
	// Disabled is a DisabledButton (Bot API 10.3): shown, never pressable.
	Disabled bool
}

// Message is a message the bot sent, as the fake holds it now.
type Message struct {
	ID     int
	ChatID int64
	// Text is the current text as the phone shows it: after entity parsing,
	// so without tags and with character references decoded.
	Text string
	// RawText is the current text as the bot sent it.
	RawText   string
	ParseMode string
	Entities  []Entity
	// Buttons is the current inline keyboard, rows of buttons.
	Buttons [][]Button
	// Edits are the texts (parsed) each successful editMessageText set,
	// oldest first, and EditedAt when each arrived; Text equals the last.
	Edits    []string
	EditedAt []time.Time
	// MarkupEdits counts successful editMessageReplyMarkup calls.
	MarkupEdits int
	Deleted     bool
	DeletedAt   time.Time
	// Silent is disable_notification.
	Silent bool
	// Protected is protect_content: the app will not forward or save it.
	Protected bool
	// NoLinkPreview is link_preview_options.is_disabled.
	NoLinkPreview bool
	// LinkPreview reports that Telegram would have fetched a URL in the
	// text to show its preview: the text holds a link and previews were
	// not disabled.
	LinkPreview bool
	// Date is when the fake received it, at the fake clock's precision
	// (Telegram's own date field has whole seconds).
	Date    time.Time
	ReplyTo int
}

// Document is a document the bot uploaded with sendDocument.
type Document struct {
	MessageID int
	ChatID    int64
	FileName  string
	MIMEType  string
	// Caption is the parsed caption, RawCaption as sent.
	Caption    string
	RawCaption string
	ParseMode  string
	Buttons    [][]Button
	Size       int64
	SHA256     string // hex
	// Data is the content when Size is within the memory cap, else nil.
	Data      []byte
	Silent    bool
	Protected bool
	Deleted   bool
	Date      time.Time
}

// DraftState is where a message draft is in its life.
type DraftState string

// Draft states. A draft is live from its first sendMessageDraft until
// DraftLifetime after its last one, the bot persists the output with a
// message in the same chat, or the owner presses its stop button.
const (
	DraftLive     DraftState = "live"
	DraftExpired  DraftState = "expired"
	DraftFinished DraftState = "finished" // the bot sent a message or document in the chat
	DraftStopped  DraftState = "stopped"  // the owner pressed stop
)

// DraftLifetime is how long a draft stays on screen after its last update:
// Telegram's drafts are a temporary 30-second preview.
const DraftLifetime = 30 * time.Second

// maxDraftTexts bounds the texts a draft keeps; Updates counts them all.
const maxDraftTexts = 100

// Draft is a message draft the bot streamed with sendMessageDraft, as the
// fake holds it at the time of the call that returned it.
type Draft struct {
	ChatID   int64
	ThreadID int
	ID       int64
	// Text is the current text as the phone shows it (parsed); RawText as
	// sent. Empty is the "Thinking…" placeholder.
	Text      string
	RawText   string
	ParseMode string
	// Texts are the parsed texts of the last updates, oldest first (at
	// most 100); Updates counts every accepted update.
	Texts   []string
	Updates int
	// CanStop shows a stop button (Bot API 10.3); false on a server
	// Without FeatureStopButton, which ignores can_stop.
	CanStop    bool
	KeepOnStop bool
	State      DraftState
	// Started is the first update, Updated the last accepted one, Ended
	// when the state left live (for an expired draft, Updated plus
	// DraftLifetime).
	Started, Updated, Ended time.Time
	// AfterStop counts updates that arrived after a stop; the fake accepts
	// and ignores them.
	AfterStop int
}

// CommandMenu is one command list set with setMyCommands.
type CommandMenu struct {
	// Scope is the BotCommandScope as canonical JSON, e.g.
	// {"type":"default"} or {"chat_id":4242,"type":"chat"}.
	Scope    string
	Language string
	Commands []Command
}

// CallbackAnswer is one answerCallbackQuery the bot made.
type CallbackAnswer struct {
	QueryID   string
	Text      string
	ShowAlert bool
	URL       string
	At        time.Time
}

// Command is one entry of setMyCommands.
type Command struct {
	Command     string `json:"command"`
	Description string `json:"description"`
}

// WebhookCall is one setWebhook or deleteWebhook the bot made.
type WebhookCall struct {
	Method         string // "setWebhook" or "deleteWebhook"
	URL            string
	SecretToken    string
	AllowedUpdates []string
	DropPending    bool
	MaxConnections int
	At             time.Time
}

// Wire types: what the Bot API puts on the wire.

type wireMessage struct {
	MessageID       int           `json:"message_id"`
	From            *User         `json:"from,omitempty"`
	SenderChat      *Chat         `json:"sender_chat,omitempty"`
	Chat            Chat          `json:"chat"`
	Date            int64         `json:"date"`
	EditDate        int64         `json:"edit_date,omitempty"`
	Text            string        `json:"text,omitempty"`
	Entities        []Entity      `json:"entities,omitempty"`
	Caption         string        `json:"caption,omitempty"`
	CaptionEntities []Entity      `json:"caption_entities,omitempty"`
	Document        *wireDocument `json:"document,omitempty"`
	ReplyToMessage  *wireMessage  `json:"reply_to_message,omitempty"`
	ReplyMarkup     *wireMarkup   `json:"reply_markup,omitempty"`
}

type wireDocument struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name,omitempty"`
	MIMEType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
}

type wireMarkup struct {
	InlineKeyboard [][]wireButton `json:"inline_keyboard"`
}

type wireButton struct {
	Text         string  `json:"text"`
	CallbackData *string `json:"callback_data,omitempty"`
	URL          string  `json:"url,omitempty"`
	Style        string  `json:"style,omitempty"`
	Disabled     bool    `json:"-"`
	// Other button kinds are kept as they came.
	Extra map[string]json.RawMessage `json:"-"`
}

func (b wireButton) MarshalJSON() ([]byte, error) {
	m := map[string]any{"text": b.Text}
	if b.CallbackData != nil {
		m["callback_data"] = *b.CallbackData
	}
	if b.URL != "" {
		m["url"] = b.URL
	}
	if b.Style != "" {
		m["style"] = b.Style
	}
	if b.Disabled {
		m["disabled"] = struct{}{}
	}
	for k, v := range b.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

type wireUpdate struct {
	UpdateID          int64         `json:"update_id"`
	Message           *wireMessage  `json:"message,omitempty"`
	EditedMessage     *wireMessage  `json:"edited_message,omitempty"`
	ChannelPost       *wireMessage  `json:"channel_post,omitempty"`
	EditedChannelPost *wireMessage  `json:"edited_channel_post,omitempty"`
	CallbackQuery     *wireCallback `json:"callback_query,omitempty"`
	Stopped           *wireStopped  `json:"stopped_message_generation,omitempty"`
}

// wireStopped is MessageGenerationStopped.
type wireStopped struct {
	Chat     Chat  `json:"chat"`
	ThreadID int   `json:"message_thread_id,omitempty"`
	DraftID  int64 `json:"draft_id"`
}

type wireCallback struct {
	ID           string       `json:"id"`
	From         User         `json:"from"`
	Message      *wireMessage `json:"message,omitempty"`
	ChatInstance string       `json:"chat_instance"`
	Data         string       `json:"data,omitempty"`
}
