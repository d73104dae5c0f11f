package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// TestRateLimitDoesNotDelayTheEffect is the scenario: a job runs,
// /status is answered with a 429 whose retry_after is long, then /lock.
// The session ends and the job dies while the /status answer is still
// held back, and /lock's own answer comes after it, in order.
func TestRateLimitDoesNotDelayTheEffect(t *testing.T) {
	for _, action := range []string{"/lock", "/kill j1", "/logout"} {
		t.Run(action, func(t *testing.T) {
			h := newHarness(t, hopts{commands: napCmd})
			h.login()
			h.startNap()
			h.api.RateLimit("sendMessage", 1, 100*time.Second)
			h.say("/status")
			h.say(action)
			switch action {
			case "/logout":
				if _, ok := h.d.auth.Session(ownerID); ok {
					t.Error("the session outlived /logout's handling")
				}
				h.say("/ps")
				if len(h.find("type", "request", "command", "ps", "outcome", "denied")) != 1 {
					t.Error("/ps after /logout was not refused")
				}
			default:
				// The job's processes are reaped before its record.
				h.waitFor("the job killed", func() bool { return len(h.find("type", "exec_end", "outcome", "killed")) == 1 })
				if action == "/lock" {
					if _, ok := h.d.auth.Session(ownerID); ok {
						t.Error("the session outlived /lock's handling")
					}
				}
			}
			if h.sent("jobs: 1 running") || h.sent("killing job") || h.sent("locked:") || h.sent("logged out") {
				t.Fatalf("a reply got through before the 429's retry_after: the check above proves nothing\n%s", h.transcript())
			}
		})
	}
}

// TestDeletionsDoNotWaitBehindReplies: a /login sent while the chat's
// replies are held back by a 429 is still deleted at once.
func TestDeletionsDoNotWaitBehindReplies(t *testing.T) {
	h := newHarness(t, hopts{})
	h.api.RateLimit("sendMessage", 1, 100*time.Second)
	h.say("/help") // its answer waits out the 429
	h.clk.Add(30 * time.Second)
	_, msg := h.say("/login " + code(t, h.clk.Now()))
	if err := h.api.WaitDeleted(ctxT(t), ownerID, msg); err != nil {
		t.Fatal(err)
	}
	if h.sent("Commands") {
		t.Fatal("the /help answer got through: the deletion did not have to overtake it")
	}
}

// TestRepliesKeepTheirOrder: what the update loop posts reaches the chat
// in the order of the updates, /audit's read included, though the read
// runs outside the loop.
func TestRepliesKeepTheirOrder(t *testing.T) {
	h := newHarness(t, hopts{})
	h.login()
	for _, text := range []string{"/audit 3", "/status", "/audit 1", "/ps", "/help"} {
		h.api.SendMessage(owner, ownerDM, text, fakebotapi.At(h.clk.Now()))
	}
	for _, want := range []string{"last 3 audit records", "jobs: 0 running", "last 1 audit records", "no jobs running", "Commands"} {
		h.expect(want) // expect only matches messages after the last one matched
	}
	if strings.Count(h.transcript(), "\n") != 6 {
		t.Errorf("got messages:\n%s", h.transcript())
	}
}
