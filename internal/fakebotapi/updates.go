package fakebotapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"net/http"
	"strconv"
	"time"
)

// queued is an update waiting for the bot to confirm it.
type queued struct {
	id   int64
	kind string
	raw  json.RawMessage
}

// poller is the getUpdates request now waiting.
type poller struct {
	// terminated is closed when a newer getUpdates takes over.
	terminated chan struct{}
}

// defaultAllowed is what Telegram sends when allowed_updates was never
// set or set to []: everything but these three.
var notByDefault = map[string]bool{"chat_member": true, "message_reaction": true, "message_reaction_count": true}

// chatState is one chat's messages; message IDs are per chat and shared
// by the owner's and the bot's messages.
type chatState struct {
	chat   Chat
	nextID int
	msgs   map[int]*message
}

// message is any message in a chat.
type message struct {
	Message
	fromBot bool
	from    User
	doc     *Document
	wire    *wireMessage // the current wire form
	markup  *wireMarkup
	snap    *Message // cached view; nil after a change
}

func (s *Server) chatLocked(c Chat) *chatState {
	cs := s.chats[c.ID]
	if cs == nil {
		cs = &chatState{chat: c, nextID: 1, msgs: map[int]*message{}}
		s.chats[c.ID] = cs
	} else if c.Type != "" {
		cs.chat = c
	}
	return cs
}

// AddChat makes a chat known, for WithStrictChats.
func (s *Server) AddChat(c Chat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatLocked(c)
}

// MessageOpt changes a message SendMessage creates.
type MessageOpt func(*msgOpts)

type msgOpts struct {
	date     time.Time
	entities []Entity
	setEnts  bool
	edit     int
	replyTo  int
}

// At dates the message t instead of now, to make stale backlog.
func At(t time.Time) MessageOpt { return func(o *msgOpts) { o.date = t } }

// WithEntities sends exactly these entities instead of the bot_command
// entities a client adds, which allows malformed ones (an offset or length
// past the text). WithEntities() sends none.
func WithEntities(es ...Entity) MessageOpt {
	return func(o *msgOpts) { o.entities, o.setEnts = es, true }
}

// Edited makes the update an edited_message (edited_channel_post) of the
// owner's earlier message id, which now carries the new text.
func Edited(id int) MessageOpt { return func(o *msgOpts) { o.edit = id } }

// ReplyTo makes the message a reply to message id in the same chat.
func ReplyTo(id int) MessageOpt { return func(o *msgOpts) { o.replyTo = id } }

var commandRE = lazyre.New(`(^|[\s])(/[A-Za-z0-9_]{1,64}(@[A-Za-z0-9_]{3,64})?)`)

// commandEntities are the bot_command entities a Telegram client marks.
func commandEntities(text string) []Entity {
	var es []Entity
	for _, m := range commandRE().FindAllStringSubmatchIndex(text, -1) {
		start, end := m[4], m[5]
		es = append(es, Entity{Type: "bot_command", Offset: UTF16Len(text[:start]), Length: UTF16Len(text[start:end])})
	}
	return es
}

// SendMessage plays a user writing text in chat: it queues a message
// update (channel_post for a channel, edited_* with Edited) and returns
// its update_id and the message_id. A zero from.ID sends without a from
// field, as channel posts are.
func (s *Server) SendMessage(from User, chat Chat, text string, opts ...MessageOpt) (updateID int64, messageID int) {
	var o msgOpts
	for _, opt := range opts {
		opt(&o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	date := now
	if !o.date.IsZero() {
		date = o.date
	}
	if chat.Type == "" {
		chat.Type = "private"
	}
	cs := s.chatLocked(chat)
	ents := o.entities
	if !o.setEnts {
		ents = commandEntities(text)
	}
	wm := &wireMessage{Chat: chat, Date: date.Unix(), Text: text, Entities: ents}
	if from.ID != 0 {
		f := from
		wm.From = &f
	}
	if chat.Type == "channel" {
		c := chat
		wm.SenderChat = &c
	}
	var m *message
	if o.edit != 0 {
		m = cs.msgs[o.edit]
		if m == nil {
			m = &message{Message: Message{ID: o.edit, ChatID: chat.ID, Date: date}, from: from}
			cs.msgs[o.edit] = m
		}
		wm.MessageID = o.edit
		wm.Date = m.Date.Unix()
		wm.EditDate = date.Unix()
		m.Text, m.RawText = text, text
		m.Edits = append(m.Edits, text)
		m.EditedAt = append(m.EditedAt, now)
		m.touch()
	} else {
		wm.MessageID = cs.nextID
		cs.nextID++
		m = &message{Message: Message{ID: wm.MessageID, ChatID: chat.ID, Text: text, RawText: text, Date: date}, from: from}
		cs.msgs[m.ID] = m
	}
	if o.replyTo != 0 {
		if r := cs.msgs[o.replyTo]; r != nil && r.wire != nil {
			wm.ReplyToMessage = r.wire
		}
		m.ReplyTo = o.replyTo
	}
	m.wire = wm

	u := wireUpdate{}
	kind := "message"
	switch {
	case chat.Type == "channel" && o.edit != 0:
		kind, u.EditedChannelPost = "edited_channel_post", wm
	case chat.Type == "channel":
		kind, u.ChannelPost = "channel_post", wm
	case o.edit != 0:
		kind, u.EditedMessage = "edited_message", wm
	default:
		u.Message = wm
	}
	id := s.pushLocked(kind, func(id int64) json.RawMessage {
		u.UpdateID = id
		b, _ := json.Marshal(u)
		return b
	})
	return id, wm.MessageID
}

// PressButton plays from pressing the inline button with callback data
// data under the bot's message messageID in chatID. The fake does not
// check that such a button exists, so tests can forge presses; when the
// message does not exist the query carries an inaccessible message, as
// Telegram's do. It returns the callback query ID.
func (s *Server) PressButton(from User, chatID int64, messageID int, data string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pressLocked(from, chatID, messageID, data)
}

// PressButtonAt plays from pressing the n-th button (from 1, row by row,
// left to right) of the bot's message messageID in chatID, as a phone
// would: only a button that is there and sends a callback can be pressed.
// A disabled button, a URL button, a deleted message or a message without
// that button is an error, and nothing is sent to the bot. It returns the
// callback query ID.
func (s *Server) PressButtonAt(from User, chatID int64, messageID int, n int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chats[chatID]
	var m *message
	if cs != nil {
		m = cs.msgs[messageID]
	}
	if m == nil || m.Deleted || !m.fromBot {
		return "", fmt.Errorf("fakebotapi: no message %d from the bot in chat %d", messageID, chatID)
	}
	i := 0
	for _, row := range m.Buttons {
		for _, b := range row {
			i++
			if i != n {
				continue
			}
			switch {
			case b.Disabled:
				return "", fmt.Errorf("fakebotapi: button %d (%q) is disabled", n, b.Text)
			case b.Data == "":
				return "", fmt.Errorf("fakebotapi: button %d (%q) sends no callback", n, b.Text)
			}
			return s.pressLocked(from, chatID, messageID, b.Data), nil
		}
	}
	return "", fmt.Errorf("fakebotapi: message %d has %d buttons, not a button %d", messageID, i, n)
}

func (s *Server) pressLocked(from User, chatID int64, messageID int, data string) string {
	s.nextQuery++
	qid := strconv.FormatInt(4000000000000000000+s.nextQuery, 10)
	s.callbacks[qid] = false
	cs := s.chats[chatID]
	var wm *wireMessage
	if cs != nil {
		if m := cs.msgs[messageID]; m != nil && !m.Deleted && m.wire != nil {
			wm = m.wire
		}
	}
	if wm == nil {
		chat := Chat{ID: chatID, Type: "private"}
		if cs != nil {
			chat = cs.chat
		}
		wm = &wireMessage{MessageID: messageID, Chat: chat, Date: 0}
	}
	u := wireUpdate{CallbackQuery: &wireCallback{
		ID:           qid,
		From:         from,
		Message:      wm,
		ChatInstance: strconv.FormatInt(-chatID*7919, 10),
		Data:         data,
	}}
	s.pushLocked("callback_query", func(id int64) json.RawMessage {
		u.UpdateID = id
		b, _ := json.Marshal(u)
		return b
	})
	return qid
}

// PushRawUpdate queues raw, a JSON object, as an update. Without an
// update_id key it gets the next one; with one it is sent exactly as
// given (a test of a bad update_id), and queued in the next slot. It
// returns the slot's update ID, which is what UpdateDelivered and
// UpdateConfirmed take.
func (s *Server) PushRawUpdate(raw []byte) (int64, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, fmt.Errorf("fakebotapi: raw update must be a JSON object: %w", err)
	}
	kind := ""
	for k := range m {
		if k != "update_id" {
			kind = k
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, keep := m["update_id"]
	return s.pushLocked(kind, func(id int64) json.RawMessage {
		if keep {
			return append(json.RawMessage(nil), raw...)
		}
		m["update_id"] = json.RawMessage(strconv.FormatInt(id, 10))
		b, _ := json.Marshal(m)
		return b
	}), nil
}

// pushLocked queues an update of kind unless allowed_updates excludes it,
// as Telegram never creates such updates. It returns the update ID, also
// for a discarded update.
func (s *Server) pushLocked(kind string, build func(id int64) json.RawMessage) int64 {
	id := s.nextUpdate
	s.nextUpdate++
	if !s.allowedLocked(kind) {
		return id
	}
	if len(s.queue) >= maxQueue {
		s.queue = s.queue[1:] // Telegram keeps 24 hours; the fake a bounded count
	}
	s.queue = append(s.queue, queued{id: id, kind: kind, raw: build(id)})
	s.notifyLocked()
	return id
}

func (s *Server) allowedLocked(kind string) bool {
	if len(s.allowed) == 0 {
		return !notByDefault[kind]
	}
	return s.allowed[kind]
}

// Pending is the number of updates the bot has not confirmed.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *Server) getUpdates(r *http.Request, p params) (any, *apiError) {
	offset, _, e := p.int("offset")
	if e != nil {
		return nil, e
	}
	limit, hasLimit, e := p.int("limit")
	if e != nil {
		return nil, e
	}
	if !hasLimit || limit > 100 {
		limit = 100
	}
	limit = max(limit, 1)
	timeoutSecs, _, e := p.int("timeout")
	if e != nil {
		return nil, e
	}
	timeout := min(time.Duration(max(timeoutSecs, 0))*time.Second, maxPollTimeout)
	var allowed []string
	if p.has("allowed_updates") {
		if err := json.Unmarshal([]byte(p.str("allowed_updates")), &allowed); err != nil {
			return nil, badRequest("can't parse allowed updates")
		}
	}

	s.mu.Lock()
	if s.webhook.URL != "" {
		s.mu.Unlock()
		return nil, &apiError{code: http.StatusConflict, desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
	}
	now := s.clock.Now()
	s.pollTimes = append(s.pollTimes, now)
	if p.has("allowed_updates") {
		s.allowed = map[string]bool{}
		for _, k := range allowed {
			s.allowed[k] = true
		}
	}
	s.confirmLocked(offset, now)
	// Telegram ends the older request: that is what "terminated by other
	// getUpdates request" tells its client.
	if s.poll != nil {
		close(s.poll.terminated)
		s.conflicts++
	}
	me := &poller{terminated: make(chan struct{})}
	s.poll = me
	s.notifyLocked()
	defer func() {
		s.mu.Lock()
		if s.poll == me {
			s.poll = nil
		}
		s.mu.Unlock()
	}()

	var deadline <-chan time.Time
	for {
		if batch := s.batchLocked(int(limit)); len(batch) > 0 || timeout == 0 {
			s.mu.Unlock()
			return batch, nil
		}
		if deadline == nil {
			deadline = s.clock.After(timeout)
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return []json.RawMessage{}, nil
		case <-me.terminated:
			return nil, &apiError{code: http.StatusConflict, desc: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}
		case <-r.Context().Done():
			return nil, &apiError{} // the client left; nothing to answer
		case <-s.done:
			return []json.RawMessage{}, nil
		}
		s.mu.Lock()
	}
}

// confirmLocked forgets the updates an offset confirms: below a positive
// offset, or all but the last -offset for a negative one.
func (s *Server) confirmLocked(offset int64, now time.Time) {
	drop := 0
	switch {
	case offset > 0:
		for drop < len(s.queue) && s.queue[drop].id < offset {
			drop++
		}
	case offset < 0:
		drop = max(len(s.queue)-int(min(-offset, int64(len(s.queue)))), 0)
	}
	for _, q := range s.queue[:drop] {
		s.confirmed[q.id] = now
	}
	if drop > 0 {
		s.queue = append([]queued(nil), s.queue[drop:]...)
	}
}

// batchLocked is the next limit updates, recording when each was first
// handed out.
func (s *Server) batchLocked(limit int) []json.RawMessage {
	n := min(limit, len(s.queue))
	out := make([]json.RawMessage, 0, n)
	now := s.clock.Now()
	for _, q := range s.queue[:n] {
		out = append(out, q.raw)
		if _, ok := s.delivered[q.id]; !ok {
			s.delivered[q.id] = now
		}
	}
	if n > 0 {
		s.notifyLocked()
	}
	return out
}

// errClosed is returned by waits when the server closes.
var errClosed = errors.New("fakebotapi: server closed")
