package daemon

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
	"github.com/relaychat/relay/internal/picker"
)

const lightCmd = `  light:
    description: switch a light
    argv: [/bin/echo, "{room}", "{state}"]
    params:
      - {name: room, type: enum, values: [kitchen, hall], fold_case: true, description: the room}
      - {name: state, type: enum, values: ["on", "off"], choices: [{value: "on", label: "💡 on"}, {value: "off", label: "off"}]}
    timeout: 10s
    sandbox: none
`

const doorCmd = `  door:
    description: open a door, after a fresh code and a confirmation
    argv: [/bin/echo, opened, "{door}"]
    params:
      - {name: door, type: enum, values: [front, back]}
    timeout: 10s
    reauth: true
    confirm: true
    sandbox: none
`

// keyboard waits for the bot's message m to show a keyboard whose first
// label is first, and returns it.
func (h *harness) keyboard(m fakebotapi.Message, first string) fakebotapi.Message {
	h.t.Helper()
	var now fakebotapi.Message
	h.waitFor("a keyboard starting with "+first, func() bool {
		for _, s := range h.api.Sent() {
			if s.ID == m.ID && len(s.Buttons) > 0 && s.Buttons[0][0].Text == first && !s.Buttons[0][0].Disabled {
				now = s
				return true
			}
		}
		return false
	})
	return now
}

func labels(m fakebotapi.Message) []string {
	var out []string
	for _, row := range m.Buttons {
		for _, b := range row {
			out = append(out, b.Text)
		}
	}
	return out
}

// TestPickerBindsAsTyping: /light without arguments asks for each
// parameter with buttons that carry no value, and the last press runs
// exactly what typing the same words runs: the same argv, parameters and
// records.
func TestPickerBindsAsTyping(t *testing.T) {
	h := newHarness(t, hopts{commands: lightCmd})
	h.login()
	h.say("/light")
	m := h.expect("/light … choose room: the room")
	if got := labels(m); !reflect.DeepEqual(got, []string{"kitchen", "hall"}) {
		t.Fatalf("got buttons %v, want kitchen, hall", got)
	}
	for _, row := range m.Buttons {
		for _, b := range row {
			if _, _, ok := picker.ParseData(b.Data); !ok || strings.Contains(b.Data, b.Text) {
				t.Errorf("button %q carries %q, want a token and a number, never the value", b.Text, b.Data)
			}
		}
	}
	if got := h.press(owner, m, 1); got != "" {
		t.Errorf("the first press answered %q, want a bare answer", got)
	}
	m = h.keyboard(m, "💡 on")
	if !strings.Contains(m.Text, "/light kitchen … choose state") || !reflect.DeepEqual(labels(m), []string{"💡 on", "off"}) {
		t.Fatalf("got %q %v, want the state's choices on the same message", m.Text, labels(m))
	}
	if got := h.press(owner, m, 1); got != "💡 on" {
		t.Errorf("the last press answered %q", got)
	}
	h.expect("kitchen on")
	h.disabled(m, "✓ /light kitchen on")

	h.say("/light Kitchen on")
	h.expect("kitchen on")
	runs := h.find("type", "request", "outcome", "allowed", "command", "light")
	if len(runs) != 2 {
		t.Fatalf("%d runs recorded, want 2", len(runs))
	}
	for _, k := range []string{"argv", "params", "workdir", "sandbox"} {
		if !reflect.DeepEqual(runs[0][k], runs[1][k]) {
			t.Errorf("%s: picked %v, typed %v", k, runs[0][k], runs[1][k])
		}
	}
	if p := runs[0]["params"].(map[string]any); p["room"] != "kitchen" || p["state"] != "on" {
		t.Errorf("picked params %v", p)
	}
	// Typing part of it asks for the rest only.
	h.say("/light hall")
	h.expect("/light hall … choose state")
}

// TestPickerRefuses: a replayed press, forged button data, a press after
// the keyboard's two minutes, one from a session since ended and one
// without a session: each is refused with a short answer, and nothing
// runs.
func TestPickerRefuses(t *testing.T) {
	h := newHarness(t, hopts{commands: lightCmd})
	h.login()
	show := func() fakebotapi.Message {
		h.t.Helper()
		h.say("/light kitchen")
		return h.expect("/light kitchen … choose state")
	}
	forge := func(m fakebotapi.Message, data string) string {
		t.Helper()
		return h.answer(h.api.PressButton(owner, ownerID, m.ID, data))
	}

	m := show()
	data := m.Buttons[0][0].Data
	h.press(owner, m, 2)
	h.expect("kitchen off")
	before := h.runs()
	tok, _, _ := picker.ParseData(data)
	for name, c := range map[string]struct{ data, want string }{
		"the same press again":       {data, picker.ErrUsed.Error()},
		"the other button, replayed": {picker.Data(tok, 0), picker.ErrUsed.Error()},
		"a token never issued":       {picker.Data(strings.Repeat("A", 22), 0), picker.ErrUsed.Error()},
		"not picker data":            {"p:../../etc", "unknown button"},
		"a value as data":            {"p:on", "unknown button"},
	} {
		if got := forge(m, c.data); got != c.want {
			t.Errorf("%s: answered %q, want %q", name, got, c.want)
		}
	}

	m = show()
	tok, _, _ = picker.ParseData(m.Buttons[0][0].Data)
	if got := forge(m, picker.Data(tok, 7)); got != "unknown button" {
		t.Errorf("a button the keyboard does not have: answered %q", got)
	}
	h.disabled(m, "✗ void")

	m = show()
	h.clk.Add(2 * time.Minute)
	if got := h.press(owner, m, 1); got != picker.ErrExpired.Error() {
		t.Errorf("after two minutes: answered %q", got)
	}
	h.disabled(m, "✗ expired")

	m = show()
	h.say("/logout")
	h.expect("logged out")
	if got := h.press(owner, m, 1); !strings.Contains(got, "not logged in") {
		t.Errorf("without a session: answered %q", got)
	}
	h.disabled(m, "✗ void: the session ended")
	h.login()
	if got := forge(m, m.Buttons[0][0].Data); got != picker.ErrUsed.Error() {
		t.Errorf("an earlier session's keyboard: answered %q", got)
	}

	if h.runs() != before {
		t.Errorf("%d commands ran from refused presses", h.runs()-before)
	}
	if n := len(h.find("type", "request", "outcome", "denied")); n < 8 {
		t.Errorf("%d refused presses audited, want every one", n)
	}
}

// TestPickerFollowsTheReloadedPolicy: a press after a reload binds
// against the command as the policy has it now.
func TestPickerFollowsTheReloadedPolicy(t *testing.T) {
	o := hopts{commands: lightCmd}
	h := newHarness(t, o)
	h.login()
	h.say("/light")
	m := h.expect("choose room")
	o.commands = strings.Replace(lightCmd, "values: [kitchen, hall]", "values: [hall]", 1)
	h.reload(o)
	h.press(owner, m, 1)
	h.expect(`argument "room"`)
	h.disabled(m, "✗ kitchen")

	h.say("/light")
	m = h.expect("choose room")
	h.reload(hopts{commands: echoCmd})
	h.press(owner, m, 1)
	h.expect("/light is no longer in the policy")
	if h.runs() != 0 {
		t.Error("a press ran what the new policy refuses")
	}
}

// TestPickerWithReauthAndConfirm: the step-up code comes with the
// command, before any keyboard; the last press leads to the same Run
// button as typing.
func TestPickerWithReauthAndConfirm(t *testing.T) {
	h := newHarness(t, hopts{commands: doorCmd})
	h.login()
	h.say("/door")
	h.expect("needs a fresh TOTP code first")
	h.clk.Add(30 * time.Second)
	h.say("/door " + code(t, h.clk.Now()))
	m := h.expect("/door … choose door")
	h.press(owner, m, 2)
	p := h.expect("Run /door?")
	if !strings.Contains(p.Text, "opened back") {
		t.Errorf("the prompt shows %q", p.Text)
	}
	if h.runs() != 0 {
		t.Fatal("ran before its Run button")
	}
	h.press(owner, p, 1)
	h.expect("opened back")
}
