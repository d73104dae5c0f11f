package chatfmt

import (
	"os/exec"
	"testing"
)

// quoteCases is the one table for argv quoting shown in the chat and by
// relay policy check (policy's Summary calls QuoteArgv).
var quoteCases = []struct{ in, want string }{
	{"plain", "plain"},
	{"/usr/bin/echo", "/usr/bin/echo"},
	{"", "''"},
	{"two words", "'two words'"},
	{"it's", `'it'\''s'`},
	{`say "hi"`, `'say "hi"'`},
	{`back\slash`, `'back\slash'`},
	{"$HOME", "'$HOME'"},
	{"a;rm -rf /", "'a;rm -rf /'"},
	{"*.log", "'*.log'"},
	// Invisible characters are shown escaped, never raw: a newline would
	// split the line, a bidi override would reorder what the owner reads.
	{"line\nbreak", `$'line\nbreak'`},
	{"tab\there", `$'tab\there'`},
	{"evil\u202egnp.exe", `$'evil\u202egnp.exe'`},
	{"it's\n", `$'it\'s\n'`},
	{"\x1b[31mred", `$'\x1b[31mred'`},
}

func TestQuoteArg(t *testing.T) {
	for _, tc := range quoteCases {
		t.Run(tc.in, func(t *testing.T) {
			if got := QuoteArg(tc.in); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestQuoteArgIsOneShellWord: what QuoteArg shows is, read back by bash,
// exactly the argument: the display is the argv that runs.
func TestQuoteArgIsOneShellWord(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, tc := range quoteCases {
		out, err := exec.Command(bash, "-c", `printf '%s' `+QuoteArg(tc.in)).Output()
		if err != nil || string(out) != tc.in {
			t.Errorf("%q: bash read %s back as %q (%v)", tc.in, QuoteArg(tc.in), out, err)
		}
	}
}
