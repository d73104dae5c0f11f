package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// readFloor is the update_id in the floor file.
func (h *harness) readFloor() int64 {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(h.dir, "state", FloorFile))
	if err != nil {
		h.t.Fatal(err)
	}
	var j floorJSON
	if err := json.Unmarshal(data, &j); err != nil {
		h.t.Fatal(err)
	}
	return j.UpdateID
}

// redeliver queues the owner's text again under an update_id already
// used, as Telegram does for an update whose offset it never saw
// confirmed, freshly dated so that only the floor can catch it. Only a
// new daemon's first poll takes it: a running one's poll offset is past
// it.
func (h *harness) redeliver(id int64, text string) {
	h.t.Helper()
	raw := strings.Replace(h.ownerMessage(text, ""), `{"message"`, fmt.Sprintf(`{"update_id":%d,"message"`, id), 1)
	if _, err := h.api.PushRawUpdate([]byte(raw)); err != nil {
		h.t.Fatal(err)
	}
	// The fake queues a raw update under a slot ID of its own; an update
	// behind it moves the poll offset past that slot.
	h.api.SendMessage(owner, ownerDM, "/status", fakebotapi.At(h.clk.Now()))
}

// TestUpdateFloorAcrossRestart: an update handled before a restart is
// never handled again after it, however fresh its date: the floor is on
// disk before the update has any effect.
func TestUpdateFloorAcrossRestart(t *testing.T) {
	h := newHarness(t, hopts{})
	h.login()
	id, _ := h.say("/echo once")
	h.expect("once")
	if got := h.readFloor(); got < id {
		t.Fatalf("floor on disk %d after handling %d: not persisted before the effect", got, id)
	}
	if fi, err := os.Stat(filepath.Join(h.dir, "state", FloorFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("floor file: %v, mode %v, want 0600", err, fi.Mode())
	}
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	h.redeliver(id, "/help")
	h.start()
	h.expect("jobs:")
	if h.sent("Commands") {
		t.Error("the redelivered /help was answered")
	}
	if len(h.find("type", "update", "outcome", "ignored", "reason", "already handled before a restart (update_id at or below the floor)")) != 1 {
		t.Error("the redelivered update is not audited as such")
	}

	// A day later the floor no longer holds: Telegram keeps nothing that
	// long, and may have restarted its numbering.
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	h.clk.Add(25 * time.Hour)
	h.redeliver(id, "/help")
	h.start()
	h.expect("Commands")
}

func TestCorruptFloorRefusesToStart(t *testing.T) {
	h := newHarness(t, hopts{})
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(h.dir, "state", FloorFile)
	if err := os.WriteFile(path, []byte(`{"version":1,"update_id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadFloor(filepath.Join(h.dir, "state"), h.clk.Now); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("got %v, want a corrupt floor refused", err)
	}
}

// TestStopButton: a running job's progress is a draft whose stop button,
// pressed by the owner in the session, kills it exactly as /kill does;
// without a session it kills nothing.
func TestStopButton(t *testing.T) {
	h := newHarness(t, hopts{commands: napCmd})
	h.login()
	h.startNap()
	h.say("/logout")
	h.expect("logged out") // a message ends the live draft; wait for the next
	d := h.liveDraft(func(d fakebotapi.Draft) bool {
		return d.ChatID == ownerID && d.CanStop && strings.Contains(d.Text, "/nap ⏳ running")
	})
	id, err := h.api.StopDraft(ownerID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.handled(id)
	h.expect("not logged in")
	if len(h.d.runner.Jobs()) != 1 {
		t.Fatal("a stop without a session killed the job")
	}
	// The refused stop ended that draft on the phone; the progress goes on
	// in a new one.
	h.login()
	d = h.liveDraft(func(x fakebotapi.Draft) bool { return x.ID != d.ID && x.CanStop })
	id, err = h.api.StopDraft(ownerID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.handled(id)
	h.expectAll("killing job j1", "/nap · killed")
	if len(h.find("type", "kill", "outcome", "ok", "detail", "stop button", "job", "j1")) != 1 {
		t.Error("the stop is not audited as a kill")
	}
}

// TestProgressWithoutDrafts: a server that predates drafts gets today's
// edited progress message, which becomes the result.
func TestProgressWithoutDrafts(t *testing.T) {
	h := newHarness(t, hopts{commands: napCmd, fake: []fakebotapi.Option{fakebotapi.Without(fakebotapi.FeatureDrafts)}})
	h.login()
	h.startNap()
	p := h.expect("/nap ⏳ running")
	h.say("/kill j1")
	m, err := h.api.WaitMessage(ctxT(t), func(m fakebotapi.Message) bool { return m.ID == p.ID && strings.Contains(m.Text, "killed") })
	if err != nil {
		t.Fatalf("the progress message never became the result: %v\n%s", err, h.transcript())
	}
	if len(m.Edits) == 0 {
		t.Error("the progress message was never edited")
	}
}

// liveDraft waits for a live draft that pred accepts. The job's elapsed
// time is on the daemon's clock, which moves here, so that each progress
// update differs from the last.
func (h *harness) liveDraft(pred func(fakebotapi.Draft) bool) fakebotapi.Draft {
	h.t.Helper()
	var got fakebotapi.Draft
	h.waitFor("a live draft", func() bool {
		h.clk.Add(100 * time.Millisecond)
		for _, d := range h.api.Drafts() {
			if d.State == fakebotapi.DraftLive && pred(d) {
				got = d
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
		return false
	})
	return got
}

// expectAll waits for new messages containing each of wants, in any
// order.
func (h *harness) expectAll(wants ...string) {
	h.t.Helper()
	seen := h.seen
	for _, want := range wants {
		m, err := h.api.WaitMessage(ctxT(h.t), func(m fakebotapi.Message) bool {
			return m.ChatID == ownerID && m.ID > seen && strings.Contains(m.Text, want)
		})
		if err != nil {
			h.t.Fatalf("no message containing %q: %v\n%s", want, err, h.transcript())
		}
		h.seen = max(h.seen, m.ID)
	}
}
