package playground

import (
	"context"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/fakebotapi"
)

// Kinds of page event: what the chat page applies, in order.
const (
	kindOwner    = "owner"    // the owner sent a message (from the page)
	kindMessage  = "message"  // the bot sent a message
	kindEdit     = "edit"     // the bot edited a message
	kindButtons  = "buttons"  // the bot changed or removed a message's buttons
	kindDelete   = "delete"   // a message (the bot's or the owner's) was deleted
	kindDocument = "document" // the bot sent a document
	kindDraft    = "draft"    // the bot started or updated a draft
	kindStop     = "stop"     // the owner stopped a draft
	kindMenu     = "menu"     // the owner's command menu changed
	kindAnswer   = "answer"   // the bot answered a button press
	kindStopped  = "stopped"  // the playground is shutting down; the last event
)

// pageEvent is one change to the chat, as JSON for the page. Texts are
// spans (see render), never markup.
type pageEvent struct {
	Seq  uint64 `json:"seq"`
	Kind string `json:"kind"`
	// ID is the message's ID in the chat (owner's and bot's share them).
	ID int `json:"id,omitempty"`
	// At is when it happened, in Unix milliseconds.
	At   int64  `json:"at"`
	Text []span `json:"text,omitempty"`
	// Edits counts the edits of an edited message.
	Edits   int        `json:"edits,omitempty"`
	Buttons [][]button `json:"buttons,omitempty"`
	Silent  bool       `json:"silent,omitempty"`
	// Checkpoint marks the audit checkpoints relay posts to the chat.
	Checkpoint bool      `json:"checkpoint,omitempty"`
	Doc        *document `json:"doc,omitempty"`
	Draft      *draft    `json:"draft,omitempty"`
	Menu       []command `json:"menu,omitempty"`
	Answer     *answer   `json:"answer,omitempty"`
}

// button is an inline button; N is its place (from 1, row by row), which
// is what a press names.
type button struct {
	N        int    `json:"n"`
	Text     string `json:"text"`
	Style    string `json:"style,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
	// URL is set for a link button, and only to an http(s) URL.
	URL string `json:"url,omitempty"`
}

type document struct {
	Name string `json:"name"`
	MIME string `json:"mime"`
	Size int64  `json:"size"`
	// Kept is false when the fake kept only the size and hash (too large
	// to hold), so there is nothing to download.
	Kept bool `json:"kept"`
	// Preview is the document's start, when it is text.
	Preview   string `json:"preview,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

type draft struct {
	// ID is a string on the wire: draft IDs are 64-bit, beyond what a
	// JavaScript number holds exactly.
	ID      int64 `json:"id,string"`
	CanStop bool  `json:"canStop,omitempty"`
}

type command struct {
	Command     string `json:"command"`
	Description string `json:"description"`
}

type answer struct {
	Text  string `json:"text"`
	Alert bool   `json:"alert,omitempty"`
}

// previewBytes bounds a document's preview in the page.
const previewBytes = 4 << 10

// maxFeed bounds the events kept for the page; a page that reconnects
// after more than this many events gets the latest ones.
const maxFeed = 2000

// feed is the ordered chat history the page follows: the owner's messages
// and the bot's changes translated from the fake's events. Appends and the
// owner's sends take the same lock, so a reply can never be ordered
// before the message it answers.
type feed struct {
	mu     sync.Mutex
	events []pageEvent
	seq    uint64
	closed bool
	// changed is closed and replaced on every append.
	changed chan struct{}
}

func newFeed() *feed { return &feed{changed: make(chan struct{})} }

// add appends the event that build returns, if any, calling it with the
// feed locked.
func (f *feed) add(build func() (pageEvent, bool)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	e, ok := build()
	if !ok {
		return
	}
	f.seq++
	e.Seq = f.seq
	if len(f.events) >= maxFeed {
		f.events = append(f.events[:0:0], f.events[len(f.events)-maxFeed/2:]...)
	}
	f.events = append(f.events, e)
	if e.Kind == kindStopped {
		f.closed = true
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// after waits for events after seq and returns them; done reports that
// the feed has ended and nothing will follow.
func (f *feed) after(ctx context.Context, seq uint64) (evs []pageEvent, done bool, err error) {
	for {
		f.mu.Lock()
		i := len(f.events)
		for i > 0 && f.events[i-1].Seq > seq {
			i--
		}
		evs = append([]pageEvent(nil), f.events[i:]...)
		closed, ch := f.closed, f.changed
		f.mu.Unlock()
		if len(evs) > 0 || closed {
			return evs, closed, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// translator turns the fake's events into page events for one owner.
type translator struct {
	fake  *fakebotapi.Server
	owner fakebotapi.User
}

func (t *translator) translate(e fakebotapi.Event) (pageEvent, bool) {
	pe := pageEvent{At: e.At.UnixMilli()}
	switch e.Kind {
	case fakebotapi.EventMessage, fakebotapi.EventEdit, fakebotapi.EventButtons, fakebotapi.EventDelete:
		m := e.Message
		if m.ChatID != t.owner.ID {
			return pe, false
		}
		pe.ID = m.ID
		switch e.Kind {
		case fakebotapi.EventDelete:
			// Only the fact: the text of a deleted /login is a code.
			pe.Kind = kindDelete
			return pe, true
		case fakebotapi.EventButtons:
			pe.Kind = kindButtons
		case fakebotapi.EventEdit:
			pe.Kind, pe.Edits = kindEdit, len(m.Edits)
		default:
			pe.Kind = kindMessage
		}
		pe.Text = render(m.Text, m.Entities)
		pe.Buttons = buttons(m.Buttons)
		pe.Silent = m.Silent
		pe.Checkpoint = isCheckpoint(m.Text)
	case fakebotapi.EventDocument:
		d := e.Document
		if d.ChatID != t.owner.ID {
			return pe, false
		}
		pe.Kind, pe.ID = kindDocument, d.MessageID
		pe.Text = render(d.Caption, captionEntities(d))
		pe.Buttons = buttons(d.Buttons)
		pe.Silent = d.Silent
		pe.Doc = &document{Name: d.FileName, MIME: d.MIMEType, Size: d.Size, Kept: d.Data != nil}
		pe.Doc.Preview, pe.Doc.Truncated = preview(d)
	case fakebotapi.EventDraft, fakebotapi.EventStop:
		d := e.Draft
		if d.ChatID != t.owner.ID {
			return pe, false
		}
		pe.Kind = kindDraft
		if e.Kind == fakebotapi.EventStop {
			pe.Kind = kindStop
		}
		pe.Draft = &draft{ID: d.ID, CanStop: d.CanStop}
		pe.Text = render(d.Text, draftEntities(d))
	case fakebotapi.EventCommands:
		// What the owner's "/" button shows now, as Telegram resolves
		// the scopes for their private chat.
		pe.Kind = kindMenu
		pe.Menu = []command{}
		for _, c := range t.fake.VisibleCommands(fakebotapi.Private(t.owner)) {
			pe.Menu = append(pe.Menu, command{Command: c.Command, Description: c.Description})
		}
	case fakebotapi.EventAnswer:
		if e.Answer.Text == "" {
			return pe, false
		}
		pe.Kind = kindAnswer
		pe.Answer = &answer{Text: strings.ToValidUTF8(e.Answer.Text, "\uFFFD"), Alert: e.Answer.ShowAlert}
	default:
		return pe, false
	}
	return pe, true
}

func buttons(rows [][]fakebotapi.Button) [][]button {
	var out [][]button
	n := 0
	for _, r := range rows {
		var row []button
		for _, b := range r {
			n++
			row = append(row, button{N: n, Text: strings.ToValidUTF8(b.Text, "\uFFFD"), Style: b.Style, Disabled: b.Disabled, URL: safeURL(b.URL)})
		}
		out = append(out, row)
	}
	return out
}

// captionEntities parses the raw caption again: the fake keeps a
// document's parsed caption without its entities.
func captionEntities(d *fakebotapi.Document) []fakebotapi.Entity {
	return reparse(d.RawCaption, d.ParseMode, d.Caption)
}

func draftEntities(d *fakebotapi.Draft) []fakebotapi.Entity {
	return reparse(d.RawText, d.ParseMode, d.Text)
}

// reparse returns the entities of raw in mode, as the fake parsed it into
// plain; none if the result differs (the fake took entities from JSON).
func reparse(raw, mode, plain string) []fakebotapi.Entity {
	var (
		got  string
		ents []fakebotapi.Entity
		err  error
	)
	switch strings.ToLower(mode) {
	case "html":
		got, ents, err = fakebotapi.ParseHTMLLenient(raw)
	case "markdownv2":
		got, ents, err = fakebotapi.ParseMarkdownV2(raw)
	case "markdown":
		got, ents, err = fakebotapi.ParseMarkdown(raw)
	default:
		return nil
	}
	if err != nil || got != plain {
		return nil
	}
	return ents
}

// preview is the start of a text document, cut at a character boundary.
func preview(d *fakebotapi.Document) (string, bool) {
	if d.Data == nil {
		return "", false
	}
	b := d.Data
	truncated := false
	if len(b) > previewBytes {
		cut := previewBytes
		// Back off to the start of the character the cut fell in.
		for i := 0; i < utf8.UTFMax-1 && cut > 0 && d.Data[cut]&0xC0 == 0x80; i++ {
			cut--
		}
		b, truncated = b[:cut], true
	}
	if !strings.HasPrefix(d.MIMEType, "text/") && !utf8.Valid(b) {
		return "", false
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), truncated
}

// isCheckpoint reports whether a message is one of the audit checkpoints
// relay posts, so the page can label it.
func isCheckpoint(text string) bool {
	if !strings.HasPrefix(text, "audit checkpoint ") {
		return false
	}
	_, err := audit.ParseCheckpoint(text)
	return err == nil
}
