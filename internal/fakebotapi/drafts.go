package fakebotapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// sendMessageDraft streams a partial message to a private chat. Its
// parameters are those of the Bot API: chat_id (a private chat),
// draft_id (non-zero), text (0 to 4096 characters after entity parsing;
// empty shows "Thinking…"), parse_mode or entities, message_thread_id,
// and from Bot API 10.3 can_stop and keep_on_stop.
//
// The fake's model, where the Bot API documentation is silent: a draft
// lives DraftLifetime after its last update; an update to an expired or
// finished draft ID starts a new draft; a message or document the bot
// sends to the chat's thread finishes its live drafts (the output is
// persisted); an update to a stopped draft is accepted and ignored, and
// counted in AfterStop.
func (s *Server) sendMessageDraft(_ *http.Request, p params) (any, *apiError) {
	id, ok, e := p.int("draft_id")
	if e != nil {
		return nil, e
	}
	if !ok || id == 0 {
		return nil, badRequest("invalid draft_id specified")
	}
	text := p.str("text")
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
	if UTF16Len(plain) > MaxMessageLength {
		return nil, badRequest("message is too long")
	}
	thread, _, e := p.int("message_thread_id")
	if e != nil {
		return nil, e
	}
	canStop := p.bool("can_stop") && s.has(FeatureStopButton)
	keep := p.bool("keep_on_stop") && s.has(FeatureStopButton)

	s.mu.Lock()
	defer s.mu.Unlock()
	cs, e := s.chatForLocked(p)
	if e != nil {
		return nil, e
	}
	if cs.chat.Type != "private" {
		// What Telegram answers for a draft to a group or channel.
		return nil, badRequest("TEXTDRAFT_PEER_INVALID")
	}
	now := s.clock.Now()
	s.expireDraftsLocked(now)
	d := s.draftLocked(cs.chat.ID, int(thread), id)
	switch {
	case d != nil && d.State == DraftStopped:
		d.AfterStop++
		s.notifyLocked()
		return true, nil
	case d == nil || d.State != DraftLive:
		d = &Draft{ChatID: cs.chat.ID, ThreadID: int(thread), ID: id, State: DraftLive, Started: now}
		s.drafts = append(s.drafts, d)
	}
	d.Text, d.RawText, d.ParseMode = plain, text, mode
	d.CanStop, d.KeepOnStop = canStop, keep
	d.Updated = now
	d.Updates++
	d.Texts = append(d.Texts, plain)
	if len(d.Texts) > maxDraftTexts {
		d.Texts = append([]string(nil), d.Texts[len(d.Texts)-maxDraftTexts:]...)
	}
	c := copyDraft(d)
	s.eventLocked(Event{Kind: EventDraft, Draft: &c})
	s.notifyLocked()
	return true, nil
}

// draftLocked is the most recent draft with this chat, thread and ID.
func (s *Server) draftLocked(chatID int64, thread int, id int64) *Draft {
	for i := len(s.drafts) - 1; i >= 0; i-- {
		if d := s.drafts[i]; d.ChatID == chatID && d.ThreadID == thread && d.ID == id {
			return d
		}
	}
	return nil
}

// expireDraftsLocked ends the live drafts whose last update is
// DraftLifetime old. Expiry is computed when drafts are looked at, so it
// follows the fake's clock without a timer.
func (s *Server) expireDraftsLocked(now time.Time) {
	for _, d := range s.drafts {
		if d.State == DraftLive && !now.Before(d.Updated.Add(DraftLifetime)) {
			d.State, d.Ended = DraftExpired, d.Updated.Add(DraftLifetime)
		}
	}
}

func copyDraft(d *Draft) Draft {
	c := *d
	c.Texts = append([]string(nil), d.Texts...)
	return c
}

// Drafts is every draft the bot streamed, in the order they started, with
// their state at the fake clock's now.
func (s *Server) Drafts() []Draft {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDraftsLocked(s.clock.Now())
	out := make([]Draft, 0, len(s.drafts))
	for _, d := range s.drafts {
		out = append(out, copyDraft(d))
	}
	return out
}

// WaitDraft waits for the first draft (in start order) that pred accepts
// as it is at the time. Expiry is seen when a later change wakes the
// wait; after moving the clock, read Drafts.
func (s *Server) WaitDraft(ctx context.Context, pred func(Draft) bool) (Draft, error) {
	var got Draft
	err := s.wait(ctx, "a draft", func() bool {
		s.expireDraftsLocked(s.clock.Now())
		for _, d := range s.drafts {
			if c := copyDraft(d); pred(c) {
				got = c
				return true
			}
		}
		return false
	})
	return got, err
}

// ErrNoStopButton is StopDraft's answer for a draft that shows no stop
// button: it was sent without can_stop, or the fake lacks
// FeatureStopButton.
var ErrNoStopButton = errors.New("fakebotapi: the draft has no stop button")

// StopDraft plays the owner pressing the stop button of the live draft
// draftID in chatID: the draft ends (DraftStopped) and a
// stopped_message_generation update is queued, which it returns the ID
// of. Only a live draft sent with can_stop can be stopped, as only such a
// draft shows the button.
func (s *Server) StopDraft(chatID int64, draftID int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.expireDraftsLocked(now)
	var d *Draft
	for i := len(s.drafts) - 1; i >= 0; i-- {
		if c := s.drafts[i]; c.ChatID == chatID && c.ID == draftID && c.State == DraftLive {
			d = c
			break
		}
	}
	if d == nil {
		return 0, fmt.Errorf("fakebotapi: no live draft %d in chat %d", draftID, chatID)
	}
	if !d.CanStop {
		return 0, ErrNoStopButton
	}
	d.State, d.Ended = DraftStopped, now
	c := copyDraft(d)
	s.eventLocked(Event{Kind: EventStop, Draft: &c})
	chat := s.chats[chatID].chat
	u := wireUpdate{Stopped: &wireStopped{Chat: chat, ThreadID: d.ThreadID, DraftID: d.ID}}
	id := s.pushLocked("stopped_message_generation", func(id int64) json.RawMessage {
		u.UpdateID = id
		b, _ := json.Marshal(u)
		return b
	})
	s.notifyLocked()
	return id, nil
}

// LiveDrafts is the drafts on screen now, for a viewer.
func (s *Server) LiveDrafts() []Draft {
	var out []Draft
	for _, d := range s.Drafts() {
		if d.State == DraftLive {
			out = append(out, d)
		}
	}
	return out
}
