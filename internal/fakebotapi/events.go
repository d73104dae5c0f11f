package fakebotapi

import (
	"context"
	"time"
)

// EventKind names what changed in the chat as the owner's phone would
// show it.
type EventKind string

// Event kinds.
const (
	EventMessage  EventKind = "message"  // the bot sent a text message
	EventEdit     EventKind = "edit"     // the bot edited a message's text
	EventButtons  EventKind = "buttons"  // the bot changed a message's keyboard
	EventDelete   EventKind = "delete"   // a message was deleted
	EventDocument EventKind = "document" // the bot sent a document
	EventDraft    EventKind = "draft"    // the bot started or updated a draft
	EventStop     EventKind = "stop"     // the owner pressed a draft's stop button
	EventCommands EventKind = "commands" // the bot set or cleared a command menu
	EventAnswer   EventKind = "answer"   // the bot answered a button press
)

// Event is one change the bot made, in the order the fake applied them.
// Exactly the field its Kind names is set: Message (message, edit,
// buttons, delete), Document, Draft (draft, stop), Menu or Answer.
type Event struct {
	// Seq numbers events from 1, without gaps.
	Seq  uint64
	Kind EventKind
	At   time.Time

	Message  *Message
	Document *Document
	Draft    *Draft
	Menu     *CommandMenu
	Answer   *CallbackAnswer
}

// maxEvents bounds the events the fake keeps; older ones are dropped.
const maxEvents = 10000

// eventLocked records an event. s.mu must be held; every caller also
// notifies the waiters.
func (s *Server) eventLocked(e Event) {
	s.eventSeq++
	e.Seq = s.eventSeq
	e.At = s.clock.Now()
	if len(s.events) >= maxEvents {
		s.events = append(s.events[:0:0], s.events[len(s.events)-maxEvents/2:]...)
	}
	s.events = append(s.events, e)
}

func (s *Server) messageEventLocked(kind EventKind, m *message) {
	c := m.snapshot()
	s.eventLocked(Event{Kind: kind, Message: &c})
}

// Events returns the events after seq (0 for all that are kept), oldest
// first. When events after seq were dropped to bound memory, the first
// returned has a Seq above seq+1.
func (s *Server) Events(after uint64) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eventsLocked(after)
}

func (s *Server) eventsLocked(after uint64) []Event {
	i := len(s.events)
	for i > 0 && s.events[i-1].Seq > after {
		i--
	}
	return append([]Event(nil), s.events[i:]...)
}

// WaitEvents waits until there are events after seq and returns them: a
// feed for a viewer, which passes the last Seq it saw.
func (s *Server) WaitEvents(ctx context.Context, after uint64) ([]Event, error) {
	var got []Event
	err := s.wait(ctx, "events", func() bool {
		got = s.eventsLocked(after)
		return len(got) > 0
	})
	return got, err
}
