package telegram

import (
	"context"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"io"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// Limits the Bot API enforces, checked here so that a bad request fails
// before it is sent, with a message that says what to fix.
const (
	maxCallbackData   = 64   // bytes
	maxCaption        = 1024 // UTF-16 units
	maxAnswerText     = 200  // characters
	maxCommandDesc    = 256  // characters
	maxButtonsPerRow  = 8
	maxFilenameLength = 64
)

// MaxCommands is the most commands Telegram shows in a bot's menu
// (setMyCommands refuses more).
const MaxCommands = 100

// Button is an inline keyboard button that sends Data back as a callback
// query when pressed.
type Button struct {
	Text string
	Data string
	// Style colours the button (Bot API 9.4); empty is the app's default.
	// A server that predates styles shows a plain button.
	Style ButtonStyle
}

// ButtonStyle is an inline button's colour, as the Bot API names them.
type ButtonStyle string

// The styles InlineKeyboardButton.style accepts.
const (
	StyleDanger  ButtonStyle = "danger"  // red: a button that changes something
	StyleSuccess ButtonStyle = "success" // green
	StylePrimary ButtonStyle = "primary" // blue
)

// Command is an entry of the bot's command menu.
type Command struct {
	Name        string
	Description string
}

// SendOpt adjusts a send or an edit.
type SendOpt func(*sendOptions)

type sendOptions struct {
	silent     bool
	atMostOnce bool
	buttons    [][]Button
}

// Silent sends without a notification sound.
func Silent() SendOpt { return func(o *sendOptions) { o.silent = true } }

// AtMostOnce turns off the retry of a send after a 5xx or a network
// failure, where Telegram may already have delivered the message. A 429 is
// still retried.
func AtMostOnce() SendOpt { return func(o *sendOptions) { o.atMostOnce = true } }

// Buttons attaches an inline keyboard, one slice per row.
func Buttons(rows ...[]Button) SendOpt {
	return func(o *sendOptions) { o.buttons = append(o.buttons, rows...) }
}

func checkStyle(s ButtonStyle) error {
	switch s {
	case "", StyleDanger, StyleSuccess, StylePrimary:
		return nil
	}
	return fmt.Errorf("telegram: button style %q is not one of danger, success, primary", s)
}

func collect(opts []SendOpt) (sendOptions, error) {
	var o sendOptions
	for _, f := range opts {
		f(&o)
	}
	for _, row := range o.buttons {
		if len(row) == 0 || len(row) > maxButtonsPerRow {
			return o, fmt.Errorf("telegram: a button row has %d buttons (want 1 to %d)", len(row), maxButtonsPerRow)
		}
		for _, b := range row {
			if b.Text == "" || !utf8.ValidString(b.Text) {
				return o, errors.New("telegram: button text is empty or not UTF-8")
			}
			if len(b.Data) == 0 || len(b.Data) > maxCallbackData {
				return o, fmt.Errorf("telegram: button data is %d bytes (want 1 to %d)", len(b.Data), maxCallbackData)
			}
			if err := checkStyle(b.Style); err != nil {
				return o, err
			}
		}
	}
	return o, nil
}

// markup returns the reply markup, or nil (an untyped nil, so the library
// omits the field instead of sending "null").
//
// Up to go-telegram/bot v1.19 the library's InlineKeyboardButton had a
// non-pointer copy_text field and so sent "copy_text":{"text":""} with
// every button: a second button kind beside callback_data, which the Bot
// API may reject or act on. v1.24 made it a pointer with omitempty, so the
// library's own types are used again; TestSendTextRequest pins the exact
// JSON of a keyboard.
func (o sendOptions) markup() models.ReplyMarkup {
	if len(o.buttons) == 0 {
		return nil
	}
	kb := make([][]models.InlineKeyboardButton, len(o.buttons))
	for i, row := range o.buttons {
		for _, b := range row {
			kb[i] = append(kb[i], models.InlineKeyboardButton{Text: b.Text, CallbackData: b.Data, Style: string(b.Style)})
		}
	}
	return &models.InlineKeyboardMarkup{InlineKeyboard: kb}
}

// noPreview stops Telegram from fetching URLs that appear in output: a
// preview would make Telegram's servers request a URL that a command
// printed, and show its page in the chat. Every text message and edit
// carries it; documents have no preview.
func noPreview() *models.LinkPreviewOptions {
	return &models.LinkPreviewOptions{IsDisabled: bot.True()}
}

func checkText(html string) error {
	if html == "" || !utf8.ValidString(html) {
		return errors.New("telegram: message text is empty or not UTF-8 (render it with chatfmt)")
	}
	return nil
}

// SendText sends an HTML message and returns its id.
func (c *Client) SendText(ctx context.Context, chatID int64, html string, opts ...SendOpt) (int, error) {
	o, err := collect(opts)
	if err != nil {
		return 0, err
	}
	if err := checkText(html); err != nil {
		return 0, err
	}
	params := &bot.SendMessageParams{
		ChatID:              chatID,
		Text:                html,
		ParseMode:           models.ParseModeHTML,
		LinkPreviewOptions:  noPreview(),
		DisableNotification: o.silent,
		ProtectContent:      c.protect,
		ReplyMarkup:         o.markup(),
	}
	var id int
	err = c.call(ctx, "sendMessage", !o.atMostOnce, callTimeout, func(ctx context.Context) error {
		m, err := c.bot.SendMessage(ctx, params)
		if err == nil && m != nil {
			id = m.ID
		}
		return err
	})
	return id, err
}

// EditText replaces the text of a message the bot sent. "Message is not
// modified" counts as success: the message already says what we wanted,
// and a retried edit whose first attempt landed gets exactly that answer.
// Without a Buttons option the message loses any inline keyboard.
func (c *Client) EditText(ctx context.Context, chatID int64, msgID int, html string, opts ...SendOpt) error {
	o, err := collect(opts)
	if err != nil {
		return err
	}
	if err := checkText(html); err != nil {
		return err
	}
	params := &bot.EditMessageTextParams{
		ChatID:             chatID,
		MessageID:          msgID,
		Text:               html,
		ParseMode:          models.ParseModeHTML,
		LinkPreviewOptions: noPreview(),
		ReplyMarkup:        o.markup(),
	}
	err = c.call(ctx, "editMessageText", true, callTimeout, func(ctx context.Context) error {
		_, err := c.bot.EditMessageText(ctx, params)
		return err
	})
	return ignoreBenign(err, "message is not modified")
}

// RemoveButtons removes the inline keyboard of a message, so that a
// confirm prompt cannot be pressed again.
func (c *Client) RemoveButtons(ctx context.Context, chatID int64, msgID int) error {
	params := &bot.EditMessageReplyMarkupParams{
		ChatID:      chatID,
		MessageID:   msgID,
		ReplyMarkup: &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{}},
	}
	err := c.call(ctx, "editMessageReplyMarkup", true, callTimeout, func(ctx context.Context) error {
		_, err := c.bot.EditMessageReplyMarkup(ctx, params)
		return err
	})
	return ignoreBenign(err, "message is not modified")
}

// MarkPressed replaces the inline keyboard of a message with one disabled
// button labelled label (for example "✓ Run"): the prompt keeps saying
// what was chosen, and nothing on it can be pressed again. A disabled
// button is the Bot API 10.3 DisabledButton, a button whose only field
// besides text and style is "disabled":{}. A server that predates it
// refuses the keyboard; then the keyboard is removed instead, as
// RemoveButtons does, and later calls go straight to that.
func (c *Client) MarkPressed(ctx context.Context, chatID int64, msgID int, label string, style ButtonStyle) error {
	if label == "" || !utf8.ValidString(label) {
		return errors.New("telegram: pressed-button label is empty or not UTF-8")
	}
	if err := checkStyle(style); err != nil {
		return err
	}
	if c.noDisabledButtons.Load() {
		return c.RemoveButtons(ctx, chatID, msgID)
	}
	params := &bot.EditMessageReplyMarkupParams{
		ChatID:    chatID,
		MessageID: msgID,
		ReplyMarkup: &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{
			{Text: label, Style: string(style), Disabled: &models.DisabledButton{}},
		}}},
	}
	err := c.call(ctx, "editMessageReplyMarkup", true, callTimeout, func(ctx context.Context) error {
		_, err := c.bot.EditMessageReplyMarkup(ctx, params)
		return err
	})
	err = ignoreBenign(err, "message is not modified")
	var e *Error
	if errors.As(err, &e) && e.Code == 400 && strings.Contains(strings.ToLower(e.desc), "button") {
		// "can't parse inline keyboard button: Text buttons are unallowed
		// in the inline keyboard": a button without a kind this server
		// knows.
		if !c.noDisabledButtons.Swap(true) {
			c.log.Info().Msg("the bot api server does not offer disabled buttons; pressed keyboards are removed instead")
		}
		return c.RemoveButtons(ctx, chatID, msgID)
	}
	return err
}

// DeleteMessage deletes a message. A message that is already gone counts
// as deleted, which also makes a retry after a lost answer harmless.
func (c *Client) DeleteMessage(ctx context.Context, chatID int64, msgID int) error {
	params := &bot.DeleteMessageParams{ChatID: chatID, MessageID: msgID}
	err := c.call(ctx, "deleteMessage", true, callTimeout, func(ctx context.Context) error {
		_, err := c.bot.DeleteMessage(ctx, params)
		return err
	})
	return ignoreBenign(err, "message to delete not found")
}

// AnswerCallback acknowledges a button press, with an optional short plain
// text toast.
func (c *Client) AnswerCallback(ctx context.Context, callbackID, text string) error {
	if callbackID == "" {
		return errors.New("telegram: empty callback query id")
	}
	if utf8.RuneCountInString(text) > maxAnswerText || !utf8.ValidString(text) {
		return fmt.Errorf("telegram: callback answer is over %d characters or not UTF-8", maxAnswerText)
	}
	params := &bot.AnswerCallbackQueryParams{CallbackQueryID: callbackID, Text: text}
	err := c.call(ctx, "answerCallbackQuery", true, callTimeout, func(ctx context.Context) error {
		_, err := c.bot.AnswerCallbackQuery(ctx, params)
		return err
	})
	return err
}

var commandName = lazyre.New(`^[a-z0-9_]{1,32}$`)

// botCommands checks cmds and converts them.
func botCommands(cmds []Command) ([]models.BotCommand, error) {
	list := make([]models.BotCommand, 0, len(cmds))
	for _, cmd := range cmds {
		if !commandName().MatchString(cmd.Name) {
			return nil, fmt.Errorf("telegram: command name %q must match [a-z0-9_]{1,32}", cmd.Name)
		}
		if n := utf8.RuneCountInString(cmd.Description); n == 0 || n > maxCommandDesc || !utf8.ValidString(cmd.Description) {
			return nil, fmt.Errorf("telegram: description of command %q must be 1 to %d characters", cmd.Name, maxCommandDesc)
		}
		list = append(list, models.BotCommand{Command: cmd.Name, Description: cmd.Description})
	}
	return list, nil
}

// SetCommands replaces the bot's command menu in the default scope, which
// every user who opens the bot sees, with cmds (setMyCommands), or clears
// it when cmds is empty (deleteMyCommands). More than MaxCommands is
// refused.
//
// Deprecated: use SetOwnerCommands, which shows the menu to the owner
// only.
func (c *Client) SetCommands(ctx context.Context, cmds []Command) error {
	if len(cmds) > MaxCommands {
		return fmt.Errorf("telegram: %d commands, telegram allows at most %d in the menu", len(cmds), MaxCommands)
	}
	list, err := botCommands(cmds)
	if err != nil {
		return err
	}
	return c.setCommands(ctx, nil, list)
}

// SetOwnerCommands sets the command menu of the owner's private chat only
// (BotCommandScopeChat with ownerChatID) and clears the default scope's,
// so that nobody else is shown a list of what this bot runs. The default
// scope is cleared first: if the second step fails, no one sees a menu
// rather than everyone.
//
// Telegram shows at most MaxCommands commands. A longer list is cut to its
// first MaxCommands, and set is what was actually set, so the caller can
// tell the owner what is missing from the menu (the commands still work
// when typed). An empty cmds clears the owner's menu too. A name or
// description Telegram would refuse fails the call before anything is
// sent.
func (c *Client) SetOwnerCommands(ctx context.Context, ownerChatID int64, cmds []Command) (set []Command, err error) {
	if ownerChatID <= 0 {
		return nil, fmt.Errorf("telegram: owner chat id %d is not a private chat", ownerChatID)
	}
	list, err := botCommands(cmds)
	if err != nil {
		return nil, err
	}
	if len(list) > MaxCommands {
		list, cmds = list[:MaxCommands], cmds[:MaxCommands]
	}
	if err := c.setCommands(ctx, nil, nil); err != nil {
		return nil, err
	}
	if err := c.setCommands(ctx, &models.BotCommandScopeChat{ChatID: ownerChatID}, list); err != nil {
		return nil, err
	}
	return append([]Command(nil), cmds...), nil
}

// setCommands sets list for scope (nil: the default scope), or deletes the
// scope's list when list is empty.
func (c *Client) setCommands(ctx context.Context, scope models.BotCommandScope, list []models.BotCommand) error {
	if len(list) == 0 {
		params := &bot.DeleteMyCommandsParams{Scope: scope}
		return c.call(ctx, "deleteMyCommands", true, callTimeout, func(ctx context.Context) error {
			_, err := c.bot.DeleteMyCommands(ctx, params)
			return err
		})
	}
	params := &bot.SetMyCommandsParams{Commands: list, Scope: scope}
	return c.call(ctx, "setMyCommands", true, callTimeout, func(ctx context.Context) error {
		_, err := c.bot.SetMyCommands(ctx, params)
		return err
	})
}

// GetMe returns the bot's username; it also proves the token works.
func (c *Client) GetMe(ctx context.Context) (string, error) {
	var name string
	err := c.call(ctx, "getMe", true, callTimeout, func(ctx context.Context) error {
		u, err := c.bot.GetMe(ctx)
		if err == nil && u != nil {
			name = u.Username
		}
		return err
	})
	return name, err
}

// SendDocument uploads a document, streamed: open is called for each
// attempt and its reader is copied into the request as it is sent, so the
// file is never held in memory, and a retry (after a 429, or a 5xx unless
// AtMostOnce) starts again from a fresh reader. The caption is HTML (render
// it with chatfmt) of at most 1024 characters. Capping the document's size
// is the caller's job.
func (c *Client) SendDocument(ctx context.Context, chatID int64, filename string, open func() (io.ReadCloser, error), caption string, opts ...SendOpt) error {
	o, err := collect(opts)
	if err != nil {
		return err
	}
	if open == nil {
		return errors.New("telegram: SendDocument needs a reader opener")
	}
	if !utf8.ValidString(caption) || len(utf16.Encode([]rune(caption))) > maxCaption {
		return fmt.Errorf("telegram: document caption is over %d characters or not UTF-8", maxCaption)
	}
	name := safeFilename(filename)
	err = c.call(ctx, "sendDocument", !o.atMostOnce, c.uploadTimeout, func(ctx context.Context) error {
		rc, err := open()
		if err != nil {
			return &localError{fmt.Errorf("telegram: open document: %w", err)}
		}
		// The library copies the reader in its own goroutine, which may
		// still be running when the call returns (the server can answer
		// before reading the whole body). The guard stops that goroutine
		// from reading a reader we have closed.
		g := &guardedReader{r: rc}
		defer g.Close()
		params := &bot.SendDocumentParams{
			ChatID:                      chatID,
			Document:                    &models.InputFileUpload{Filename: name, Data: g},
			Caption:                     caption,
			DisableContentTypeDetection: true,
			DisableNotification:         o.silent,
			ProtectContent:              c.protect,
			ReplyMarkup:                 o.markup(),
		}
		if caption != "" {
			params.ParseMode = models.ParseModeHTML
		}
		_, err = c.bot.SendDocument(ctx, params)
		return err
	})
	return err
}

// localError is a failure on our side of a call (the caller's document
// opener failing): it is returned as is and never retried.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// guardedReader lets the owner close a reader that another goroutine may
// still be reading: after Close, Read fails instead of touching it.
type guardedReader struct {
	mu     sync.Mutex
	r      io.ReadCloser
	closed bool
}

var errDetached = errors.New("document reader closed")

func (g *guardedReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errDetached
	}
	return g.r.Read(p)
}

func (g *guardedReader) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.r.Close()
}

// safeFilename keeps a document name to [A-Za-z0-9._-], so the multipart
// header and the phone's file list show exactly what we meant.
func safeFilename(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= maxFilenameLength {
			break
		}
	}
	s := strings.Trim(b.String(), ".")
	if s == "" {
		return "output.txt"
	}
	return s
}

// ignoreBenign treats a 400 whose description contains phrase as success.
func ignoreBenign(err error, phrase string) error {
	var e *Error
	if errors.As(err, &e) && e.Code == 400 && strings.Contains(strings.ToLower(e.desc), phrase) {
		return nil
	}
	return err
}
