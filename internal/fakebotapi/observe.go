package fakebotapi

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// view is the message as a Message, cached until the message changes
// (touch), so waits can test many messages cheaply. Callers must not
// modify it; snapshot is the copy to hand out.
func (m *message) view() *Message {
	if m.snap == nil {
		c := m.snapshot()
		m.snap = &c
	}
	return m.snap
}

// touch drops the cached view; every change to a message calls it.
func (m *message) touch() { m.snap = nil }

func (m *message) snapshot() Message {
	c := m.Message
	c.Entities = append([]Entity(nil), m.Entities...)
	c.Buttons = copyButtons(m.Buttons)
	c.Edits = append([]string(nil), m.Edits...)
	c.EditedAt = append([]time.Time(nil), m.EditedAt...)
	return c
}

func copyButtons(rows [][]Button) [][]Button {
	if rows == nil {
		return nil
	}
	out := make([][]Button, len(rows))
	for i, r := range rows {
		out[i] = append([]Button(nil), r...)
	}
	return out
}

func copyDocument(d *Document) Document {
	c := *d
	c.Buttons = copyButtons(d.Buttons)
	// Data is never written after the upload, so sharing it is safe.
	return c
}

// Sent is every text message the bot sent, in the order they arrived, as
// they are now (edited, deleted).
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.sent))
	for _, m := range s.sent {
		out = append(out, m.snapshot())
	}
	return out
}

// Documents is every document the bot uploaded, in order.
func (s *Server) Documents() []Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Document, 0, len(s.docs))
	for _, d := range s.docs {
		out = append(out, copyDocument(d))
	}
	return out
}

// CallbackAnswers is every answerCallbackQuery the bot made, in order.
func (s *Server) CallbackAnswers() []CallbackAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CallbackAnswer(nil), s.answers...)
}

// Commands is the command list set for the default scope and no language.
func (s *Server) Commands() []Command {
	return s.CommandsFor(`{"type":"default"}`, "")
}

// CommandsFor is the command list set for a scope (its JSON) and language.
func (s *Server) CommandsFor(scope, language string) []Command {
	key, e := commandsKey(params{v: map[string]string{"scope": scope, "language_code": language}})
	if e != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Command(nil), s.commands[key]...)
}

// CommandMenus is every command list set now, by scope and language,
// sorted by scope.
func (s *Server) CommandMenus() []CommandMenu {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.commands))
	for k := range s.commands {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]CommandMenu, 0, len(keys))
	for _, k := range keys {
		out = append(out, menuOf(k, s.commands[k]))
	}
	return out
}

// VisibleCommands is the menu a user sees in chat, resolved as Telegram
// resolves scopes for a user without a language: the chat's own scope,
// then all private chats (or all group chats), then the default. The
// administrator and member scopes are not modelled.
func (s *Server) VisibleCommands(chat Chat) []Command {
	scopes := []string{fmt.Sprintf(`{"chat_id":%d,"type":"chat"}`, chat.ID)}
	if chat.Type == "" || chat.Type == "private" {
		scopes = append(scopes, `{"type":"all_private_chats"}`)
	} else {
		scopes = append(scopes, `{"type":"all_group_chats"}`)
	}
	scopes = append(scopes, `{"type":"default"}`)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range scopes {
		if cmds, ok := s.commands[sc+"|"]; ok && len(cmds) > 0 {
			return append([]Command(nil), cmds...)
		}
	}
	return nil
}

// WebhookCalls is every setWebhook and deleteWebhook, in order.
func (s *Server) WebhookCalls() []WebhookCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WebhookCall, len(s.hooks))
	for i, h := range s.hooks {
		h.AllowedUpdates = append([]string(nil), h.AllowedUpdates...)
		out[i] = h
	}
	return out
}

// Calls is how many requests named method (case-insensitive) arrived with
// the right token, faulted ones included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[strings.ToLower(method)]
}

// Unauthorized is how many requests carried a wrong token.
func (s *Server) Unauthorized() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unauthorized
}

// Conflicts is how many getUpdates were ended by a newer one.
func (s *Server) Conflicts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflicts
}

// PollTimes is when each getUpdates arrived, by the fake's clock.
func (s *Server) PollTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.pollTimes...)
}

// UpdateDelivered is when a getUpdates first returned the update: the
// moment it became visible to the bot.
func (s *Server) UpdateDelivered(updateID int64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.delivered[updateID]
	return t, ok
}

// UpdateConfirmed is when a getUpdates offset confirmed the update.
func (s *Server) UpdateConfirmed(updateID int64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.confirmed[updateID]
	return t, ok
}

// wait blocks until cond, called with s.mu held, reports true, or ctx ends
// or the server closes.
func (s *Server) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakebotapi: wait for %s: %w", what, ctx.Err())
		case <-s.done:
			// One last look: the change may have come with the close.
			s.mu.Lock()
			ok := cond()
			s.mu.Unlock()
			if ok {
				return nil
			}
			return fmt.Errorf("fakebotapi: wait for %s: %w", what, errClosed)
		}
	}
}

// WaitMessage waits for the first message the bot sent (in order) that
// pred accepts, as it is at the time, and returns it.
func (s *Server) WaitMessage(ctx context.Context, pred func(Message) bool) (Message, error) {
	var got Message
	err := s.wait(ctx, "a message", func() bool {
		for _, m := range s.sent {
			if pred(*m.view()) {
				got = m.snapshot()
				return true
			}
		}
		return false
	})
	return got, err
}

// WaitDocument waits for the first document pred accepts.
func (s *Server) WaitDocument(ctx context.Context, pred func(Document) bool) (Document, error) {
	var got Document
	err := s.wait(ctx, "a document", func() bool {
		for _, d := range s.docs {
			if c := copyDocument(d); pred(c) {
				got = c
				return true
			}
		}
		return false
	})
	return got, err
}

// WaitDeleted waits until message msgID in chatID has been deleted.
func (s *Server) WaitDeleted(ctx context.Context, chatID int64, msgID int) error {
	return s.wait(ctx, fmt.Sprintf("deletion of message %d", msgID), func() bool {
		cs := s.chats[chatID]
		return cs != nil && cs.msgs[msgID] != nil && cs.msgs[msgID].Deleted
	})
}

// WaitPoll waits for the first getUpdates and returns when it arrived.
func (s *Server) WaitPoll(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.wait(ctx, "the first getUpdates", func() bool {
		if len(s.pollTimes) == 0 {
			return false
		}
		t = s.pollTimes[0]
		return true
	})
	return t, err
}

// WaitPolling waits until a getUpdates is waiting for updates (long
// polling, nothing to return), the bot's idle state.
func (s *Server) WaitPolling(ctx context.Context) error {
	return s.wait(ctx, "a waiting getUpdates", func() bool { return s.poll != nil && len(s.queue) == 0 })
}

// WaitConfirmed waits until the bot has confirmed the update and returns
// when it did.
func (s *Server) WaitConfirmed(ctx context.Context, updateID int64) (time.Time, error) {
	var t time.Time
	err := s.wait(ctx, fmt.Sprintf("confirmation of update %d", updateID), func() bool {
		var ok bool
		t, ok = s.confirmed[updateID]
		return ok
	})
	return t, err
}

// WaitCallbackAnswer waits for the bot to answer callback query id.
func (s *Server) WaitCallbackAnswer(ctx context.Context, id string) (CallbackAnswer, error) {
	var got CallbackAnswer
	err := s.wait(ctx, "a callback answer", func() bool {
		for _, a := range s.answers {
			if a.QueryID == id {
				got = a
				return true
			}
		}
		return false
	})
	return got, err
}

// WaitCalls waits until method has been called at least n times.
func (s *Server) WaitCalls(ctx context.Context, method string, n int) error {
	key := strings.ToLower(method)
	return s.wait(ctx, fmt.Sprintf("%d calls of %s", n, method), func() bool { return s.calls[key] >= n })
}

// WaitCommandsFor waits until the menu of scope (its JSON) and language
// is non-empty, and returns it.
func (s *Server) WaitCommandsFor(ctx context.Context, scope, language string) ([]Command, error) {
	key, e := commandsKey(params{v: map[string]string{"scope": scope, "language_code": language}})
	if e != nil {
		return nil, fmt.Errorf("fakebotapi: scope %s: %s", scope, e.desc)
	}
	var got []Command
	err := s.wait(ctx, "setMyCommands for "+scope, func() bool {
		got = append([]Command(nil), s.commands[key]...)
		return len(got) > 0
	})
	return got, err
}

// WaitCommands waits until setMyCommands has set a non-empty default list.
func (s *Server) WaitCommands(ctx context.Context) ([]Command, error) {
	var got []Command
	err := s.wait(ctx, "setMyCommands", func() bool {
		got = append([]Command(nil), s.commands[`{"type":"default"}|`]...)
		return len(got) > 0
	})
	return got, err
}
