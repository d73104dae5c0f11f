package picker

import (
	"testing"
	"time"

	"github.com/relaychat/relay/policy"
)

const benchPolicy = `
state_dir: /tmp
audit: {dir: /tmp}
auth: {owner_id: 1}
commands:
  light:
    argv: [/usr/bin/mosquitto_pub, -t, "home/{room}/light/set", -m, "{state}"]
    params:
      - {name: room, type: enum, values: [kitchen, living_room, bedroom, hall], fold_case: true, aliases: {living_room: [lounge]}}
      - {name: state, type: enum, values: ["on", "off"], fold_case: true}
`

// sink keeps the buttons' data from being optimised away.
var sink string

type round struct {
	command string
	words   []string
	choices []policy.Choice
}

// BenchmarkPickerRound is the relay's own work for one press of a picker
// (the target is ≤ 5 ms, measured end to end through the fake Bot
// API once the daemon is wired): read the button's data, redeem its
// token, append the chosen value, ask the command what comes next, and
// keep the state of the next keyboard, with its buttons' data.
func BenchmarkPickerRound(b *testing.B) {
	cfg, err := policy.Parse("bench.yaml", []byte(benchPolicy))
	if err != nil {
		b.Fatal(err)
	}
	cmd := cfg.Lookup("light")
	tb := New[round](time.Now, DefaultTTL, DefaultMax)
	_, choices, _, err := cmd.Next(nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := tb.Put(1, round{command: "light", choices: choices})
	data := Data(tok, 1)
	for b.Loop() {
		t, i, ok := ParseData(data)
		if !ok {
			b.Fatal("bad data")
		}
		st, err := tb.Take(1, t)
		if err != nil {
			b.Fatal(err)
		}
		words := append(st.words, st.choices[i].Value)
		_, next, complete, err := cmd.Next(words)
		if err != nil || complete {
			b.Fatal(err, complete)
		}
		// The next keyboard; to keep the loop going, it offers the rooms
		// again.
		tok, err := tb.Put(1, round{command: st.command, choices: choices})
		if err != nil {
			b.Fatal(err)
		}
		for j := range next {
			sink = Data(tok, j)
		}
		data = Data(tok, 1)
	}
}
