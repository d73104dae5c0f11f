package suggest

import (
	"strings"
	"testing"
)

func TestClosest(t *testing.T) {
	keys := []string{"timeout", "workdir", "argv", "env", "confirm", "reauth"}
	for _, tt := range []struct {
		in, want string
	}{
		{"timout", "timeout"},  // a dropped letter
		{"tiemout", "timeout"}, // a transposition costs one
		{"workdri", "workdir"},
		{"argc", "argv"},
		{"env", ""},          // already a candidate: no typo to fix
		{"colour", ""},       // nothing close
		{"x", ""},            // too short to guess from
		{"envv", "env"},      // one extra letter on a short word
		{"rnu", ""},          // not among these candidates
		{"ENV", ""},          // case is not folded: three substitutions
		{"réauth", "reauth"}, // runes, not bytes
	} {
		if got := Closest(tt.in, keys); got != tt.want {
			t.Errorf("Closest(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Closest("rnu", []string{"run", "exec", "audit"}); got != "run" {
		t.Errorf("Closest(rnu): got %q, want run", got)
	}
	if got := Closest("anything", nil); got != "" {
		t.Errorf("no candidates: got %q, want none", got)
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"kitten", "sitting", 3},
		{"ab", "ba", 1},
		{strings.Repeat("a", 65), "a", 65}, // not compared: the longer length
	} {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q): got %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
