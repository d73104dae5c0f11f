package fakebotapi

import (
	"bytes"
	"encoding/json"
	"github.com/relaychat/relay/internal/lazyre"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Telegram's limits, in UTF-16 code units after entity parsing.
const (
	MaxMessageLength = 4096
	MaxCaptionLength = 1024
	maxCallbackData  = 64
	maxAnswerText    = 200
	maxCommands      = 100
)

func (s *Server) getMe(*http.Request, params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bot, nil
}

// parseText applies parse_mode to text.
func (s *Server) parseText(text, mode string) (string, []Entity, *apiError) {
	var (
		plain string
		ents  []Entity
		err   error
	)
	switch strings.ToLower(mode) {
	case "":
		return text, nil, nil
	case "html":
		if s.lenientHTML {
			plain, ents, err = ParseHTMLLenient(text)
		} else {
			plain, ents, err = ParseHTML(text)
		}
	case "markdownv2":
		plain, ents, err = ParseMarkdownV2(text)
	case "markdown":
		plain, ents, err = ParseMarkdown(text)
	default:
		return "", nil, badRequest("unsupported parse_mode")
	}
	if err != nil {
		return "", nil, badRequest("can't parse entities: %s", err.Error())
	}
	return plain, ents, nil
}

// chatLockedFor resolves chat_id: a number, or @username of a chat the
// fake knows.
func (s *Server) chatForLocked(p params) (*chatState, *apiError) {
	raw := strings.TrimSpace(p.str("chat_id"))
	if raw == "" {
		return nil, badRequest("chat_id is empty")
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		name := strings.TrimPrefix(raw, "@")
		for _, cs := range s.chats {
			if cs.chat.Username != "" && strings.EqualFold(cs.chat.Username, name) && cs.chat.Type != "private" {
				return cs, nil
			}
		}
		return nil, badRequest("chat not found")
	}
	if cs := s.chats[id]; cs != nil {
		return cs, nil
	}
	if s.strictChats || id == 0 {
		return nil, badRequest("chat not found")
	}
	typ := "private"
	switch {
	case id < -1000000000000:
		typ = "supergroup"
	case id < 0:
		typ = "group"
	}
	return s.chatLocked(Chat{ID: id, Type: typ}), nil
}

// buttonStyles are the values InlineKeyboardButton.style takes.
var buttonStyles = map[string]bool{"danger": true, "success": true, "primary": true}

// parseMarkup reads reply_markup. Only inline keyboards are kept; the
// other keyboards are accepted and ignored. style and disabled are read
// only where the fake has the feature: an older server ignores an unknown
// field, which leaves a disabled button without a kind.
func (s *Server) parseMarkup(p params) (*wireMarkup, *apiError) {
	raw := strings.TrimSpace(p.str("reply_markup"))
	if raw == "" {
		return nil, nil
	}
	var m struct {
		InlineKeyboard [][]map[string]json.RawMessage `json:"inline_keyboard"`
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &probe); err != nil {
		return nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	if _, ok := probe["inline_keyboard"]; !ok {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, badRequest("can't parse inline keyboard button: field \"inline_keyboard\" must be an Array of Arrays")
	}
	out := &wireMarkup{InlineKeyboard: [][]wireButton{}}
	for _, row := range m.InlineKeyboard {
		var r []wireButton
		for _, b := range row {
			var wb wireButton
			if err := json.Unmarshal(b["text"], &wb.Text); err != nil {
				return nil, badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
			}
			if wb.Text == "" {
				return nil, badRequest("BUTTON_TEXT_INVALID")
			}
			actions := 0
			for k, v := range b {
				if string(v) == "null" {
					continue
				}
				switch {
				case k == "disabled" && s.has(FeatureDisabledButton):
					// DisabledButton is an empty object, so it must be
					// read before empty values are skipped below.
					var obj map[string]json.RawMessage
					if err := json.Unmarshal(v, &obj); err != nil {
						return nil, badRequest("can't parse inline keyboard button: field \"disabled\" must be an Object")
					}
					wb.Disabled = true
					actions++
					continue
				case k == "style" && s.has(FeatureButtonStyle):
					var st string
					if err := json.Unmarshal(v, &st); err != nil {
						return nil, badRequest("can't parse inline keyboard button: field \"style\" must be of type String")
					}
					if st != "" && !buttonStyles[st] {
						// Telegram documents the three values; the
						// wording of its refusal is the fake's.
						return nil, badRequest("BUTTON_STYLE_INVALID")
					}
					wb.Style = st
					continue
				}
				if emptyJSON(v) {
					continue // the library sends some absent fields as empty values
				}
				switch k {
				case "text", "icon_custom_emoji_id", "style", "disabled":
				case "callback_data":
					var d string
					if err := json.Unmarshal(v, &d); err != nil {
						return nil, badRequest("can't parse inline keyboard button: field \"callback_data\" must be of type String")
					}
					if len(d) > maxCallbackData {
						return nil, badRequest("BUTTON_DATA_INVALID")
					}
					wb.CallbackData = &d
					actions++
				case "url":
					if err := json.Unmarshal(v, &wb.URL); err != nil {
						return nil, badRequest("can't parse inline keyboard button: field \"url\" must be of type String")
					}
					if _, ok := checkLink(wb.URL); !ok {
						return nil, badRequest("BUTTON_URL_INVALID")
					}
					actions++
				case "web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
					"switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay":
					if wb.Extra == nil {
						wb.Extra = map[string]json.RawMessage{}
					}
					wb.Extra[k] = v
					actions++
				}
			}
			if actions != 1 {
				return nil, badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
			}
			r = append(r, wb)
		}
		if len(r) > 0 {
			out.InlineKeyboard = append(out.InlineKeyboard, r)
		}
	}
	if len(out.InlineKeyboard) == 0 {
		return nil, nil
	}
	return out, nil
}

// emptyJSON reports a JSON value that carries nothing: null, "", false,
// 0, or an object or array of such.
func emptyJSON(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	var empty func(any) bool
	empty = func(v any) bool {
		switch x := v.(type) {
		case nil:
			return true
		case string:
			return x == ""
		case bool:
			return !x
		case float64:
			return x == 0
		case map[string]any:
			for _, e := range x {
				if !empty(e) {
					return false
				}
			}
			return true
		case []any:
			for _, e := range x {
				if !empty(e) {
					return false
				}
			}
			return true
		}
		return false
	}
	return empty(v)
}

func buttonsOf(m *wireMarkup) [][]Button {
	if m == nil {
		return nil
	}
	var rows [][]Button
	for _, row := range m.InlineKeyboard {
		var r []Button
		for _, b := range row {
			nb := Button{Text: b.Text, URL: b.URL, Style: b.Style, Disabled: b.Disabled}
			if b.CallbackData != nil {
				nb.Data = *b.CallbackData
			}
			if len(b.Extra) > 0 {
				o, _ := json.Marshal(b.Extra)
				nb.Other = string(o)
			}
			r = append(r, nb)
		}
		rows = append(rows, r)
	}
	return rows
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// replyTarget reads reply_parameters or reply_to_message_id.
func replyTarget(p params) (int, *apiError) {
	if raw := p.str("reply_parameters"); raw != "" {
		var rp struct {
			MessageID int `json:"message_id"`
		}
		if err := json.Unmarshal([]byte(raw), &rp); err != nil {
			return 0, badRequest("can't parse reply parameters JSON object")
		}
		return rp.MessageID, nil
	}
	id, _, e := p.int("reply_to_message_id")
	return int(id), e
}

// linkPreviewOff reads link_preview_options.is_disabled, or the older
// disable_web_page_preview.
func linkPreviewOff(p params) (bool, *apiError) {
	if p.bool("disable_web_page_preview") {
		return true, nil
	}
	raw := strings.TrimSpace(p.str("link_preview_options"))
	if raw == "" {
		return false, nil
	}
	var o struct {
		IsDisabled bool `json:"is_disabled"`
	}
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return false, badRequest("can't parse link preview options JSON object")
	}
	return o.IsDisabled, nil
}

var bareLink = lazyre.New(`(?i)\b(https?://|www\.)[^\s]`)

// hasLink reports a link Telegram would preview: an <a href>, a url
// entity, or a bare link starting http://, https:// or www. (Telegram
// spots bare domain names too; the fake does not.)
func hasLink(plain string, ents []Entity) bool {
	for _, e := range ents {
		if e.Type == "text_link" || e.Type == "url" {
			return true
		}
	}
	return bareLink().MatchString(plain)
}

// finishDraftsLocked ends the live drafts in a chat's thread: the bot has
// persisted its output with a real message there.
func (s *Server) finishDraftsLocked(chatID int64, thread int, now time.Time) {
	s.expireDraftsLocked(now)
	for _, d := range s.drafts {
		if d.ChatID == chatID && d.ThreadID == thread && d.State == DraftLive {
			d.State, d.Ended = DraftFinished, now
		}
	}
}

func (s *Server) sendMessage(_ *http.Request, p params) (any, *apiError) {
	text := p.str("text")
	if text == "" {
		return nil, badRequest("message text is empty")
	}
	mode := p.str("parse_mode")
	plain, ents, e := s.parseText(text, mode)
	if e != nil {
		return nil, e
	}
	if mode == "" && p.has("entities") {
		if err := json.Unmarshal([]byte(p.str("entities")), &ents); err != nil {
			return nil, badRequest("can't parse entities JSON object")
		}
	}
	if strings.TrimSpace(plain) == "" {
		return nil, badRequest("message text is empty")
	}
	if UTF16Len(plain) > MaxMessageLength {
		return nil, badRequest("message is too long")
	}
	markup, e := s.parseMarkup(p)
	if e != nil {
		return nil, e
	}
	replyTo, e := replyTarget(p)
	if e != nil {
		return nil, e
	}
	noPreview, e := linkPreviewOff(p)
	if e != nil {
		return nil, e
	}
	thread, _, e := p.int("message_thread_id")
	if e != nil {
		return nil, e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.chatForLocked(p)
	if e != nil {
		return nil, e
	}
	now := s.clock.Now()
	bot := s.bot
	wm := &wireMessage{MessageID: cs.nextID, From: &bot, Chat: cs.chat, Date: now.Unix(), Text: plain, Entities: ents, ReplyMarkup: markup}
	if replyTo != 0 {
		r := cs.msgs[replyTo]
		if r == nil || r.Deleted {
			return nil, badRequest("message to be replied not found")
		}
		wm.ReplyToMessage = r.wire
	}
	cs.nextID++
	m := &message{
		Message: Message{
			ID: wm.MessageID, ChatID: cs.chat.ID, Text: plain, RawText: text, ParseMode: mode,
			Entities: ents, Buttons: buttonsOf(markup), Silent: p.bool("disable_notification"),
			Protected: p.bool("protect_content"), NoLinkPreview: noPreview, LinkPreview: !noPreview && hasLink(plain, ents),
			Date: now, ReplyTo: replyTo,
		},
		fromBot: true, from: bot, wire: wm, markup: markup,
	}
	cs.msgs[m.ID] = m
	s.sent = append(s.sent, m)
	s.finishDraftsLocked(cs.chat.ID, int(thread), now)
	s.messageEventLocked(EventMessage, m)
	s.notifyLocked()
	return wm, nil
}

// messageLocked finds the live message that chat_id and message_id name,
// answering as Telegram does (notFound is its wording for the method).
func (s *Server) messageLocked(p params, notFound string) (*message, *apiError) {
	cs, e := s.chatForLocked(p)
	if e != nil {
		return nil, e
	}
	id, ok, e := p.int("message_id")
	if e != nil {
		return nil, e
	}
	if !ok {
		return nil, badRequest("message identifier is not specified")
	}
	m := cs.msgs[int(id)]
	if m == nil || m.Deleted {
		return nil, badRequest("%s", notFound)
	}
	return m, nil
}

// editTargetLocked finds the bot's message an edit names.
func (s *Server) editTargetLocked(p params) (*message, *apiError) {
	if p.str("inline_message_id") != "" {
		return nil, badRequest("inline messages are not supported by the fake")
	}
	m, e := s.messageLocked(p, "message to edit not found")
	if e != nil {
		return nil, e
	}
	if !m.fromBot {
		return nil, badRequest("message can't be edited")
	}
	return m, nil
}

const notModified = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"

func (s *Server) editMessageText(_ *http.Request, p params) (any, *apiError) {
	text := p.str("text")
	if text == "" {
		return nil, badRequest("message text is empty")
	}
	mode := p.str("parse_mode")
	plain, ents, e := s.parseText(text, mode)
	if e != nil {
		return nil, e
	}
	if strings.TrimSpace(plain) == "" {
		return nil, badRequest("message text is empty")
	}
	if UTF16Len(plain) > MaxMessageLength {
		return nil, badRequest("message is too long")
	}
	markup, e := s.parseMarkup(p)
	if e != nil {
		return nil, e
	}
	noPreview, e := linkPreviewOff(p)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.editTargetLocked(p)
	if e != nil {
		return nil, e
	}
	if m.doc != nil {
		return nil, badRequest("there is no text in the message to edit")
	}
	if plain == m.Text && sameJSON(ents, m.Entities) && sameJSON(markup, m.markup) {
		return nil, badRequest(notModified)
	}
	now := s.clock.Now()
	m.Text, m.RawText, m.ParseMode, m.Entities = plain, text, mode, ents
	m.Edits = append(m.Edits, plain)
	m.EditedAt = append(m.EditedAt, now)
	m.markup, m.Buttons = markup, buttonsOf(markup)
	m.NoLinkPreview, m.LinkPreview = noPreview, !noPreview && hasLink(plain, ents)
	w := *m.wire
	w.Text, w.Entities, w.ReplyMarkup, w.EditDate = plain, ents, markup, now.Unix()
	m.wire = &w
	m.touch()
	s.messageEventLocked(EventEdit, m)
	s.notifyLocked()
	return m.wire, nil
}

func (s *Server) editMessageReplyMarkup(_ *http.Request, p params) (any, *apiError) {
	markup, e := s.parseMarkup(p)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.editTargetLocked(p)
	if e != nil {
		return nil, e
	}
	if sameJSON(markup, m.markup) {
		return nil, badRequest(notModified)
	}
	m.markup, m.Buttons = markup, buttonsOf(markup)
	m.MarkupEdits++
	if m.doc != nil {
		m.doc.Buttons = m.Buttons
	}
	w := *m.wire
	w.ReplyMarkup, w.EditDate = markup, s.clock.Now().Unix()
	m.wire = &w
	m.touch()
	s.messageEventLocked(EventButtons, m)
	s.notifyLocked()
	return m.wire, nil
}

func (s *Server) deleteMessage(_ *http.Request, p params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, e := s.messageLocked(p, "message to delete not found")
	if e != nil {
		return nil, e
	}
	m.Deleted, m.DeletedAt = true, s.clock.Now()
	m.touch()
	if m.doc != nil {
		m.doc.Deleted = true
	}
	s.messageEventLocked(EventDelete, m)
	s.notifyLocked()
	return true, nil
}

func (s *Server) sendDocument(_ *http.Request, p params) (any, *apiError) {
	up := p.files["document"]
	if ref, ok := strings.CutPrefix(p.str("document"), "attach://"); ok {
		up = p.files[ref]
	}
	if up == nil {
		if p.str("document") != "" {
			return nil, badRequest("wrong file identifier/HTTP URL specified")
		}
		return nil, badRequest("there is no document in the request")
	}
	if up.size == 0 {
		return nil, badRequest("file must be non-empty")
	}
	caption := p.str("caption")
	mode := p.str("parse_mode")
	plain, ents, e := s.parseText(caption, mode)
	if e != nil {
		return nil, e
	}
	if UTF16Len(plain) > MaxCaptionLength {
		return nil, badRequest("message caption is too long")
	}
	markup, e := s.parseMarkup(p)
	if e != nil {
		return nil, e
	}
	name := up.filename
	if !utf8.ValidString(name) {
		return nil, badRequest("strings must be encoded in UTF-8")
	}
	thread, _, e := p.int("message_thread_id")
	if e != nil {
		return nil, e
	}
	mt := up.contentType
	if !p.bool("disable_content_type_detection") || mt == "" {
		if t := mime.TypeByExtension(path.Ext(name)); t != "" {
			mt = t
		}
	}
	if mt == "" {
		mt = "application/octet-stream"
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.chatForLocked(p)
	if e != nil {
		return nil, e
	}
	now := s.clock.Now()
	bot := s.bot
	fileID := "BQACAgIAAxkBAAI" + up.sha256[:24]
	wm := &wireMessage{
		MessageID: cs.nextID, From: &bot, Chat: cs.chat, Date: now.Unix(),
		Caption: plain, CaptionEntities: ents, ReplyMarkup: markup,
		Document: &wireDocument{FileID: fileID, FileUniqueID: up.sha256[:16], FileName: name, MIMEType: mt, FileSize: up.size},
	}
	cs.nextID++
	d := &Document{
		MessageID: wm.MessageID, ChatID: cs.chat.ID, FileName: name, MIMEType: mt,
		Caption: plain, RawCaption: caption, ParseMode: mode, Buttons: buttonsOf(markup),
		Size: up.size, SHA256: up.sha256, Data: up.data, Silent: p.bool("disable_notification"),
		Protected: p.bool("protect_content"), Date: now,
	}
	m := &message{
		Message: Message{ID: wm.MessageID, ChatID: cs.chat.ID, Text: plain, RawText: caption, ParseMode: mode,
			Entities: ents, Buttons: d.Buttons, Silent: d.Silent, Protected: d.Protected, Date: now},
		fromBot: true, from: bot, wire: wm, markup: markup, doc: d,
	}
	cs.msgs[m.ID] = m
	s.docs = append(s.docs, d)
	s.finishDraftsLocked(cs.chat.ID, int(thread), now)
	c := copyDocument(d)
	s.eventLocked(Event{Kind: EventDocument, Document: &c})
	s.notifyLocked()
	return wm, nil
}

func (s *Server) answerCallbackQuery(_ *http.Request, p params) (any, *apiError) {
	id := p.str("callback_query_id")
	text := p.str("text")
	if UTF16Len(text) > maxAnswerText {
		return nil, badRequest("MESSAGE_TOO_LONG")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	answered, known := s.callbacks[id]
	if !known || answered {
		return nil, badRequest("query is too old and response timeout expired or query ID is invalid")
	}
	s.callbacks[id] = true
	a := CallbackAnswer{QueryID: id, Text: text, ShowAlert: p.bool("show_alert"), URL: p.str("url"), At: s.clock.Now()}
	s.answers = append(s.answers, a)
	s.eventLocked(Event{Kind: EventAnswer, Answer: &a})
	s.notifyLocked()
	return true, nil
}

var commandName = lazyre.New(`^[a-z0-9_]{1,32}$`)

// commandsKey is the scope (default when absent) and language a command
// list belongs to. The scope is canonical JSON: keys sorted, and a chat_id
// given as a string of digits taken as the number it names.
func commandsKey(p params) (string, *apiError) {
	scope := strings.TrimSpace(p.str("scope"))
	if scope == "" {
		scope = `{"type":"default"}`
	}
	dec := json.NewDecoder(strings.NewReader(scope))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return "", badRequest("can't parse BotCommandScope JSON object")
	}
	typ, _ := m["type"].(string)
	switch typ {
	case "default", "all_private_chats", "all_group_chats", "all_chat_administrators":
	case "chat", "chat_administrators", "chat_member":
		if str, ok := m["chat_id"].(string); ok {
			if _, err := strconv.ParseInt(str, 10, 64); err == nil {
				m["chat_id"] = json.Number(str)
			}
		}
		if m["chat_id"] == nil {
			return "", badRequest("can't parse BotCommandScope JSON object")
		}
	default:
		return "", badRequest("wrong BotCommandScope type specified")
	}
	canon, _ := json.Marshal(m)
	return string(canon) + "|" + p.str("language_code"), nil
}

// menuOf splits a commands key into a CommandMenu.
func menuOf(key string, cmds []Command) CommandMenu {
	scope, lang, _ := strings.Cut(key, "|")
	return CommandMenu{Scope: scope, Language: lang, Commands: append([]Command{}, cmds...)}
}

func (s *Server) setMyCommands(_ *http.Request, p params) (any, *apiError) {
	var cmds []Command
	if err := json.Unmarshal([]byte(p.str("commands")), &cmds); err != nil {
		return nil, badRequest("can't parse commands JSON object")
	}
	if len(cmds) > maxCommands {
		return nil, badRequest("too many commands specified")
	}
	for _, c := range cmds {
		if !commandName().MatchString(c.Command) {
			return nil, badRequest("BOT_COMMAND_INVALID")
		}
		if n := UTF16Len(strings.TrimSpace(c.Description)); n == 0 || n > 256 {
			return nil, badRequest("BOT_COMMAND_DESCRIPTION_INVALID")
		}
	}
	key, e := commandsKey(p)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands[key] = append([]Command{}, cmds...)
	menu := menuOf(key, cmds)
	s.eventLocked(Event{Kind: EventCommands, Menu: &menu})
	s.notifyLocked()
	return true, nil
}

func (s *Server) getMyCommands(_ *http.Request, p params) (any, *apiError) {
	key, e := commandsKey(p)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Command{}, s.commands[key]...), nil
}

func (s *Server) deleteMyCommands(_ *http.Request, p params) (any, *apiError) {
	key, e := commandsKey(p)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.commands, key)
	menu := menuOf(key, nil)
	s.eventLocked(Event{Kind: EventCommands, Menu: &menu})
	s.notifyLocked()
	return true, nil
}

var secretTokenRE = lazyre.New(`^[A-Za-z0-9_-]{1,256}$`)

func (s *Server) setWebhook(_ *http.Request, p params) (any, *apiError) {
	call := WebhookCall{Method: "setWebhook", URL: p.str("url"), SecretToken: p.str("secret_token"), DropPending: p.bool("drop_pending_updates")}
	if call.URL != "" {
		u, err := url.Parse(call.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, badRequest("bad webhook: invalid webhook URL specified")
		}
	}
	if call.SecretToken != "" && !secretTokenRE().MatchString(call.SecretToken) {
		return nil, badRequest("secret token contains unallowed characters")
	}
	if p.has("allowed_updates") {
		if err := json.Unmarshal([]byte(p.str("allowed_updates")), &call.AllowedUpdates); err != nil {
			return nil, badRequest("can't parse allowed updates")
		}
	}
	mc, _, e := p.int("max_connections")
	if e != nil {
		return nil, e
	}
	call.MaxConnections = int(mc)
	s.mu.Lock()
	defer s.mu.Unlock()
	call.At = s.clock.Now()
	s.hooks = append(s.hooks, call)
	if call.URL == "" {
		s.webhook = WebhookCall{}
	} else {
		s.webhook = call
	}
	if call.AllowedUpdates != nil {
		s.allowed = map[string]bool{}
		for _, k := range call.AllowedUpdates {
			s.allowed[k] = true
		}
	}
	if call.DropPending {
		s.queue = nil
	}
	if s.poll != nil && call.URL != "" {
		close(s.poll.terminated)
		s.poll = nil
	}
	s.notifyLocked()
	return true, nil
}

func (s *Server) deleteWebhook(_ *http.Request, p params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	call := WebhookCall{Method: "deleteWebhook", DropPending: p.bool("drop_pending_updates"), At: s.clock.Now()}
	s.hooks = append(s.hooks, call)
	s.webhook = WebhookCall{}
	if call.DropPending {
		s.queue = nil
	}
	s.notifyLocked()
	return true, nil
}

func (s *Server) getWebhookInfo(*http.Request, params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := map[string]any{
		"url":                    s.webhook.URL,
		"has_custom_certificate": false,
		"pending_update_count":   len(s.queue),
	}
	if s.webhook.MaxConnections > 0 {
		info["max_connections"] = s.webhook.MaxConnections
	}
	if s.webhook.AllowedUpdates != nil {
		info["allowed_updates"] = s.webhook.AllowedUpdates
	}
	return info, nil
}
