package e2e

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/fakebotapi"
	"github.com/relaychat/relay/internal/picker"
)

const lightCmd = `  light:
    description: switch a light
    argv: [/bin/echo, "{room}", "{state}"]
    params:
      - {name: room, type: enum, values: [kitchen, hall], fold_case: true}
      - {name: state, type: enum, values: ["on", "off"], choices: [{value: "on", label: "💡 on"}, {value: "off", label: "off"}]}
    timeout: 10s
    workdir: /
`

// keyboardOn waits until the bot's message id shows a live keyboard whose
// first button is first, and returns the message.
func (r *relay) keyboardOn(id int, first string) fakebotapi.Message {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, s := range r.api.Sent() {
			if s.ID == id && len(s.Buttons) > 0 && s.Buttons[0][0].Text == first && !s.Buttons[0][0].Disabled {
				return s
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("message %d never showed a keyboard starting with %q:\n%s", id, first, r.transcript())
		}
		time.Sleep(2 * time.Millisecond) // the relay edits it by itself
	}
}

// answer presses data on message id, as the owner's client would send it
// whether or not the button is there, and returns the relay's answer.
func (r *relay) answer(id int, data string) string {
	r.t.Helper()
	qid := r.api.PressButton(owner, ownerID, id, data)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := r.api.WaitCallbackAnswer(ctx, qid)
	if err != nil {
		r.t.Fatalf("press never answered: %v", err)
	}
	return a.Text
}

// TestPickerThroughTheBinary: /light without arguments answers with
// buttons; pressing through binds and runs exactly as typing the same
// words does, with the same request record; replayed, forged and earlier
// sessions' presses are refused with a short answer and run nothing.
// (A keyboard's expiry is internal/picker's TestTakeExpiry and the
// daemon's TestPickerRefuses, on an injected clock.)
func TestPickerThroughTheBinary(t *testing.T) {
	r := startRelay(t, options{commands: lightCmd})
	r.login()
	r.say("/light")
	m := r.expect("/light … choose room")
	for _, row := range m.Buttons {
		for _, b := range row {
			if strings.Contains(b.Data, b.Text) {
				t.Errorf("button %q carries its value: %q", b.Text, b.Data)
			}
		}
	}
	used := m.Buttons[0][0].Data
	if _, err := r.api.PressButtonAt(owner, ownerID, m.ID, 1); err != nil {
		t.Fatal(err)
	}
	m = r.keyboardOn(m.ID, "💡 on")
	if _, err := r.api.PressButtonAt(owner, ownerID, m.ID, 2); err != nil {
		t.Fatal(err)
	}
	r.expect("kitchen off")
	r.say("/light Kitchen off")
	r.expect("kitchen off")

	var runs []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(r.auditText()), "\n") {
		var rec audit.Record
		must(t, json.Unmarshal([]byte(line), &rec))
		if rec.Type == "request" && rec.Outcome == "allowed" && rec.Command == "light" {
			runs = append(runs, rec)
		}
	}
	if len(runs) != 2 || !reflect.DeepEqual(runs[0].Argv, runs[1].Argv) || !reflect.DeepEqual(runs[0].Params, runs[1].Params) ||
		runs[0].Sandbox != runs[1].Sandbox || runs[0].Workdir != runs[1].Workdir {
		t.Fatalf("picked and typed runs recorded differently: %+v", runs)
	}

	before := strings.Count(r.auditText(), `"type":"exec_end"`)
	tok, _, _ := picker.ParseData(used)
	for name, c := range map[string]struct{ data, want string }{
		"a replayed press":       {used, picker.ErrUsed.Error()},
		"its other button":       {picker.Data(tok, 1), picker.ErrUsed.Error()},
		"a token never issued":   {picker.Data("AAAAAAAAAAAAAAAAAAAAAA", 0), picker.ErrUsed.Error()},
		"a value instead":        {"p:kitchen", "unknown button"},
		"a confirmation's shape": {"r:" + tok, "confirmation no longer valid"},
	} {
		if got := r.answer(m.ID, c.data); got != c.want {
			t.Errorf("%s: answered %q, want %q", name, got, c.want)
		}
	}

	r.say("/light hall")
	k := r.expect("/light hall … choose state")
	r.say("/logout")
	r.expect("logged out")
	r.say("/login " + code(t, time.Now().Add(30*time.Second)))
	r.expect("logged in")
	if got := r.answer(k.ID, k.Buttons[0][0].Data); got != picker.ErrUsed.Error() {
		t.Errorf("an earlier session's keyboard: answered %q", got)
	}
	if after := strings.Count(r.auditText(), `"type":"exec_end"`); after != before {
		t.Errorf("%d commands ran from refused presses", after-before)
	}
}

// BenchmarkPickerRound measures a picker round through the fake Bot API
// with the real binary: from the press becoming visible to the relay
// (returned by getUpdates) until the next keyboard is on the message,
// alternated in one loop with the same path minus the picker: a typed
// /light with a word the policy refuses, from its delivery to the
// one-line refusal. Run with:
//
//	go test -run '^$' -bench PickerRound -benchtime 200x ./e2e
func BenchmarkPickerRound(b *testing.B) {
	r := startRelay(b, options{commands: lightCmd})
	r.login()
	var round, plain []time.Duration
	for b.Loop() {
		shown, _ := r.api.SendMessage(owner, ownerDM, "/light")
		m := r.expect("/light … choose room")
		r.api.PressButton(owner, ownerID, m.ID, m.Buttons[0][0].Data)
		next := r.keyboardOn(m.ID, "💡 on")
		typed, _ := r.api.SendMessage(owner, ownerDM, "/light bogus")
		if typed != shown+2 {
			b.Fatalf("updates %d, ?, %d: the press was not the one in between", shown, typed)
		}
		pressed, ok := r.api.UpdateDelivered(shown + 1)
		if !ok || len(next.EditedAt) == 0 {
			b.Fatal("the press was never delivered, or the keyboard never edited")
		}
		round = append(round, next.EditedAt[len(next.EditedAt)-1].Sub(pressed))
		refused := r.expect(`argument "room"`)
		delivered, ok := r.api.UpdateDelivered(typed)
		if !ok {
			b.Fatal("the typed message was never delivered")
		}
		plain = append(plain, refused.Date.Sub(delivered))
	}
	mr, mp := median(round), median(plain)
	b.ReportMetric(float64(mr.Microseconds())/1000, "picker-round-ms")
	b.ReportMetric(float64(mp.Microseconds())/1000, "typed-refusal-ms")
	b.ReportMetric(float64((mr-mp).Microseconds())/1000, "picker-extra-ms")
}
