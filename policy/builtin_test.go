package policy

import (
	"fmt"
	"strings"
	"testing"
)

// TestReservedAreTheBuiltins: a policy may not take any built-in's name,
// hidden aliases included, and nothing else is reserved.
func TestReservedAreTheBuiltins(t *testing.T) {
	if len(Reserved) != len(Builtins) {
		t.Fatalf("got %d reserved names for %d built-ins", len(Reserved), len(Builtins))
	}
	for _, b := range Builtins {
		src := fmt.Sprintf("auth: {owner_id: 1}\ncommands:\n  %s:\n    argv: [/usr/bin/true]\n", b.Name)
		_, err := Parse("r.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("/%s: got %v, want the name refused as reserved", b.Name, err)
		}
	}
	if _, err := Parse("r.yaml", []byte("auth: {owner_id: 1}\ncommands:\n  helper:\n    argv: [/usr/bin/true]\n")); err != nil {
		t.Errorf("a name that only starts like a built-in: %v", err)
	}
}

func manyCommands(t *testing.T, n int) *Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("auth: {owner_id: 1}\n")
	if n > 0 {
		b.WriteString("commands:\n")
	}
	for i := range n {
		fmt.Fprintf(&b, "  c%03d:\n    argv: [/usr/bin/true]\n", i)
	}
	cfg, err := Parse("many.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestMenuFitsTelegram: the menu never passes Telegram's 100, the
// built-ins are always in it, and what is left out is said, at the line
// of the first command left out.
func TestMenuFitsTelegram(t *testing.T) {
	visible := 0
	for _, b := range Builtins {
		if b.Listed(&Config{}) {
			visible++
		}
	}
	for _, n := range []int{0, 1, MaxMenu - visible, MaxMenu - visible + 1, 150} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cfg := manyCommands(t, n)
			menu, omitted := cfg.Menu()
			if len(menu) > MaxMenu {
				t.Fatalf("got %d menu entries, want at most %d", len(menu), MaxMenu)
			}
			if got, want := len(menu)+len(omitted), n+visible; got != want {
				t.Errorf("menu %d + omitted %d = %d, want every command and built-in accounted for (%d)", len(menu), len(omitted), got, want)
			}
			if last := menu[len(menu)-1].Name; last != "help" {
				t.Errorf("menu ends with /%s, want the built-ins last", last)
			}
			w, ok := MenuWarning(cfg)
			if ok != (len(omitted) > 0) {
				t.Fatalf("warning %v with %d omitted", ok, len(omitted))
			}
			if !ok {
				return
			}
			if w.Line != omitted[0].Line || !strings.Contains(w.Msg, "/"+omitted[0].Name) || !strings.Contains(w.Msg, fmt.Sprint(len(omitted))) {
				t.Errorf("got %s, want the count and /%s at line %d", w, omitted[0].Name, omitted[0].Line)
			}
			found := false
			for _, x := range Warnings(cfg) {
				found = found || x == w
			}
			if !found {
				t.Error("Warnings (policy check) does not include the menu warning")
			}
		})
	}
}

func TestProtectContentKey(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte("auth: {owner_id: 1}\ntelegram: {protect_content: true}\n"))
	if err != nil || !cfg.Telegram.ProtectContent {
		t.Fatalf("got %v, %v, want protect_content on", err, cfg)
	}
	cfg, err = Parse("p.yaml", []byte("auth: {owner_id: 1}\n"))
	if err != nil || cfg.Telegram.ProtectContent {
		t.Fatalf("got %v, %v, want protect_content off by default", err, cfg)
	}
	_, err = Parse("p.yaml", []byte("auth: {owner_id: 1}\ntelegram:\n  protect_content: yes please\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:3:20") {
		t.Errorf("got %v, want a type error at p.yaml:3:20", err)
	}
}
