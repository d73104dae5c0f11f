package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

// TestBuiltinsTable ties the one table of built-ins to everything derived
// from it: every built-in is dispatched and nothing else is, the policy
// reserves exactly their names, /help lists the visible ones, and the
// phone's menu (the owner's chat only) is the policy's commands, then
// them.
func TestBuiltinsTable(t *testing.T) {
	var names []string
	for _, b := range policy.Builtins {
		names = append(names, b.Name)
		if builtinHandlers[b.Name] == nil {
			t.Errorf("built-in /%s has no handler", b.Name)
		}
	}
	for name := range builtinHandlers {
		if policy.LookupBuiltin(name) == nil {
			t.Errorf("handler for /%s, which policy.Builtins does not list", name)
		}
	}
	if !slices.Equal(policy.Reserved, names) {
		t.Errorf("reserved %v, want the built-ins %v", policy.Reserved, names)
	}
	if policy.MaxMenu != telegram.MaxCommands {
		t.Errorf("policy.MaxMenu %d, telegram.MaxCommands %d", policy.MaxMenu, telegram.MaxCommands)
	}

	// Without hosts the fleet's built-ins are answered but not listed;
	// with some, every built-in but the hidden ones is.
	for _, withHosts := range []bool{false, true} {
		t.Run(fmt.Sprintf("hosts %v", withHosts), func(t *testing.T) {
			o := hopts{commands: echoCmd + napCmd}
			if withHosts {
				o.extra = deadHosts(t, t.TempDir(), "nas")
			}
			h := newHarness(t, o)
			listed := func(b policy.Builtin) bool { return !b.Hidden && (!b.Fleet || withHosts) }
			h.say("/help")
			help := h.expect("Commands")
			for _, b := range policy.Builtins {
				if shown := strings.Contains(help.Text, b.Usage()+" — "); shown != listed(b) {
					t.Errorf("/help shows /%s: %v, want %v", b.Name, shown, listed(b))
				}
			}
			var menu []string
			h.waitFor("the owner's menu", func() bool {
				menu = menu[:0]
				for _, c := range h.api.VisibleCommands(ownerDM) {
					menu = append(menu, c.Command)
				}
				return len(menu) > 0
			})
			want := []string{"echo", "nap"}
			for _, b := range policy.Builtins {
				if listed(b) {
					want = append(want, b.Name)
				}
			}
			if !slices.Equal(menu, want) {
				t.Errorf("got menu %v, want %v", menu, want)
			}
			if others := h.api.VisibleCommands(fakebotapi.Private(stranger)); len(others) != 0 {
				t.Errorf("a stranger sees the menu %v, want none", others)
			}
		})
	}
}

// TestHelpAndMenuPastTheLimits: with more commands than one message or
// the menu holds, /help still arrives (split), and the menu is what fits.
func TestHelpAndMenuPastTheLimits(t *testing.T) {
	var cmds strings.Builder
	for i := range 120 {
		fmt.Fprintf(&cmds, "  c%03d:\n    description: %s\n    argv: [/bin/true]\n    sandbox: none\n", i, strings.Repeat("a description of some length ", 3))
	}
	h := newHarness(t, hopts{commands: cmds.String()})
	h.say("/help")
	first := h.expect("Commands · 1/")
	last := h.expect("/help — list the commands")
	if last.ID == first.ID {
		t.Errorf("/help of 120 commands in one message of %d characters", len(first.Text))
	}
	if !h.sent("/c119") || !h.sent("/c000") {
		t.Error("/help lost commands")
	}
	var menu []fakebotapi.Command
	h.waitFor("the owner's menu", func() bool { menu = h.api.VisibleCommands(ownerDM); return len(menu) > 0 })
	if len(menu) != policy.MaxMenu || menu[len(menu)-1].Command != "help" {
		t.Errorf("got a menu of %d ending /%s, want %d ending /help", len(menu), menu[len(menu)-1].Command, policy.MaxMenu)
	}
	if !strings.Contains(h.log.String(), "do not fit in the phone's menu") {
		t.Error("the daemon did not say at load time that commands are left out of the menu")
	}
}

// TestMessagesTheOwnerDidNotType: in a live session, a message from the
// owner's account that carries someone else's words, and a command for
// another bot, never run; each is audited for what it is, and the chat
// hears nothing.
func TestMessagesTheOwnerDidNotType(t *testing.T) {
	h := newHarness(t, hopts{})
	h.login()
	before := len(h.api.Sent())
	cases := []struct {
		name, extra, reason string
	}{
		{"forwarded from someone", `,"forward_origin":{"type":"user","date":1,"sender_user":{"id":9,"is_bot":false,"first_name":"M"}}`, "forwarded message"},
		{"forwarded from a channel", `,"forward_origin":{"type":"channel","date":1,"chat":{"id":-1001,"type":"channel"},"message_id":4}`, "forwarded message"},
		{"the owner's own message, forwarded", `,"forward_origin":{"type":"user","date":1,"sender_user":{"id":4242,"is_bot":false,"first_name":"O"}}`, "forwarded message"},
		{"via an inline bot", `,"via_bot":{"id":55,"is_bot":true,"first_name":"gif"}`, "via_bot"},
		{"on behalf of a chat", `,"sender_chat":{"id":-1002,"type":"supergroup"}`, "sender_chat"},
		{"business connection", `,"business_connection_id":"bc"`, "business message"},
		{"scheduled", `,"is_from_offline":true`, "is_from_offline"},
	}
	for _, c := range cases {
		h.push(h.ownerMessage("/echo "+strings.ReplaceAll(c.name, ",", ""), c.extra))
	}
	h.say("/echo@other_bot \"addressed elsewhere\"")
	h.say("/echo@" + botName + " \"addressed here\"")
	h.expect("addressed here")
	// Last, as they carry made-up update IDs above the fake's. Relay does not ask for business messages or channel posts
	// (allowed_updates), so the fake never sends them; a server that did
	// would get this.
	h.d.handle(context.Background(), telegram.Update{ID: 1 << 40, Kind: telegram.KindBusinessMessage, MessageID: 5, UserID: ownerID,
		ChatID: ownerID, ChatType: "private", Date: h.clk.Now(), Text: "/echo business", Indirect: telegram.IndirectBusiness})
	h.d.handle(context.Background(), telegram.Update{ID: 1<<40 + 1, Kind: telegram.KindChannelPost, MessageID: 6,
		ChatID: -1003, ChatType: "channel", Date: h.clk.Now(), Text: "/echo channel", Indirect: telegram.IndirectSenderChat})
	if n := h.runs(); n != 1 {
		t.Errorf("got %d runs, want only the command addressed to this bot", n)
	}
	for _, c := range cases {
		found := false
		for _, r := range h.find("type", "update", "outcome", "ignored") {
			found = found || strings.Contains(fmt.Sprint(r["reason"]), c.reason)
		}
		if !found {
			t.Errorf("%s: no record ignoring it as %q", c.name, c.reason)
		}
	}
	if len(h.find("type", "update", "outcome", "ignored", "reason", "command addressed to another bot", "command", "echo")) != 1 {
		t.Error("the command for another bot is not audited as such")
	}
	if len(h.find("type", "update", "detail", telegram.KindBusinessMessage)) != 1 {
		t.Error("the business_message update is not audited as such")
	}
	if len(h.find("type", "unauthorized", "detail", "channel_post")) != 1 {
		t.Error("the channel post is not audited as such")
	}
	// One answer: the echo addressed to this bot.
	if got := len(h.api.Sent()) - before; got != 1 {
		t.Errorf("the chat got %d messages, want 1: %s", got, h.transcript())
	}
}

// TestCodesAreDeletedFirst: a message of the owner's that carries a code
// is deleted whatever check refuses it later, a reauth command's code
// sent without a session is spent, and no code reaches the audit log,
// the relay log or a reply.
func TestCodesAreDeletedFirst(t *testing.T) {
	h := newHarness(t, hopts{commands: echoCmd + rebootCmd})
	deleted := func(what string, msgID int) {
		t.Helper()
		if err := h.api.WaitDeleted(ctxT(t), ownerID, msgID); err != nil {
			t.Errorf("%s: the message with a code was not deleted: %v", what, err)
		}
	}
	var codes []string
	say := func(text string, opts ...fakebotapi.MessageOpt) int {
		_, id := h.say(text, opts...)
		return id
	}

	// A reauth command without a session: refused, deleted, and its code
	// spent, so that whoever saw it cannot log in with it.
	h.clk.Add(30 * time.Second)
	c := code(t, h.clk.Now())
	codes = append(codes, c)
	deleted("reauth without a session", say("/reboot "+c))
	h.expect("not logged in")
	say("/login " + c)
	h.expect("code already used")

	// Stale, with a code: deleted, and still not run.
	h.clk.Add(30 * time.Second)
	c = code(t, h.clk.Now())
	codes = append(codes, c)
	deleted("stale /login", say("/login "+c, fakebotapi.At(h.clk.Now().Add(-time.Hour))))
	// A bare code, without /login.
	h.clk.Add(30 * time.Second)
	c = code(t, h.clk.Now())
	codes = append(codes, c)
	deleted("a bare code", say(c))
	// A /login for another bot still carries the owner's code.
	deleted("/login@other", say("/login@other_bot 246810"))
	codes = append(codes, "246810")
	// An edit that turns a message into a /login.
	_, orig := h.say("hello")
	h.clk.Add(30 * time.Second)
	c = code(t, h.clk.Now())
	codes = append(codes, c)
	id, _ := h.api.SendMessage(owner, ownerDM, "/login "+c, fakebotapi.Edited(orig), fakebotapi.At(h.clk.Now()))
	h.handled(id)
	deleted("an edited /login", orig)
	// A forwarded /login.
	h.push(h.ownerMessage("/login 135790", `,"forward_origin":{"type":"hidden_user","date":1,"sender_user_name":"M"}`))
	codes = append(codes, "135790")

	// A stranger's code is none of relay's business: not even a call.
	calls := h.api.Calls("deleteMessage")
	sid, _ := h.api.SendMessage(stranger, fakebotapi.Private(stranger), "/login 123456")
	h.handled(sid)
	h.login() // the owner's /login, deleted: a call to wait for
	h.waitFor("the owner's /login deleted", func() bool { return h.api.Calls("deleteMessage") > calls })
	if got := h.api.Calls("deleteMessage") - calls; got != 1 {
		t.Errorf("got %d deleteMessage calls after the stranger's /login, want 1 (the owner's own login)", got)
	}
	for _, m := range h.api.Sent() {
		if m.ChatID == strangerID {
			t.Error("relay answered the stranger")
		}
	}

	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	log, text := h.auditText(), h.log.String()
	for _, c := range codes {
		if strings.Contains(log, c) {
			t.Errorf("the audit log contains the code %s", c)
		}
		if strings.Contains(text, c) {
			t.Errorf("the relay log contains the code %s", c)
		}
		if h.sent(c) {
			t.Errorf("a reply contains the code %s", c)
		}
	}
	if h.runs() != 0 {
		t.Errorf("got %d runs, want none", h.runs())
	}
}

// TestOneSessionGate: built-ins, commands and button presses meet the
// same gate, and a session that ran out is reported once, whichever of
// them meets it first.
func TestOneSessionGate(t *testing.T) {
	h := newHarness(t, hopts{commands: echoCmd + dangerCmd})
	h.login()
	h.say("/danger")
	prompt := h.expect("Run /danger?")
	h.clk.Add(15 * time.Minute) // idle limit
	qid, err := h.api.PressButtonAt(owner, ownerID, prompt.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.api.WaitCallbackAnswer(ctxT(t), qid); err != nil {
		t.Fatal(err)
	}
	h.say("/ps")
	h.say("/echo late")
	h.expect("not logged in")
	if n := len(h.find("type", "session", "outcome", "expired")); n != 1 {
		t.Errorf("got %d session expiry records, want 1", n)
	}
	// The press met the gate first and was told why.
	answers := h.api.CallbackAnswers()
	if len(answers) != 1 || !strings.Contains(answers[0].Text, "session expired (idle for 15m0s)") {
		t.Errorf("got answers %+v, want the press told the session expired", answers)
	}
	for _, what := range []string{"confirm", "request"} {
		if len(h.find("type", what, "outcome", "denied", "reason", "no session")) == 0 {
			t.Errorf("no %s record denied for no session", what)
		}
	}
	if h.runs() != 0 {
		t.Error("something ran without a session")
	}
}

// TestStrangerCountFlushedAtShutdown: what the rate limit left out of the
// log individually is still counted in it when relay stops.
func TestStrangerCountFlushedAtShutdown(t *testing.T) {
	h := newHarness(t, hopts{})
	var last int64
	for i := range unauthPerMinute + 7 {
		last, _ = h.api.SendMessage(stranger, fakebotapi.Private(stranger), fmt.Sprintf("/help %d", i))
	}
	h.handled(last)
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	recs := h.find("type", "unauthorized")
	if len(recs) != unauthPerMinute+1 {
		t.Fatalf("got %d unauthorized records, want %d and the count at shutdown", len(recs), unauthPerMinute)
	}
	if got := fmt.Sprint(recs[len(recs)-1]["count"]); got != "7" {
		t.Errorf("the shutdown record counts %s, want 7", got)
	}
}
