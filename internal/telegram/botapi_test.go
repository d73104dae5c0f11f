package telegram

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// These tests drive the client against the project's fake Bot API, which
// behaves like Telegram (and, with fakebotapi.Without, like a server that
// predates a feature), on 127.0.0.1.

const ownerID = 4242

var (
	owner   = fakebotapi.User{ID: ownerID, FirstName: "Owner"}
	ownerDM = fakebotapi.Private(owner)
)

// manualClock is a fakebotapi.Clock moved by hand; nothing in these tests
// waits on it, so After only has to never fire early.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func startAPI(t *testing.T, opts ...fakebotapi.Option) *fakebotapi.Server {
	t.Helper()
	s := fakebotapi.New(testToken, opts...)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestDraftLifecycle(t *testing.T) {
	clock := &manualClock{now: time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)}
	api := startAPI(t, fakebotapi.WithClock(clock))
	h := newHarness(t, api.URL())
	ctx := testCtx(t)

	for _, text := range []string{"", "/disk <i>1 s</i>\n<pre>a</pre>", "/disk <i>3 s</i>\n<pre>a\nb</pre>"} {
		if err := h.c.SendDraft(ctx, Draft{ChatID: ownerID, ID: 7, HTML: text}); err != nil {
			t.Fatalf("SendDraft(%q): %v", text, err)
		}
		clock.Advance(2 * time.Second)
	}
	ds := api.Drafts()
	if len(ds) != 1 {
		t.Fatalf("got %d drafts, want one draft updated in place", len(ds))
	}
	d := ds[0]
	if d.State != fakebotapi.DraftLive || d.Updates != 3 || d.Text != "/disk 3 s\na\nb" || d.Texts[0] != "" || d.ParseMode != "HTML" {
		t.Fatalf("got %+v, want a live draft with 3 updates, the placeholder first and the parsed HTML last", d)
	}
	if d.CanStop {
		t.Errorf("got a stop button on a draft sent without CanStop")
	}

	// Drafts vanish on their own 30 s after the last update.
	clock.Advance(fakebotapi.DraftLifetime)
	if d := api.Drafts()[0]; d.State != fakebotapi.DraftExpired || !d.Ended.Equal(d.Updated.Add(fakebotapi.DraftLifetime)) {
		t.Fatalf("got %s ended %v, want expired 30 s after %v", d.State, d.Ended, d.Updated)
	}

	// The result is persisted with a message, which ends a live draft.
	if err := h.c.SendDraft(ctx, Draft{ChatID: ownerID, ID: 7, HTML: "again"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.SendText(ctx, ownerID, "<pre>a\nb</pre>"); err != nil {
		t.Fatal(err)
	}
	ds = api.Drafts()
	if len(ds) != 2 || ds[1].State != fakebotapi.DraftFinished || ds[1].Updates != 1 {
		t.Fatalf("got %+v, want a second draft for the reused ID, finished by the message", ds)
	}
	if h.sleep.Waits() != nil {
		t.Errorf("waits: got %v, want none", h.sleep.Waits())
	}
}

func TestDraftValidation(t *testing.T) {
	api := startAPI(t)
	h := newHarness(t, api.URL())
	ctx := testCtx(t)
	for name, d := range map[string]Draft{
		"zero id":     {ChatID: ownerID, HTML: "x"},
		"invalid utf": {ChatID: ownerID, ID: 1, HTML: "\xff"},
	} {
		err := h.c.SendDraft(ctx, d)
		if err == nil || errors.Is(err, ErrDraftsUnsupported) {
			t.Errorf("%s: got %v, want a local validation error", name, err)
		}
	}
	// A group has a negative ID; drafts exist in private chats only.
	if err := h.c.SendDraft(ctx, Draft{ChatID: -100123, ID: 1, HTML: "x"}); !errors.Is(err, ErrDraftsUnsupported) {
		t.Errorf("draft to a group: got %v, want ErrDraftsUnsupported", err)
	}
	if n := api.Calls("sendMessageDraft"); n != 0 {
		t.Errorf("got %d sendMessageDraft calls, want none for invalid drafts", n)
	}
	// Telegram's own limits come back as an ordinary refusal.
	err := h.c.SendDraft(ctx, Draft{ChatID: ownerID, ID: 1, HTML: "<b>x"})
	if err == nil || errors.Is(err, ErrDraftsUnsupported) {
		t.Errorf("malformed HTML: got %v, want a 400 that is not ErrDraftsUnsupported", err)
	}
}

// TestDraftsUnsupported plays a server that predates sendMessageDraft (404
// for an unknown method, as a local Bot API build without drafts answers
// too) and one that refuses drafts for the peer.
func TestDraftsUnsupported(t *testing.T) {
	t.Run("server without the method", func(t *testing.T) {
		api := startAPI(t, fakebotapi.Without(fakebotapi.FeatureDrafts))
		h := newHarness(t, api.URL())
		ctx := testCtx(t)
		err := h.c.SendDraft(ctx, Draft{ChatID: ownerID, ID: 1, HTML: "x"})
		if !errors.Is(err, ErrDraftsUnsupported) {
			t.Fatalf("got %v, want ErrDraftsUnsupported", err)
		}
		// A 404 for a method the server lacks is not a rejected token.
		if errors.Is(err, ErrUnauthorized) {
			t.Errorf("got ErrUnauthorized for an unknown method")
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != 404 || strings.Contains(e.Error(), "token") {
			t.Errorf("got %v, want a 404 *Error that does not blame the token", err)
		}
		// Remembered: the fallback costs no request per progress tick.
		for range 3 {
			if err := h.c.SendDraft(ctx, Draft{ChatID: ownerID, ID: 1, HTML: "y"}); !errors.Is(err, ErrDraftsUnsupported) {
				t.Fatalf("later call: got %v, want ErrDraftsUnsupported", err)
			}
		}
		if n := api.Calls("sendMessageDraft"); n != 1 {
			t.Errorf("got %d sendMessageDraft calls, want 1", n)
		}
		// The fallback, an edited message, works on the same server.
		id, err := h.c.SendText(ctx, ownerID, "/disk <i>2 s</i>", Silent())
		if err != nil {
			t.Fatal(err)
		}
		if err := h.c.EditText(ctx, ownerID, id, "/disk <i>4 s</i>"); err != nil {
			t.Fatal(err)
		}
		if m := api.Sent()[0]; len(m.Edits) != 1 || m.Text != "/disk 4 s" {
			t.Errorf("got %+v, want the progress message edited once", m)
		}
	})
	t.Run("peer refused", func(t *testing.T) {
		api := startAPI(t)
		api.Fail("sendMessageDraft", 1, 400, `{"ok":false,"error_code":400,"description":"Bad Request: TEXTDRAFT_PEER_INVALID"}`, "application/json")
		h := newHarness(t, api.URL())
		ctx := testCtx(t)
		if err := h.c.SendDraft(ctx, Draft{ChatID: ownerID, ID: 1, HTML: "x"}); !errors.Is(err, ErrDraftsUnsupported) {
			t.Fatalf("got %v, want ErrDraftsUnsupported", err)
		}
		// A peer refusal is not remembered: the next job tries again.
		if err := h.c.SendDraft(ctx, Draft{ChatID: ownerID, ID: 2, HTML: "x"}); err != nil {
			t.Fatalf("next draft: %v", err)
		}
	})
}

// TestDraftNeverWaits: a draft update is superseded by the next one, so a
// 429 is handed back at once instead of being waited out.
func TestDraftNeverWaits(t *testing.T) {
	api := startAPI(t)
	api.RateLimit("sendMessageDraft", 1, 25*time.Second)
	h := newHarness(t, api.URL())
	err := h.c.SendDraft(testCtx(t), Draft{ChatID: ownerID, ID: 1, HTML: "x"})
	var e *Error
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &e) || e.RetryAfter != 25*time.Second {
		t.Fatalf("got %v, want ErrRateLimited with RetryAfter 25s", err)
	}
	if w := h.sleep.Waits(); len(w) != 0 || api.Calls("sendMessageDraft") != 1 {
		t.Errorf("got waits %v and %d calls, want one call and no wait", w, api.Calls("sendMessageDraft"))
	}
}

// pollUpdates polls until n updates arrived and returns them.
func pollUpdates(t *testing.T, c *Client, n int) []Update {
	t.Helper()
	rec := newRecorder()
	stop := startPoll(t, c, rec.handle)
	waitFor(t, rec.seen, n)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Update(nil), rec.got...)
}

func TestStopButton(t *testing.T) {
	api := startAPI(t)
	h := newHarness(t, api.URL())
	ctx := testCtx(t)
	if err := h.c.SendDraft(ctx, Draft{ChatID: ownerID, ID: 31, HTML: "/backup <i>running</i>", CanStop: true}); err != nil {
		t.Fatal(err)
	}
	if d := api.Drafts()[0]; !d.CanStop {
		t.Fatalf("got %+v, want a draft with a stop button", d)
	}
	if _, err := api.StopDraft(ownerID, 31); err != nil {
		t.Fatal(err)
	}
	got := pollUpdates(t, h.c, 1)
	u := got[0]
	if u.Kind != KindGenerationStopped || u.DraftID != 31 || u.ChatID != ownerID || u.UserID != ownerID || u.ChatType != "private" {
		t.Fatalf("got %+v (draft %d), want the owner stopping draft 31", fields(u), u.DraftID)
	}
	if !u.Date.IsZero() {
		t.Errorf("got date %v, want none: the update carries no date", u.Date)
	}
	// The stop ends the draft; later updates are ignored by Telegram.
	if err := h.c.SendDraft(ctx, Draft{ChatID: ownerID, ID: 31, HTML: "late", CanStop: true}); err != nil {
		t.Fatal(err)
	}
	if d := api.Drafts()[0]; d.State != fakebotapi.DraftStopped || d.AfterStop != 1 || d.Text != "/backup running" {
		t.Errorf("got %+v, want the stopped draft unchanged with one update after the stop", d)
	}
}

// TestStopButtonUnsupported: a server before Bot API 10.3 ignores
// can_stop. The draft still streams; it just cannot be stopped from it.
func TestStopButtonUnsupported(t *testing.T) {
	api := startAPI(t, fakebotapi.Without(fakebotapi.FeatureStopButton))
	h := newHarness(t, api.URL())
	if err := h.c.SendDraft(testCtx(t), Draft{ChatID: ownerID, ID: 1, HTML: "x", CanStop: true}); err != nil {
		t.Fatal(err)
	}
	if d := api.Drafts()[0]; d.CanStop || d.State != fakebotapi.DraftLive {
		t.Errorf("got %+v, want a live draft without a stop button", d)
	}
	if _, err := api.StopDraft(ownerID, 1); !errors.Is(err, fakebotapi.ErrNoStopButton) {
		t.Errorf("StopDraft: got %v, want ErrNoStopButton", err)
	}
}

func TestButtonStyles(t *testing.T) {
	confirm := Buttons([]Button{{Text: "Run", Data: "r:1", Style: StyleDanger}, {Text: "Cancel", Data: "x:1"}})
	for _, tt := range []struct {
		name string
		opts []fakebotapi.Option
		want string
	}{
		{"server with styles", nil, "danger"},
		{"server before styles shows a plain button", []fakebotapi.Option{fakebotapi.Without(fakebotapi.FeatureButtonStyle)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := startAPI(t, tt.opts...)
			h := newHarness(t, api.URL())
			if _, err := h.c.SendText(testCtx(t), ownerID, "<b>Run /reboot?</b>", confirm); err != nil {
				t.Fatal(err)
			}
			b := api.Sent()[0].Buttons[0]
			if b[0].Style != tt.want || b[0].Data != "r:1" || b[1].Style != "" {
				t.Errorf("got buttons %+v, want Run styled %q and Cancel plain", b, tt.want)
			}
		})
	}
	h := newHarness(t, "http://127.0.0.1:1")
	if _, err := h.c.SendText(testCtx(t), 1, "x", Buttons([]Button{{Text: "a", Data: "b", Style: "red"}})); err == nil || strings.Contains(err.Error(), "telegram sendMessage") {
		t.Errorf("unknown style: got %v, want a local validation error", err)
	}
}

func TestMarkPressed(t *testing.T) {
	confirm := Buttons([]Button{{Text: "Run", Data: "r:1", Style: StyleDanger}, {Text: "Cancel", Data: "x:1"}})
	t.Run("disabled button", func(t *testing.T) {
		api := startAPI(t)
		h := newHarness(t, api.URL())
		ctx := testCtx(t)
		id, err := h.c.SendText(ctx, ownerID, "<b>Run /reboot?</b>", confirm)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.c.MarkPressed(ctx, ownerID, id, "✓ Run", ""); err != nil {
			t.Fatal(err)
		}
		m := api.Sent()[0]
		if len(m.Buttons) != 1 || len(m.Buttons[0]) != 1 || m.Buttons[0][0].Text != "✓ Run" || !m.Buttons[0][0].Disabled || m.Buttons[0][0].Data != "" {
			t.Fatalf("got keyboard %+v, want one disabled ✓ Run", m.Buttons)
		}
		// What the owner sees can no longer be pressed.
		if _, err := api.PressButtonAt(owner, ownerID, id, 1); err == nil {
			t.Errorf("pressing the disabled button: got nil, want an error")
		}
		// Pressing twice is idempotent.
		if err := h.c.MarkPressed(ctx, ownerID, id, "✓ Run", ""); err != nil {
			t.Errorf("second MarkPressed: %v", err)
		}
	})
	t.Run("server before disabled buttons", func(t *testing.T) {
		api := startAPI(t, fakebotapi.Without(fakebotapi.FeatureDisabledButton))
		h := newHarness(t, api.URL())
		ctx := testCtx(t)
		var ids []int
		for range 2 {
			id, err := h.c.SendText(ctx, ownerID, "<b>Run /reboot?</b>", confirm)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if err := h.c.MarkPressed(ctx, ownerID, id, "✓ Run", ""); err != nil {
				t.Fatalf("MarkPressed: %v, want the fallback to succeed", err)
			}
		}
		for _, m := range api.Sent() {
			if m.Buttons != nil {
				t.Errorf("message %d: got keyboard %+v, want it removed", m.ID, m.Buttons)
			}
		}
		// One refused attempt, then straight to the fallback: 1 + 2 removals.
		if n := api.Calls("editMessageReplyMarkup"); n != 3 {
			t.Errorf("got %d editMessageReplyMarkup calls, want 3", n)
		}
		if _, err := api.PressButtonAt(owner, ownerID, ids[0], 1); err == nil {
			t.Errorf("pressing a removed button: got nil, want an error")
		}
	})
}

// TestOutputIsNeverPreviewed sends command output full of links: Telegram
// must not fetch any of them. protect_content follows the client option.
func TestOutputIsNeverPreviewed(t *testing.T) {
	for _, protect := range []bool{false, true} {
		t.Run(fmt.Sprintf("protect=%v", protect), func(t *testing.T) {
			api := startAPI(t)
			h := newHarness(t, api.URL(), func(o *Options) { o.ProtectContent = protect })
			ctx := testCtx(t)
			out := `<pre>curl https://internal.example/token?x=1</pre> <a href="https://evil.example/">log</a> www.example.org`
			id, err := h.c.SendText(ctx, ownerID, out)
			if err != nil {
				t.Fatal(err)
			}
			if m := api.Sent()[0]; !m.NoLinkPreview || m.LinkPreview {
				t.Errorf("sent: got %+v, want previews disabled", m)
			}
			if err := h.c.EditText(ctx, ownerID, id, out+" ✓"); err != nil {
				t.Fatal(err)
			}
			if err := h.c.SendDocument(ctx, ownerID, "out.txt", func() (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader("https://example.com\n")), nil
			}, ""); err != nil {
				t.Fatal(err)
			}
			m := api.Sent()[0]
			if !m.NoLinkPreview || m.LinkPreview || len(m.Edits) != 1 {
				t.Errorf("edited: got %+v, want previews disabled", m)
			}
			if m.Protected != protect || api.Documents()[0].Protected != protect {
				t.Errorf("protect_content: got message %v document %v, want %v", m.Protected, api.Documents()[0].Protected, protect)
			}
		})
	}
	// The check can fail: the same text sent without the option is
	// previewed by the fake, as Telegram would.
	api := startAPI(t)
	h := newHarness(t, api.URL())
	if _, err := h.c.bot.SendMessage(testCtx(t), &bot.SendMessageParams{ChatID: ownerID, Text: "see https://example.com"}); err != nil {
		t.Fatal(err)
	}
	if m := api.Sent()[0]; !m.LinkPreview {
		t.Errorf("got %+v, want a message with a link and no option to be previewed", m)
	}
}

func TestSetOwnerCommands(t *testing.T) {
	api := startAPI(t)
	h := newHarness(t, api.URL())
	ctx := testCtx(t)
	stranger := fakebotapi.Private(fakebotapi.User{ID: 666, FirstName: "Mallory"})

	// A menu left in the default scope by an older relay is cleared.
	if err := h.c.SetCommands(ctx, []Command{{Name: "reboot", Description: "reboot the box"}}); err != nil {
		t.Fatal(err)
	}
	if got := api.VisibleCommands(stranger); len(got) != 1 {
		t.Fatalf("setup: stranger sees %v, want the old default menu", got)
	}
	cmds := []Command{{Name: "disk", Description: "disk usage"}, {Name: "login", Description: "log in"}}
	set, err := h.c.SetOwnerCommands(ctx, ownerID, cmds)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(set) != fmt.Sprint(cmds) {
		t.Errorf("set: got %v, want %v", set, cmds)
	}
	if got := api.VisibleCommands(ownerDM); len(got) != 2 || got[0].Command != "disk" {
		t.Errorf("owner sees %v, want disk and login", got)
	}
	if got := api.VisibleCommands(stranger); got != nil {
		t.Errorf("stranger sees %v, want no menu", got)
	}
	if got := api.VisibleCommands(fakebotapi.Group(-100, "friends")); got != nil {
		t.Errorf("a group sees %v, want no menu", got)
	}
	scopes := api.CommandMenus()
	if len(scopes) != 1 || scopes[0].Scope != `{"chat_id":4242,"type":"chat"}` {
		t.Errorf("got menus %+v, want only the owner's chat scope", scopes)
	}

	// Over Telegram's limit: the first MaxCommands are set, and said so.
	var many []Command
	for i := range 150 {
		many = append(many, Command{Name: fmt.Sprintf("c%03d", i), Description: "x"})
	}
	set, err = h.c.SetOwnerCommands(ctx, ownerID, many)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != MaxCommands || set[MaxCommands-1].Name != "c099" {
		t.Errorf("set %d commands ending %v, want the first %d", len(set), set[len(set)-1], MaxCommands)
	}
	if got := api.VisibleCommands(ownerDM); len(got) != MaxCommands {
		t.Errorf("owner sees %d commands, want %d", len(got), MaxCommands)
	}

	// Invalid input fails before anything is sent.
	before := api.Calls("setMyCommands") + api.Calls("deleteMyCommands")
	if _, err := h.c.SetOwnerCommands(ctx, ownerID, []Command{{Name: "Bad-Name", Description: "x"}}); err == nil {
		t.Errorf("bad name: got nil, want an error")
	}
	if _, err := h.c.SetOwnerCommands(ctx, -100, cmds); err == nil {
		t.Errorf("group as owner: got nil, want an error")
	}
	if after := api.Calls("setMyCommands") + api.Calls("deleteMyCommands"); after != before {
		t.Errorf("invalid calls made %d requests, want none", after-before)
	}

	// An empty list clears the owner's menu too.
	if _, err := h.c.SetOwnerCommands(ctx, ownerID, nil); err != nil {
		t.Fatal(err)
	}
	if got := api.CommandMenus(); len(got) != 0 {
		t.Errorf("got menus %+v, want none", got)
	}
}
