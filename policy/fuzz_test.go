package policy

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// quoteWord writes w so that SplitArgs reads it back as one word.
func quoteWord(w string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "“", `\“`, "”", `\”`).Replace(w) + `"`
}

func FuzzSplitArgs(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitArgs(s)
		if err != nil {
			var se *SplitError
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		total := 0
		for _, w := range words {
			total += len(w)
			if strings.ContainsRune(w, '\t') || badText(w) != "" {
				t.Fatalf("word %q contains a refused character", w)
			}
		}
		if total > len(s) {
			t.Fatalf("words total %d bytes from %d bytes of input", total, len(s))
		}
		// Plain text splits exactly like fields on spaces and tabs.
		if !strings.ContainsAny(s, "\"“”") {
			if want := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' }); strings.Join(words, "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("got %q, want fields %q", words, want)
			}
		}
		// Quoting each word reads back the same words.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = quoteWord(w)
		}
		back, err := SplitArgs(strings.Join(quoted, " "))
		if err == nil && strings.Join(back, "\x00") != strings.Join(words, "\x00") {
			t.Fatalf("round trip: got %q, want %q", back, words)
		}
	})
}

// FuzzBind binds arbitrary arguments to every command of bindConfig and
// checks the invariant: argv keeps the template's shape and every value
// satisfies its type. args are separated by \x1f in the input, so the
// fuzzer reaches spaces and quotes too; the input is also split as chat
// text.
func FuzzBind(f *testing.F) {
	_, cfg := bindTree(f)
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		cmd := cfg.Commands[int(which)%len(cfg.Commands)]
		try := func(args []string) {
			inv, err := cmd.Bind(args)
			if err != nil {
				var ue *UsageError
				var ae *ArgError
				if !errors.As(err, &ue) && !errors.As(err, &ae) {
					t.Fatalf("error of type %T: %v", err, err)
				}
				if strings.ContainsAny(err.Error(), "\x00\n\r\u202e") || len(err.Error()) > 600 {
					t.Fatalf("unsafe error %q", err.Error())
				}
				return
			}
			checkInvocation(t, cmd, inv)
		}
		var args []string
		if raw != "" {
			args = strings.Split(raw, "\x1f")
		}
		try(args)
		if words, err := SplitArgs(raw); err == nil {
			try(words)
		}
	})
}

// FuzzNext holds a picker to binding: words Next accepts bind as typed,
// every button it offers is accepted at its place, and what it refuses
// Bind refuses. The words come from the chat (typed) or a button press.
func FuzzNext(f *testing.F) {
	cfg := deviceCommands(f)
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		cmd := cfg.Commands[int(which)%len(cfg.Commands)]
		var words []string
		if raw != "" {
			words = strings.Split(raw, "\x1f")
		}
		p, choices, complete, err := cmd.Next(words)
		var ue *UsageError
		var ae *ArgError
		switch {
		case err != nil:
			if !errors.As(err, &ue) && !errors.As(err, &ae) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if _, berr := cmd.Bind(words); berr == nil {
				t.Fatalf("Next refused %q (%v), Bind accepts it", words, err)
			}
			if ue != nil && len(words) < len(cmd.Params) && p == nil {
				t.Fatalf("too few words %q but no parameter named", words)
			}
		case complete:
			inv, berr := cmd.Bind(words)
			if berr != nil {
				t.Fatalf("Next said %q is complete, Bind says %v", words, berr)
			}
			checkInvocation(t, cmd, inv)
		default:
			if p != cmd.Params[len(words)] || len(choices) == 0 || len(choices) > MaxChoices {
				t.Fatalf("got parameter %v with %d choices after %q", p, len(choices), words)
			}
			for _, c := range choices {
				if _, _, _, err := cmd.Next(append(slices.Clip(words), c.Value)); errors.As(err, &ae) {
					t.Fatalf("button %q after %q is refused: %v", c.Value, words, err)
				}
			}
		}
	})
}

// FuzzParse: any file either loads (and then every command binds or
// refuses cleanly) or yields positioned errors; it never panics.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list *ErrorList
			if errors.As(err, &list) && len(*list) == 0 {
				t.Fatal("empty error list")
			}
			return
		}
		for _, c := range cfg.Commands {
			if inv, err := c.Bind(nil); err == nil {
				checkInvocation(t, c, inv)
			}
		}
		Warnings(cfg)
	})
}

func TestFuzzSeedsPresent(t *testing.T) {
	for _, name := range []string{"FuzzSplitArgs", "FuzzBind", "FuzzParse", "FuzzNext"} {
		ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
		if err != nil || len(ents) == 0 {
			t.Errorf("seed corpus for %s is empty: %v", name, err)
		}
	}
}

// setUpDir is where the examples keep what the owner creates while setting
// up (the Home Assistant token header). Tests load them with that
// directory made in a temp dir, so that they load on a host without it.
const setUpDir = "/var/lib/relay-ha"

// exampleWithSetUp returns an example with setUpDir replaced by a temp
// dir holding every file the example declares there.
func exampleWithSetUp(t *testing.T, f string) []byte {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "relay-ha")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(setUpDir)+`/([A-Za-z0-9._-]+)`).FindAllStringSubmatch(string(data), -1) {
		if err := os.WriteFile(filepath.Join(dir, m[1]), []byte("Authorization: Bearer example\n"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	return []byte(strings.ReplaceAll(string(data), setUpDir, dir))
}

// TestExamples loads every example policy shipped in policy/examples.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("examples", "*.yaml"))
	if len(files) == 0 {
		t.Skip("no example policies in policy/examples yet")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Parse(f, exampleWithSetUp(t, f))
			if err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
			if len(cfg.Commands) == 0 {
				t.Error("example allows no commands")
			}
			for _, w := range Warnings(cfg) {
				t.Logf("%s", w)
			}
		})
	}
}
