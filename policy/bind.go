package policy

import (
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FixedPath and FixedLang are the only environment a command gets besides
// its policy's env map: the child environment starts empty.
const (
	FixedPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	FixedLang = "C.UTF-8"
)

// Invocation is a command bound to validated arguments: exactly what will
// run. Argv has the template's shape: the same number of elements, and
// every literal part unchanged.
type Invocation struct {
	Command *Command
	Values  []BoundValue // one per parameter, in declared order
	Argv    []string
	// Env is the child's whole environment, sorted "K=V": PATH and LANG,
	// then the command's env map (which may override them).
	Env []string
	Dir string // the working directory
}

// BoundValue is one parameter's final value: canonical for an int, the
// resolved absolute path for a path, the value itself for an enum word
// typed in another case (fold_case) or as an alias.
type BoundValue struct {
	Name      string
	Value     string
	Defaulted bool // the argument was left out and the default used
}

// template returns c's compiled template: the one Load built, or, for a
// Command assembled in code, a fresh compile.
func (c *Command) template() (*template, error) {
	if c.tmpl != nil {
		return c.tmpl, nil
	}
	t, probs := compile(c)
	if len(probs) > 0 {
		return nil, fmt.Errorf("command %q is invalid: %w", c.Name, probs[0])
	}
	return t, nil
}

// Bind binds chat arguments (already split by SplitArgs, or argv words
// from a shell) to c's parameters by position and renders the argv. Every
// error is safe to show in the chat: *UsageError for a wrong number of
// arguments, *ArgError for a value its parameter refuses.
func (c *Command) Bind(args []string) (*Invocation, error) {
	t, err := c.template()
	if err != nil {
		return nil, err
	}
	required := 0
	for _, p := range c.Params {
		if !p.Optional {
			required++
		}
	}
	if len(args) < required || len(args) > len(c.Params) {
		return nil, c.usageError(len(args), required)
	}
	inv := &Invocation{Command: c, Values: make([]BoundValue, len(c.Params)), Dir: c.Workdir}
	for i, p := range c.Params {
		raw, defaulted := p.Default, true
		if i < len(args) {
			raw, defaulted = args[i], false
		}
		v, aerr := bindValue(p, t, i, raw)
		if aerr != nil {
			if defaulted {
				// Only a path default can fail here (the tree changed
				// since Load); it is the owner's policy, not the input.
				aerr.Reason = "default " + aerr.Reason
			}
			return nil, aerr
		}
		inv.Values[i] = BoundValue{Name: p.Name, Value: v, Defaulted: defaulted}
	}
	inv.Argv = make([]string, len(t.elems))
	for i, segs := range t.elems {
		var b strings.Builder
		for _, s := range segs {
			if s.param >= 0 {
				b.WriteString(inv.Values[s.param].Value)
			} else {
				b.WriteString(s.lit)
			}
		}
		inv.Argv[i] = b.String()
	}
	inv.Env = Environ(c.Env)
	if inv.Dir == "" {
		inv.Dir = "/"
	}
	return inv, nil
}

// Environ is the child environment for a command env map: PATH and LANG
// fixed, then the map, sorted by name.
func Environ(env map[string]string) []string {
	m := map[string]string{"PATH": FixedPath, "LANG": FixedLang}
	for k, v := range env {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func (c *Command) usageError(got, required int) *UsageError {
	var reason string
	switch {
	case len(c.Params) == 0:
		reason = fmt.Sprintf("/%s takes no arguments, got %d", c.Name, got)
	case got > len(c.Params):
		reason = fmt.Sprintf("too many arguments: /%s takes at most %d, got %d (use double quotes to group words)", c.Name, len(c.Params), got)
	default:
		reason = fmt.Sprintf("too few arguments: /%s needs at least %d, got %d", c.Name, required, got)
	}
	return &UsageError{Command: c.Name, Reason: reason, Usage: c.Usage()}
}

// Usage is the command's usage line, built from the schema:
// "/restart <unit: nginx|caddy> [lines: 1..1000 = 50]".
func (c *Command) Usage() string {
	var b strings.Builder
	b.WriteString("/" + c.Name)
	for _, p := range c.Params {
		b.WriteByte(' ')
		open, close := "<", ">"
		if p.Optional {
			open, close = "[", "]"
		}
		b.WriteString(open + p.Name + ": " + p.shape())
		if p.Optional {
			b.WriteString(" = " + p.Default)
		}
		b.WriteString(close)
	}
	return b.String()
}

// shape describes what a parameter accepts, in a few words.
func (p *Param) shape() string {
	switch p.Type {
	case TypeEnum:
		s := ""
		for i, v := range p.Values {
			if i > 0 {
				s += "|"
			}
			if len(s)+len(v) > 80 {
				return s + "…"
			}
			s += v
		}
		return s
	case TypeInt:
		return fmt.Sprintf("%d..%d", p.Min, p.Max)
	case TypeString:
		return fmt.Sprintf("text, max %d bytes", p.MaxLen)
	case TypePath:
		return "path under " + p.Root
	}
	return string(p.Type)
}

// badText says why v can never be an argument value, or "" if it can:
// invalid UTF-8, control characters (C0, DEL, C1, which includes NUL, CR
// and LF), Unicode line and paragraph separators, and bidirectional
// formatting characters that make text display differently from what runs.
func badText(v string) string {
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	for _, r := range v {
		switch {
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			return "contains a control character"
		case r == 0x2028 || r == 0x2029:
			return "contains a line separator"
		case isBidi(r):
			return "contains a bidirectional text control character"
		}
	}
	return ""
}

// isBidi reports the bidirectional formatting characters: ALM, LRM, RLM,
// the embeddings and overrides U+202A-U+202E and the isolates
// U+2066-U+2069.
func isBidi(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

var intSyntax = lazyre.New(`\A-?[0-9]{1,19}\z`)

// bindValue validates one raw value for parameter i and returns its final
// form. The checks run cheapest first and the size check before anything
// that scans the value.
func bindValue(p *Param, t *template, i int, raw string) (string, *ArgError) {
	fail := func(format string, a ...any) (string, *ArgError) {
		return "", &ArgError{Param: p.Name, Reason: fmt.Sprintf(format, a...)}
	}
	limit := MaxArgBytes
	if p.Type == TypeString && p.MaxLen > 0 && p.MaxLen < limit {
		limit = p.MaxLen
	}
	if len(raw) > limit {
		return fail("too long (%d bytes, at most %d)", len(raw), limit)
	}
	if why := badText(raw); why != "" {
		return fail("%s", why)
	}
	if strings.HasPrefix(raw, "-") && !p.AllowDash {
		return fail("must not begin with '-' (it could be read as an option)")
	}
	switch p.Type {
	case TypeEnum:
		if v, ok := p.enumValue(raw); ok {
			return v, nil
		}
		return fail("%s is not one of %s", show(raw), p.shape())
	case TypeInt:
		if !intSyntax().MatchString(raw) {
			return fail("%s is not a whole number", show(raw))
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < p.Min || n > p.Max {
			return fail("%s is not in %d..%d", show(raw), p.Min, p.Max)
		}
		return strconv.FormatInt(n, 10), nil
	case TypeString:
		re := t.re[i]
		if re == nil || !re.MatchString(raw) {
			return fail("%s does not match %s", show(raw), p.Pattern)
		}
		if t.embedded[i] && strings.Contains(raw, "..") {
			return fail("must not contain '..'")
		}
		return raw, nil
	case TypePath:
		return resolvePath(p, raw)
	}
	return fail("has unknown type %q", p.Type)
}

// enumValue is the value raw stands for: a value itself, then (with
// fold_case) a value in another case, then an alias of a value. The
// loader proves no word can stand for two values, so the order only
// decides which check finds it first.
func (p *Param) enumValue(raw string) (string, bool) {
	for _, v := range p.Values {
		if raw == v {
			return v, true
		}
	}
	if p.FoldCase {
		for _, v := range p.Values {
			if strings.EqualFold(raw, v) {
				return v, true
			}
		}
	}
	for _, v := range p.Values {
		for _, a := range p.Aliases[v] {
			if raw == a || p.FoldCase && strings.EqualFold(raw, a) {
				return v, true
			}
		}
	}
	return "", false
}

// resolvePath resolves a path value, relative to the root or absolute,
// following every symlink, and accepts it only if the result is the root
// or inside it, comparing against the root with its own symlinks resolved.
// The value that reaches argv is the resolved absolute path, so what the
// program opens is what was checked (up to a concurrent rename inside the
// root, which only whoever can write the root can do).
func resolvePath(p *Param, raw string) (string, *ArgError) {
	fail := func(format string, a ...any) (string, *ArgError) {
		return "", &ArgError{Param: p.Name, Reason: fmt.Sprintf(format, a...)}
	}
	if raw == "" {
		return fail("empty path")
	}
	root, err := filepath.EvalSymlinks(p.Root)
	if err != nil {
		return fail("root %s is not available", p.Root)
	}
	full := raw
	if !filepath.IsAbs(full) {
		full = filepath.Join(root, raw)
	}
	// Refuse a path that is outside the root before it is even looked
	// at, so that chat input cannot learn which files exist elsewhere
	// ("does not exist" versus "is outside") or make the relay touch an
	// arbitrary path, such as an automount that hangs.
	if clean := filepath.Clean(full); !within(clean, root) && !within(clean, filepath.Clean(p.Root)) {
		return fail("%s is outside %s", show(raw), p.Root)
	}
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail("%s does not exist under %s", show(raw), p.Root)
		}
		return fail("%s cannot be resolved under %s", show(raw), p.Root)
	}
	if !within(real, root) {
		return fail("%s is outside %s", show(raw), p.Root)
	}
	return real, nil
}

// within reports whether p is dir or inside it; both clean and absolute.
func within(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}
