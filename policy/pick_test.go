package policy

import (
	"errors"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// deviceConfig is a Home-Assistant-style policy: forgiving enums, an int
// small enough for buttons, declared choices, and a format.
const deviceConfig = `
state_dir: /tmp
audit: {dir: /tmp}
auth: {owner_id: 1}
commands:
  light:
    argv: [/usr/bin/mosquitto_pub, -t, "home/{room}/light/set", -m, "{state}"]
    params:
      - {name: room, type: enum, values: [kitchen, living_room, hall], fold_case: true, aliases: {living_room: [lounge, Wohnzimmer]}}
      - {name: state, type: enum, values: ["on", "off"], fold_case: true, aliases: {"on": [an, ein], "off": [aus]}}
  heat:
    argv: [/usr/bin/curl, -d, '{"temperature": {degrees}}']
    params:
      - {name: degrees, type: int, min: 16, max: 24}
  dim:
    argv: [/usr/bin/echo, "{level}", "{room}"]
    params:
      - {name: level, type: int, min: 0, max: 100, choices: [0, {value: 50, label: half}, 100]}
      - {name: room, type: string, pattern: "^[a-z]+$", max_len: 16}
  logs:
    argv: [/usr/bin/echo, "{unit}", "{lines}"]
    params:
      - {name: unit, type: enum, values: [nginx, caddy]}
      - {name: lines, type: int, min: 1, max: 1000, optional: true, default: 50}
  sensor:
    argv: [/usr/bin/echo, "{name}"]
    params:
      - {name: name, type: enum, values: [outdoor_temperature, power]}
    format: {jq: '.state + " " + .attributes.unit_of_measurement'}
  plain:
    argv: [/usr/bin/echo, "{v}"]
    params:
      - {name: v, type: enum, values: ["on", "off"]}
`

func deviceCommands(t testing.TB) *Config {
	t.Helper()
	cfg, err := Parse("devices.yaml", []byte(deviceConfig))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestForgivingEnumsBindTheCanonicalValue: a word in another case or an
// alias binds the value itself, which is what argv and the audit record
// (Invocation.Values) carry.
func TestForgivingEnumsBindTheCanonicalValue(t *testing.T) {
	cfg := deviceCommands(t)
	light := cfg.Lookup("light")
	for _, c := range []struct {
		args        []string
		room, state string
	}{
		{[]string{"kitchen", "on"}, "kitchen", "on"},
		{[]string{"Kitchen", "On"}, "kitchen", "on"},
		{[]string{"KITCHEN", "OFF"}, "kitchen", "off"},
		{[]string{"lounge", "ein"}, "living_room", "on"},
		{[]string{"wohnzimmer", "AUS"}, "living_room", "off"},
		{[]string{"Living_Room", "An"}, "living_room", "on"},
	} {
		inv, err := light.Bind(c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if got := []string{inv.Values[0].Value, inv.Values[1].Value}; got[0] != c.room || got[1] != c.state {
			t.Errorf("%q: got values %q, want %q and %q", c.args, got, c.room, c.state)
		}
		if want := "home/" + c.room + "/light/set"; inv.Argv[2] != want || inv.Argv[4] != c.state {
			t.Errorf("%q: got argv %q, want topic %s and payload %s", c.args, inv.Argv, want, c.state)
		}
	}
	// Without fold_case, a value in another case stays refused.
	if inv, err := cfg.Lookup("plain").Bind([]string{"On"}); err == nil {
		t.Errorf("got argv %q for On without fold_case, want a refusal", inv.Argv)
	}
	for _, bad := range [][]string{{"garage", "on"}, {"kitchen", "onn"}, {"kitchen", "o"}, {"lounge/../x", "on"}, {"kitchen", "ON\u202e"}} {
		if inv, err := light.Bind(bad); err == nil {
			t.Errorf("%q: got argv %q, want a refusal", bad, inv.Argv)
		}
	}
}

// TestFoldKeyMatchesEqualFold: the loader's collision check folds exactly
// as binding does.
func TestFoldKeyMatchesEqualFold(t *testing.T) {
	words := []string{"on", "On", "ON", "oN", "k", "K", "\u212a", "ß", "ẞ", "ss", "Σ", "σ", "ς", "é", "É", "i", "İ", "ı", "straße", "STRASSE"}
	for _, a := range words {
		for _, b := range words {
			if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("%q %q: foldKey equal %v, EqualFold %v", a, b, got, want)
			}
		}
	}
}

func TestNext(t *testing.T) {
	cfg := deviceCommands(t)
	labels := func(cs []Choice) string {
		var s []string
		for _, c := range cs {
			if c.Label == c.Value {
				s = append(s, c.Value)
			} else {
				s = append(s, c.Value+"="+c.Label)
			}
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		cmd      string
		words    []string
		param    string // "" when complete or refused
		choices  string
		complete bool
		err      string
	}{
		{"light", nil, "room", "kitchen living_room hall", false, ""},
		{"light", []string{"kitchen"}, "state", "on off", false, ""},
		{"light", []string{"Lounge"}, "state", "on off", false, ""}, // a typed alias counts
		{"light", []string{"kitchen", "on"}, "", "", true, ""},
		{"light", []string{"garage"}, "", "", false, `argument "room": "garage" is not one of kitchen|living_room|hall`},
		{"light", []string{"kitchen", "on", "now"}, "", "", false, "too many arguments"},
		{"heat", nil, "degrees", "16 17 18 19 20 21 22 23 24", false, ""},
		{"dim", nil, "level", "0 50=half 100", false, ""},
		{"dim", []string{"50"}, "room", "", false, "too few arguments: /dim needs at least 2, got 1"},
		{"logs", []string{"nginx"}, "", "", true, ""}, // the optional one takes its default, as typed
		{"logs", nil, "unit", "nginx caddy", false, ""},
		{"sensor", nil, "name", "outdoor_temperature power", false, ""},
	} {
		t.Run(c.cmd+"/"+strings.Join(c.words, "_"), func(t *testing.T) {
			p, choices, complete, err := cfg.Lookup(c.cmd).Next(c.words)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got error %v, want %q", err, c.err)
				}
				var ue *UsageError
				var ae *ArgError
				if !errors.As(err, &ue) && !errors.As(err, &ae) {
					t.Errorf("got %T, want the *UsageError or *ArgError Bind returns", err)
				}
				// The error Bind gives: for too many words the same call, for
				// a refused word the same words completed.
				words := c.words
				if errors.As(err, &ae) {
					words = append(slices.Clone(words), "kitchen", "on")[:len(cfg.Lookup(c.cmd).Params)]
				}
				if _, berr := cfg.Lookup(c.cmd).Bind(words); berr == nil || berr.Error() != err.Error() {
					t.Errorf("Next said %q, Bind of %q says %v", err, words, berr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if complete != c.complete {
				t.Fatalf("got complete %v, want %v", complete, c.complete)
			}
			if c.complete {
				if _, err := cfg.Lookup(c.cmd).Bind(c.words); err != nil {
					t.Errorf("complete, but Bind says %v", err)
				}
				return
			}
			if p == nil || p.Name != c.param || labels(choices) != c.choices {
				t.Errorf("got %v %q, want %s %q", p, labels(choices), c.param, c.choices)
			}
		})
	}
}

// TestPickingBindsAsTyping walks every path through every picker of the
// policy and requires that the words the presses collect bind exactly as
// the same command typed (with aliases and any case) binds.
func TestPickingBindsAsTyping(t *testing.T) {
	cfg := deviceCommands(t)
	for _, cmd := range cfg.Commands {
		var walk func(words []string)
		paths := 0
		walk = func(words []string) {
			_, choices, complete, err := cmd.Next(words)
			switch {
			case complete:
				paths++
				picked, err := cmd.Bind(words)
				if err != nil {
					t.Fatalf("/%s %q: complete but Bind says %v", cmd.Name, words, err)
				}
				typed, err := cmd.Bind(retyped(cmd, words))
				if err != nil {
					t.Fatalf("/%s %q typed: %v", cmd.Name, words, err)
				}
				if !slices.Equal(picked.Argv, typed.Argv) || !slices.Equal(picked.Values, typed.Values) {
					t.Errorf("/%s: picked %q, typed %q: got %q, want %q", cmd.Name, words, retyped(cmd, words), picked.Argv, typed.Argv)
				}
			case err != nil:
				return // no picker for a string: the owner types it
			default:
				for _, c := range choices {
					walk(append(slices.Clip(words), c.Value))
				}
			}
		}
		walk(nil)
		if cmd.Name != "dim" && paths == 0 {
			t.Errorf("/%s: no path through its pickers", cmd.Name)
		}
	}
}

// retyped writes words as a phone might: upper case where the parameter
// folds case, an alias where one exists.
func retyped(cmd *Command, words []string) []string {
	out := slices.Clone(words)
	for i, w := range words {
		p := cmd.Params[i]
		if a := p.Aliases[w]; len(a) > 0 {
			out[i] = a[len(a)-1]
		}
		if p.FoldCase {
			out[i] = strings.ToUpper(out[i])
		}
	}
	return out
}

func TestFormatLoaded(t *testing.T) {
	cfg := deviceCommands(t)
	prog, err := cfg.Lookup("sensor").Renderer()
	if err != nil || prog == nil {
		t.Fatalf("got %v, %v; want the compiled format", prog, err)
	}
	if prog.Spec().JQ != `.state + " " + .attributes.unit_of_measurement` {
		t.Errorf("got spec %+v", prog.Spec())
	}
	if prog, err := cfg.Lookup("light").Renderer(); prog != nil || err != nil {
		t.Errorf("got %v, %v for a command without a format, want nil, nil", prog, err)
	}
	// A Command assembled in code compiles on demand, and refuses as Load does.
	c := &Command{Name: "x", Argv: []string{"/bin/true"}, Format: &Format{JQ: "input"}}
	if _, err := c.Renderer(); err == nil {
		t.Error("a format reading input compiled; want a refusal")
	}
}

func TestNotifyConfig(t *testing.T) {
	base := "state_dir: /tmp\naudit: {dir: /tmp}\nauth: {owner_id: 1}\ncommand_user: \"64123:64123\"\ncommands: {up: {argv: [/usr/bin/true]}}\n"
	cfg, err := Parse("relay.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Notify.Group != "" || cfg.Notify.GID != -1 || cfg.Notify.Dir != DefaultNotifyDir {
		t.Errorf("got %+v, want notify off with the default dir", cfg.Notify)
	}
	cfg, err = Parse("relay.yaml", []byte(base+"notify: {group: \"64999\", dir: /run/ha-notify/}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Notify.GID != 64999 || cfg.Notify.Dir != "/run/ha-notify" {
		t.Errorf("got %+v, want gid 64999 in /run/ha-notify", cfg.Notify)
	}
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil || g.Gid == "0" {
		t.Skip("no named non-root group to look up")
	}
	cfg, err = Parse("relay.yaml", []byte(base+"notify: {group: "+g.Name+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Notify.GID != os.Getgid() || cfg.Notify.Group != g.Name {
		t.Errorf("got %+v, want group %s resolved to %d", cfg.Notify, g.Name, os.Getgid())
	}
}
