package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// prompt asks for /danger and returns the confirmation prompt.
func (h *harness) prompt() fakebotapi.Message {
	h.t.Helper()
	h.say("/danger")
	return h.expect("Run /danger?")
}

// press plays the owner pressing button n of m and returns the answer.
func (h *harness) press(who fakebotapi.User, m fakebotapi.Message, n int) string {
	h.t.Helper()
	qid, err := h.api.PressButtonAt(who, ownerID, m.ID, n)
	if err != nil {
		h.t.Fatalf("press %d: %v", n, err)
	}
	return h.answer(qid)
}

// forge plays a press of m's Run button with its data, whether or not the
// button is still there (a replay, an old client).
func (h *harness) forge(who fakebotapi.User, m fakebotapi.Message) string {
	h.t.Helper()
	qid := h.api.PressButton(who, ownerID, m.ID, m.Buttons[0][0].Data)
	if who.ID != ownerID {
		return ""
	}
	return h.answer(qid)
}

func (h *harness) answer(qid string) string {
	h.t.Helper()
	a, err := h.api.WaitCallbackAnswer(ctxT(h.t), qid)
	if err != nil {
		h.t.Fatalf("press never answered: %v", err)
	}
	return a.Text
}

// buttons is m's keyboard now.
func (h *harness) buttons(m fakebotapi.Message) [][]fakebotapi.Button {
	for _, s := range h.api.Sent() {
		if s.ID == m.ID {
			return s.Buttons
		}
	}
	return nil
}

// disabled waits until m's keyboard is one disabled button labelled with
// label.
func (h *harness) disabled(m fakebotapi.Message, label string) {
	h.t.Helper()
	h.waitFor("the prompt's buttons disabled with "+label, func() bool {
		b := h.buttons(m)
		return len(b) == 1 && len(b[0]) == 1 && b[0][0].Disabled && strings.Contains(b[0][0].Text, label)
	})
}

// TestConfirmLifecycle: a Run button runs once, for the owner in the
// session, within 60 s, and nothing else; every way the confirmation
// dies voids it and disables the prompt's buttons.
func TestConfirmLifecycle(t *testing.T) {
	t.Run("runs once", func(t *testing.T) {
		h := newHarness(t, hopts{commands: dangerCmd})
		h.login()
		p := h.prompt()
		if b := p.Buttons; len(b) != 1 || len(b[0]) != 2 || b[0][0].Text != "Run" || b[0][0].Style != "danger" || b[0][1].Style != "" {
			t.Fatalf("got buttons %+v, want Run (danger) and Cancel", b)
		}
		if got := h.press(owner, p, 1); got != "running" {
			t.Fatalf("got %q", got)
		}
		h.expect("confirmed")
		h.disabled(p, "Run")
		if got := h.forge(owner, p); !strings.Contains(got, "no longer valid") {
			t.Errorf("replayed press: got %q, want refused", got)
		}
		if h.runs() != 1 {
			t.Errorf("got %d runs, want 1", h.runs())
		}
	})
	t.Run("someone else's press", func(t *testing.T) {
		h := newHarness(t, hopts{commands: dangerCmd})
		h.login()
		p := h.prompt()
		h.forge(stranger, p)
		h.say("/ps")
		h.expect("no jobs running")
		if h.runs() != 0 || len(h.api.CallbackAnswers()) != 0 {
			t.Fatal("a stranger's press ran the command or was answered")
		}
		if got := h.press(owner, p, 1); got != "running" {
			t.Fatalf("the stranger's press spent the owner's button: got %q", got)
		}
		h.expect("confirmed")
	})
	t.Run("cancel", func(t *testing.T) {
		h := newHarness(t, hopts{commands: dangerCmd})
		h.login()
		p := h.prompt()
		if got := h.press(owner, p, 2); got != "cancelled" {
			t.Fatalf("got %q", got)
		}
		h.disabled(p, "Cancelled")
		if got := h.forge(owner, p); !strings.Contains(got, "no longer valid") {
			t.Errorf("Run after Cancel: got %q", got)
		}
		if h.runs() != 0 {
			t.Error("ran after Cancel")
		}
	})
	t.Run("stale", func(t *testing.T) {
		h := newHarness(t, hopts{commands: dangerCmd})
		h.login()
		p := h.prompt()
		h.clk.Add(60 * time.Second)
		if got := h.press(owner, p, 1); got != "confirmation expired" {
			t.Fatalf("got %q, want expired", got)
		}
		h.disabled(p, "expired")
		if h.runs() != 0 {
			t.Error("an expired confirmation ran")
		}
	})
	for _, void := range []struct {
		name  string
		do    func(h *harness)
		label string
		want  string // the answer to a forged press afterwards
	}{
		{"voided by a reload", func(h *harness) {
			if m := h.reload(h.o); !strings.Contains(m.Text, "1 pending confirmations voided") {
				h.t.Errorf("got %q, want the reload to say it voided the prompt", m.Text)
			}
		}, "void", "no longer valid"},
		{"voided by /logout", func(h *harness) { h.say("/logout") }, "session ended", "not logged in"},
		{"voided by /lock", func(h *harness) { h.say("/lock") }, "session ended", "not logged in"},
		{"voided by /cancel", func(h *harness) { h.say("/cancel"); h.expect("1 pending confirmations voided") }, "void", "no longer valid"},
		{"voided by a shutdown", func(h *harness) {
			h.restart()
			h.login()
		}, "void", "no longer valid"},
	} {
		t.Run(void.name, func(t *testing.T) {
			h := newHarness(t, hopts{commands: dangerCmd})
			h.login()
			p := h.prompt()
			void.do(h)
			h.disabled(p, void.label)
			if _, err := h.api.PressButtonAt(owner, ownerID, p.ID, 1); err == nil {
				t.Error("the voided prompt's Run button can still be pressed")
			}
			if got := h.forge(owner, p); !strings.Contains(got, void.want) {
				t.Errorf("forged press: got %q, want %q", got, void.want)
			}
			if h.runs() != 0 {
				t.Error("a voided confirmation ran")
			}
		})
	}
}
