package manual

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/cli"
	"github.com/relaychat/relay/policy"
)

const root = "../.."

// TestGeneratedUpToDate: the committed man pages, completions and
// reference sections are exactly what the sources render, so that editing
// a usage text or a key without go generate fails here.
func TestGeneratedUpToDate(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join(root, "docs/reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Outputs(string(ref))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range out {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./internal/manual)", p, err)
			continue
		}
		if string(got) != want {
			t.Errorf("%s is stale: run go generate ./internal/manual", p)
		}
	}
}

// TestSpliceNeedsMarkers: a reference without its markers is an error,
// never a silently unchanged file.
func TestSpliceNeedsMarkers(t *testing.T) {
	if _, err := Splice("# Reference\nno markers here\n", Markdown()); err == nil {
		t.Error("got no error for a reference without markers")
	}
	begin, end := Marker("config")
	got, err := Splice("a\n"+begin+"\nold text\n"+end+"\nb\n", map[string]string{"config": "new\n"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n" + begin + "\nnew\n" + end + "\nb\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// yamlFor builds a config that sets the dotted key (under a command when
// cmd) to value.
func yamlFor(key, value string, cmd bool) string {
	parts := strings.Split(key, ".")
	var b strings.Builder
	b.WriteString("auth:\n  owner_id: 1\n")
	indent := ""
	if cmd {
		b.WriteString("commands:\n  probe:\n    argv: [/bin/true]\n")
		indent = "    "
	}
	for i, p := range parts {
		if i == 0 && !cmd && p == "auth" {
			// auth is already open above; continue inside it.
			indent = "  "
			continue
		}
		if i == len(parts)-1 {
			b.WriteString(indent + p + ": " + value + "\n")
			break
		}
		b.WriteString(indent + p + ":\n")
		indent += "  "
	}
	return b.String()
}

// TestDocumentedKeysAreReal: every key the manual documents is one the
// loader knows. The value is deliberately odd; only "unknown key" counts.
func TestDocumentedKeysAreReal(t *testing.T) {
	check := func(k Key, cmd bool) {
		if k.Name == "sandbox" || strings.HasSuffix(k.Name, "params") {
			return // a mapping or a list of mappings, checked through its children
		}
		src := yamlFor(k.Name, `"x"`, cmd)
		_, err := policy.Parse("probe.yaml", []byte(src))
		if err != nil && strings.Contains(err.Error(), "unknown key") {
			t.Errorf("documented key %s is unknown to the loader:\n%s\n%v", k.Name, src, err)
		}
	}
	for _, k := range Settings {
		check(k, false)
	}
	for _, k := range CommandKeys {
		check(k, true)
	}
	for _, k := range FleetKeys {
		if name, ok := strings.CutPrefix(k.Name, "commands.NAME."); ok {
			check(Key{Name: name}, true)
		} else if !strings.HasSuffix(k.Name, ".NAME") {
			check(k, false)
		}
	}
	// The check can fail: a key the loader does not know.
	if _, err := policy.Parse("probe.yaml", []byte(yamlFor("limits.max_jobz", "1", false))); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("got %v for an unknown key, want an unknown-key error", err)
	}
}

// loaderKeys reads policy/load.go and returns every key name its decoder
// tables accept: the string of each {"name", func(v *yaml.Node) ...} entry.
func loaderKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for _, file := range []string{"policy/load.go", "policy/fleet.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, file), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok || len(cl.Elts) != 2 {
				return true
			}
			lit, ok := cl.Elts[0].(*ast.BasicLit)
			if _, fn := cl.Elts[1].(*ast.FuncLit); !ok || !fn || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil {
				keys = append(keys, s)
			}
			return true
		})
	}
	return keys
}

// TestLoaderKeysDocumented: every key the loader accepts is documented,
// so a new knob cannot ship without its row in relay.yaml(5).
func TestLoaderKeysDocumented(t *testing.T) {
	keys := loaderKeys(t)
	if len(keys) < 40 {
		t.Fatalf("found %d keys in policy/load.go, want the decoder's tables (did its shape change?)", len(keys))
	}
	documented := map[string]bool{}
	for _, k := range slices.Concat(Settings, CommandKeys, FleetKeys) {
		parts := strings.Split(k.Name, ".")
		for _, p := range parts {
			documented[p] = true
		}
	}
	// The parameter fields are listed in the params row.
	for _, p := range []string{"name", "type", "description", "values", "min", "max", "pattern", "max_len", "root", "optional", "default", "allow_dash", "fold_case", "aliases", "choices", "value", "label"} {
		documented[p] = true
	}
	documented["commands"] = true
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("the policy loader accepts %q, which internal/manual does not document", k)
		}
	}
}

// TestEveryCommandInTheManual: relay(1) has a section for every command
// the CLI dispatches, with its whole usage.
func TestEveryCommandInTheManual(t *testing.T) {
	page := Relay1()
	for _, c := range cli.Commands() {
		if !strings.Contains(page, ".SS "+c.Name+"\n") {
			t.Errorf("relay(1) has no section for %s", c.Name)
		}
	}
	for _, e := range cli.ExitCodes() {
		if !strings.Contains(page, ".B "+strconv.Itoa(e.Code)+"\n") {
			t.Errorf("relay(1) lacks exit code %d", e.Code)
		}
	}
}

// TestManPagesRender: groff reads both pages without a warning.
func TestManPagesRender(t *testing.T) {
	if _, err := osexec.LookPath("groff"); err != nil {
		t.Skip("groff is not installed (Debian: groff-base)")
	}
	for _, p := range []string{"docs/man/relay.1", "docs/man/relay.yaml.5"} {
		out, err := osexec.Command("groff", "-man", "-Tutf8", "-ww", "-z", filepath.Join(root, p)).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff %s: %v\n%s", p, err, out)
		}
	}
}

// TestRoffEscapes: text cannot start a roff request or hide a backslash.
func TestRoffEscapes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{".SH oops", `\&.SH oops`},
		{"'x", `\&'x`},
		{`a\b`, `a\eb`},
		{"`--config`", `\fB\-\-config\fR`},
		{"**required**", `\fBrequired\fR`},
	} {
		if got := roff(c.in); got != c.want {
			t.Errorf("roff(%q): got %q, want %q", c.in, got, c.want)
		}
	}
}
