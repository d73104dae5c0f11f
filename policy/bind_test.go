package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// bindConfig is the policy the binding tests and FuzzBind run against. ROOT
// is replaced by a temp dir holding files, a subdir and symlinks.
const bindConfig = `
state_dir: /tmp
audit: {dir: /tmp}
auth: {owner_id: 1}
commands:
  restart:
    argv: [/usr/bin/systemctl, restart, "{unit}.service"]
    params:
      - {name: unit, type: enum, values: [nginx, caddy]}
  tail:
    argv: [/usr/bin/tail, -n, "{lines}", --, "{file}"]
    params:
      - {name: file, type: path, root: ROOT}
      - {name: lines, type: int, min: 1, max: 1000, optional: true, default: 50}
  greet:
    argv: [/usr/bin/echo, "{name}", "id={id}", "{{literal}"]
    params:
      - {name: name, type: string, pattern: "^[\\p{L} ]{1,20}$", max_len: 40}
      - {name: id, type: string, pattern: "^[a-z0-9._-]+$", max_len: 16}
  opt:
    argv: [/usr/bin/echo, "{flag}", "{n}"]
    params:
      - {name: flag, type: enum, values: [-n, -e], allow_dash: true}
      - {name: n, type: int, min: -10, max: 10, allow_dash: true}
  light:
    argv: [/usr/bin/curl, -d, '{"room": "{room}", "level": {level}}', "http://127.0.0.1:8123/api/{room}"]
    params:
      - {name: room, type: enum, values: [kitchen, living_room]}
      - {name: level, type: int, min: 0, max: 100}
  noargs:
    argv: [/usr/bin/uptime]
    env: {FOO: bar, LANG: de_DE.UTF-8}
    workdir: /tmp
`

// bindTree makes the path root: ROOT/a.log, ROOT/sub/b.log, an inside
// symlink, and symlinks pointing out of the root.
func bindTree(t testing.TB) (root string, cfg *Config) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "logs")
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "a.log"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "sub", "b.log"), nil, 0o644)
	os.WriteFile(filepath.Join(base, "secret"), nil, 0o600)
	os.WriteFile(root+"-evil", nil, 0o600)
	os.Symlink("sub/b.log", filepath.Join(root, "inside"))
	os.Symlink("../secret", filepath.Join(root, "escape"))
	os.Symlink("/etc/passwd", filepath.Join(root, "abs-escape"))
	os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "loopdir"))
	cfg, err := Parse("bind.yaml", []byte(strings.ReplaceAll(bindConfig, "ROOT", root)))
	if err != nil {
		t.Fatal(err)
	}
	return root, cfg
}

func TestBind(t *testing.T) {
	root, cfg := bindTree(t)
	for _, tc := range []struct {
		name string
		cmd  string
		args []string
		argv []string // nil: expect an error
		err  string   // substring of the error
	}{
		{"enum", "restart", []string{"nginx"}, []string{"/usr/bin/systemctl", "restart", "nginx.service"}, ""},
		{"enum not listed", "restart", []string{"sshd"}, nil, `argument "unit": "sshd" is not one of nginx|caddy`},
		{"enum case", "restart", []string{"NGINX"}, nil, "is not one of"},
		{"too few", "restart", nil, nil, "too few arguments: /restart needs at least 1, got 0; usage: /restart <unit: nginx|caddy>"},
		{"too many", "restart", []string{"nginx", "caddy"}, nil, "too many arguments"},
		{"path relative", "tail", []string{"a.log"}, []string{"/usr/bin/tail", "-n", "50", "--", filepath.Join(root, "a.log")}, ""},
		{"path absolute", "tail", []string{filepath.Join(root, "sub/b.log"), "7"}, []string{"/usr/bin/tail", "-n", "7", "--", filepath.Join(root, "sub/b.log")}, ""},
		{"path symlink inside", "tail", []string{"inside"}, []string{"/usr/bin/tail", "-n", "50", "--", filepath.Join(root, "sub/b.log")}, ""},
		{"path root itself", "tail", []string{"."}, []string{"/usr/bin/tail", "-n", "50", "--", root}, ""},
		{"path dotdot", "tail", []string{"../secret"}, nil, "is outside"},
		{"path deep dotdot", "tail", []string{"sub/../../secret"}, nil, "is outside"},
		{"path symlink escape", "tail", []string{"escape"}, nil, "is outside"},
		{"path absolute symlink escape", "tail", []string{"abs-escape"}, nil, "is outside"},
		{"path absolute outside", "tail", []string{"/etc/passwd"}, nil, "is outside"},
		{"path missing", "tail", []string{"nope.log"}, nil, "does not exist"},
		{"path missing outside", "tail", []string{"/nonexistent/relay-probe"}, nil, "is outside"},
		{"path missing via dotdot", "tail", []string{"../nonexistent-relay-probe"}, nil, "is outside"},
		{"path inside via dotdot", "tail", []string{"sub/../a.log"}, []string{"/usr/bin/tail", "-n", "50", "--", filepath.Join(root, "a.log")}, ""},
		{"path empty", "tail", []string{""}, nil, "empty path"},
		{"path prefix sibling", "tail", []string{root + "-evil"}, nil, "is outside"},
		{"path via sibling dotdot", "tail", []string{"../logs-evil"}, nil, "is outside"},
		{"int canonical", "tail", []string{"a.log", "007"}, []string{"/usr/bin/tail", "-n", "7", "--", filepath.Join(root, "a.log")}, ""},
		{"int low", "tail", []string{"a.log", "0"}, nil, `argument "lines": "0" is not in 1..1000`},
		{"int high", "tail", []string{"a.log", "1001"}, nil, "not in 1..1000"},
		{"int huge", "tail", []string{"a.log", "99999999999999999999"}, nil, "not a whole number"},
		{"int plus", "tail", []string{"a.log", "+5"}, nil, "not a whole number"},
		{"int hex", "tail", []string{"a.log", "0x10"}, nil, "not a whole number"},
		{"int negative refused", "tail", []string{"a.log", "-5"}, nil, "must not begin with '-'"},
		{"int negative allowed", "opt", []string{"-n", "-5"}, []string{"/usr/bin/echo", "-n", "-5"}, ""},
		{"string unicode", "greet", []string{"Zoë Ünal", "a.b-c_1"}, []string{"/usr/bin/echo", "Zoë Ünal", "id=a.b-c_1", "{literal}"}, ""},
		{"string no match", "greet", []string{"x1", "a"}, nil, `does not match`},
		{"embedded dotdot", "greet", []string{"x", "a..b"}, nil, "must not contain '..'"},
		{"embedded too long", "greet", []string{"x", strings.Repeat("a", 17)}, nil, "too long (17 bytes, at most 16)"},
		{"json embed", "light", []string{"kitchen", "40"}, []string{"/usr/bin/curl", "-d", `{"room": "kitchen", "level": 40}`, "http://127.0.0.1:8123/api/kitchen"}, ""},
		{"no args", "noargs", nil, []string{"/usr/bin/uptime"}, ""},
		{"no args given one", "noargs", []string{"x"}, nil, "/noargs takes no arguments, got 1; usage: /noargs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := cfg.Lookup(tc.cmd).Bind(tc.args)
			if tc.argv == nil {
				if err == nil {
					t.Fatalf("got argv %q, want an error", inv.Argv)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got error %q, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want argv %q", err, tc.argv)
			}
			if strings.Join(inv.Argv, "\x00") != strings.Join(tc.argv, "\x00") {
				t.Errorf("got argv %q, want %q", inv.Argv, tc.argv)
			}
		})
	}
}

func TestBindValuesAndEnv(t *testing.T) {
	_, cfg := bindTree(t)
	inv, err := cfg.Lookup("tail").Bind([]string{"a.log"})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Values) != 2 || inv.Values[0].Defaulted || !inv.Values[1].Defaulted || inv.Values[1].Value != "50" || inv.Values[1].Name != "lines" {
		t.Errorf("values: got %+v", inv.Values)
	}
	inv, err = cfg.Lookup("noargs").Bind(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(inv.Env, " "); got != "FOO=bar LANG=de_DE.UTF-8 PATH="+FixedPath {
		t.Errorf("env: got %q", got)
	}
	if inv.Dir != "/tmp" {
		t.Errorf("dir: got %q, want /tmp", inv.Dir)
	}
}

func TestBindErrorTypes(t *testing.T) {
	_, cfg := bindTree(t)
	_, err := cfg.Lookup("restart").Bind(nil)
	var ue *UsageError
	if !errors.As(err, &ue) || ue.Usage != "/restart <unit: nginx|caddy>" {
		t.Errorf("got %v, want a *UsageError with the usage line", err)
	}
	_, err = cfg.Lookup("restart").Bind([]string{"x"})
	var ae *ArgError
	if !errors.As(err, &ae) || ae.Param != "unit" {
		t.Errorf("got %v, want an *ArgError for unit", err)
	}
}

func TestUsage(t *testing.T) {
	_, cfg := bindTree(t)
	for cmd, want := range map[string]string{
		"restart": "/restart <unit: nginx|caddy>",
		"greet":   "/greet <name: text, max 40 bytes> <id: text, max 16 bytes>",
		"noargs":  "/noargs",
	} {
		if got := cfg.Lookup(cmd).Usage(); got != want {
			t.Errorf("usage: got %q, want %q", got, want)
		}
	}
	if got := cfg.Lookup("tail").Usage(); !strings.HasSuffix(got, "[lines: 1..1000 = 50]") {
		t.Errorf("usage: got %q, want the optional parameter with its default", got)
	}
}

// TestInjectionCorpus feeds hostile chat input through SplitArgs and Bind
// for every parameter type. Whatever happens, no hostile value reaches argv
// unless its parameter's validation accepts it exactly, and the argv keeps
// the template's shape.
func TestInjectionCorpus(t *testing.T) {
	_, cfg := bindTree(t)
	corpus := []string{
		"; rm -rf /", "nginx; reboot", "nginx && reboot", "a | cat /etc/shadow", "$(reboot)", "`reboot`",
		"${IFS}", "--output=/etc/passwd", "-rf", "--", "-", "../..", "../../etc/passwd", "/etc/passwd",
		"a\x00b", "nginx\x00", "a\r\nb", "nginx\n", "\u202enginx", "nginx\u2066", "\u200fx",
		strings.Repeat("A", 1<<20), "😀", "👨‍👩‍👧", "nginx caddy", `"nginx"`, "'nginx'", "\\", "%s%n",
		"{unit}", "{{unit}}", "*", "?", "~root", "a=b", "\xff\xfe", "\x1b[31m", "nginx\u2028",
	}
	for _, input := range corpus {
		for _, cmd := range cfg.Commands {
			words, err := SplitArgs(input)
			if err != nil {
				if len(input) <= MaxArgBytes && utf8.ValidString(input) && !strings.ContainsAny(input, "\x00\r\n\x1b\u202e\u2066\u200f\u2028\"") {
					t.Errorf("SplitArgs(%s) refused ordinary text: %v", show(input), err)
				}
				words = []string{input} // Bind must hold even given the raw text
			}
			inv, err := cmd.Bind(words)
			if err != nil {
				if strings.Contains(err.Error(), "\x00") || strings.Contains(err.Error(), "\n") || len(err.Error()) > 600 {
					t.Errorf("/%s: error is unsafe to show: %q", cmd.Name, err.Error())
				}
				continue
			}
			checkInvocation(t, cmd, inv)
		}
	}
}

// checkInvocation asserts the fuzz invariant: argv has the template's
// shape (same length, literal parts unchanged) and every bound value
// satisfies its parameter's type.
func checkInvocation(t testing.TB, c *Command, inv *Invocation) {
	t.Helper()
	tmpl := c.tmpl
	if len(inv.Argv) != len(c.Argv) || len(tmpl.elems) != len(c.Argv) {
		t.Fatalf("/%s: argv has %d elements, template %d", c.Name, len(inv.Argv), len(c.Argv))
	}
	if inv.Argv[0] != c.Argv[0] {
		t.Fatalf("/%s: program changed to %q", c.Name, inv.Argv[0])
	}
	for i, segs := range tmpl.elems {
		rest := inv.Argv[i]
		for _, s := range segs {
			want := s.lit
			if s.param >= 0 {
				want = inv.Values[s.param].Value
			}
			if !strings.HasPrefix(rest, want) {
				t.Fatalf("/%s: argv[%d] %q does not follow the template", c.Name, i, inv.Argv[i])
			}
			rest = rest[len(want):]
		}
		if rest != "" {
			t.Fatalf("/%s: argv[%d] has extra text %q", c.Name, i, rest)
		}
	}
	for i, p := range c.Params {
		v := inv.Values[i].Value
		if badText(v) != "" || (strings.HasPrefix(v, "-") && !p.AllowDash) {
			t.Fatalf("/%s: value %q of %s passed unchecked", c.Name, v, p.Name)
		}
		switch p.Type {
		case TypeEnum:
			ok := false
			for _, e := range p.Values {
				ok = ok || e == v
			}
			if !ok {
				t.Fatalf("/%s: enum %s got %q", c.Name, p.Name, v)
			}
		case TypeInt:
			if !intSyntax().MatchString(v) {
				t.Fatalf("/%s: int %s got %q", c.Name, p.Name, v)
			}
		case TypeString:
			if !tmpl.re[i].MatchString(v) || len(v) > p.MaxLen {
				t.Fatalf("/%s: string %s got %q", c.Name, p.Name, v)
			}
			if tmpl.embedded[i] {
				for _, r := range v {
					if !embedSafe(r) {
						t.Fatalf("/%s: embedded %s got %q", c.Name, p.Name, v)
					}
				}
			}
		case TypePath:
			root, _ := filepath.EvalSymlinks(p.Root)
			if !filepath.IsAbs(v) || !within(v, root) {
				t.Fatalf("/%s: path %s got %q outside %s", c.Name, p.Name, v, root)
			}
		}
	}
}

func TestRegexAlphabet(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		safe    bool
	}{
		{"^[a-z0-9]+$", true}, {"^[A-Za-z0-9._-]{1,8}$", true}, {"^(foo|bar)-[0-9]+$", true}, {`^\d+$`, true},
		{"^.+$", false}, {"^[a-z/]+$", false}, {"^[^a]+$", false}, {`^\w+$`, true}, {`^\S+$`, false},
		{"(?i)^k$", false}, {"^[a-z]+ [a-z]+$", false}, {"^a|b=c$", false}, {`^\p{L}+$`, false}, {"^[0-z]$", false},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			if got, bad := regexAlphabetSafe(tc.pattern); got != tc.safe {
				t.Errorf("got safe %v (offending %q), want %v", got, bad, tc.safe)
			}
		})
	}
}

func TestAnchored(t *testing.T) {
	for p, want := range map[string]bool{"^a$": true, "^a\\$": false, "^a\\\\$": true, "a$": false, "^a": false, "(?i)^a$": true, "^$": true, "^": false} {
		if got := anchored(p); got != want {
			t.Errorf("anchored(%q): got %v, want %v", p, got, want)
		}
	}
}

func TestAlternationMatchesWhole(t *testing.T) {
	c := &Command{Name: "x", Argv: []string{"/usr/bin/echo", "{v}"},
		Params: []*Param{{Name: "v", Type: TypeString, Pattern: "^a|b$", MaxLen: 10}}}
	for arg, ok := range map[string]bool{"a": true, "b": true, "ab": false, "a;reboot": false, "x;b": false} {
		_, err := c.Bind([]string{arg})
		if (err == nil) != ok {
			t.Errorf("Bind(%q): got %v, want ok %v", arg, err, ok)
		}
	}
}

func TestBindUncompiledCommand(t *testing.T) {
	c := &Command{Name: "x", Argv: []string{"/usr/bin/echo", "{nope}"}}
	if _, err := c.Bind(nil); err == nil || !strings.Contains(err.Error(), "names no parameter") {
		t.Errorf("got %v, want the template refused", err)
	}
}

func TestShowIsSafe(t *testing.T) {
	for _, in := range []string{strings.Repeat("x", 1<<20), "a\u202eb", "a\nb", "\x00", "é" + strings.Repeat("é", 40)} {
		s := show(in)
		if len(s) > 80 || strings.ContainsAny(s, "\n\x00\u202e") {
			t.Errorf("show(%d bytes) = %q", len(in), s)
		}
	}
}
