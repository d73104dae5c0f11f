package policy

import (
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxArgBytes caps one chat argument, and SplitArgs caps the whole argument
// string at the same size: nothing an owner types on a phone is longer, and
// a bound keeps every check below cheap.
const MaxArgBytes = 4096

// segment is a piece of one argv element: literal text, or a placeholder
// (param >= 0 is the index of the parameter it stands for).
type segment struct {
	lit   string
	param int
}

// template is a command's compiled argv and parameters. It is built once
// by Load and only read afterwards, so Bind may run concurrently.
type template struct {
	elems [][]segment
	// whole[i] is true when argv[i] is exactly one placeholder.
	whole []bool
	re    []*regexp.Regexp // per parameter; nil unless a string
	// embedded[i] is true when parameter i appears inside a larger element.
	embedded []bool
}

// problem is a template or parameter error found by compile, located by
// what it concerns so the loader can point at the line.
type problem struct {
	param int    // parameter index, or -1
	key   string // the parameter's key concerned, "" for the whole parameter
	// path leads below key: a string picks a mapping's key (the key node
	// itself when it is last), an int a list's element.
	path []any
	argv int // argv index, or -1
	msg  string
	hint string
}

func (p problem) Error() string {
	if p.hint != "" {
		return p.msg + " (" + p.hint + ")"
	}
	return p.msg
}

// EmbedSafe is the alphabet of a string parameter embedded in a larger argv
// element: ASCII letters, digits, '.', '_' and '-'. Everything that has a
// meaning in URLs, JSON, key=value pairs, option syntax, shells, paths or
// format strings (space, / ? # & = ; , : " ' \ { } [ ] < > % @ + ! $ ` ~ ^
// * | ( ), control characters and all non-ASCII) lies outside it.
const EmbedSafe = "A-Z a-z 0-9 . _ -"

func embedSafe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// regexAlphabetSafe reports whether every string the regex can match is
// made only of embedSafe characters, by collecting every character any
// literal or class in the regex can contribute. It over-approximates, so a
// "true" is a proof; bad is an offending character when it is false.
func regexAlphabetSafe(pattern string) (ok bool, bad rune) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false, 0
	}
	bad = -1
	var walk func(r *syntax.Regexp)
	check := func(lo, hi rune) {
		for c := lo; c <= hi && bad < 0; c++ {
			if !embedSafe(c) { // at most 65 safe runes precede this
				bad = c
			}
		}
	}
	walk = func(r *syntax.Regexp) {
		if bad >= 0 {
			return
		}
		switch r.Op {
		case syntax.OpLiteral:
			for _, c := range r.Rune {
				check(c, c)
				if r.Flags&syntax.FoldCase != 0 {
					for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
						check(f, f)
					}
				}
			}
		case syntax.OpCharClass:
			for i := 0; i+1 < len(r.Rune); i += 2 {
				check(r.Rune[i], r.Rune[i+1])
			}
		case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
			bad = '\n'
			if r.Op == syntax.OpAnyCharNotNL {
				bad = ' '
			}
		}
		for _, s := range r.Sub {
			walk(s)
		}
	}
	walk(re)
	return bad < 0, bad
}

var leadingFlags = lazyre.New(`^\(\?[imsU]+\)`)

// anchored reports whether pattern is written as ^...$, so the owner's
// intent (a full match) is visible in the file. Matching always wraps the
// pattern in \A(?:...)\z regardless, so "^a|b$" cannot match a substring.
func anchored(pattern string) bool {
	// Leading flags such as (?i) may precede the anchor.
	if m := leadingFlags().FindString(pattern); m != "" {
		pattern = pattern[len(m):]
	}
	if !strings.HasPrefix(pattern, "^") || !strings.HasSuffix(pattern, "$") || len(pattern) < 2 {
		return false
	}
	// An escaped dollar is a literal, not an anchor.
	n := 0
	for i := len(pattern) - 2; i >= 0 && pattern[i] == '\\'; i-- {
		n++
	}
	return n%2 == 0
}

// parseElem splits one argv element into segments. "{name}" with name
// matching a parameter name's syntax is a placeholder; "{{" is a literal
// "{"; any other brace is literal text, so JSON bodies need no escaping.
func parseElem(s string) (segs []segment, names []string) {
	var lit strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "{{") {
			lit.WriteByte('{')
			i += 2
			continue
		}
		if s[i] == '{' {
			if end := strings.IndexByte(s[i+1:], '}'); end >= 0 {
				name := s[i+1 : i+1+end]
				if paramName().MatchString(name) {
					if lit.Len() > 0 {
						segs = append(segs, segment{lit: lit.String(), param: -1})
						lit.Reset()
					}
					segs = append(segs, segment{lit: name, param: -2})
					names = append(names, name)
					i += end + 2
					continue
				}
			}
		}
		lit.WriteByte(s[i])
		i++
	}
	if lit.Len() > 0 || len(segs) == 0 {
		segs = append(segs, segment{lit: lit.String(), param: -1})
	}
	return segs, names
}

// compile checks a command's parameters and argv template without touching
// the filesystem, and builds the template Bind uses. Load reports the
// problems with positions; Bind refuses a command that has any.
func compile(c *Command) (*template, []problem) {
	var probs []problem
	add := func(param int, key string, argv int, hint, format string, a ...any) {
		probs = append(probs, problem{param: param, key: key, argv: argv, msg: fmt.Sprintf(format, a...), hint: hint})
	}
	t := &template{re: make([]*regexp.Regexp, len(c.Params)), embedded: make([]bool, len(c.Params))}
	index := map[string]int{}
	names := make([]string, 0, len(c.Params))
	seenOptional := false
	for i, p := range c.Params {
		if p.Name == "" {
			add(i, "", -1, "add name: the placeholder's name in argv", "parameter %d has no name", i+1)
		} else if !paramName().MatchString(p.Name) {
			add(i, "name", -1, "use 1-32 of a-z, 0-9 and _, starting with a letter", "invalid parameter name %s", show(p.Name))
		} else if _, dup := index[p.Name]; dup {
			add(i, "name", -1, "", "duplicate parameter %q", p.Name)
		} else {
			index[p.Name] = i
			names = append(names, p.Name)
		}
		own := checkParam(i, p, t)
		probs = append(probs, own...)
		if len(own) == 0 && p.Type != TypePath {
			// Every choice binds as if typed; path values need the
			// filesystem and are checked by Load.
			probs = append(probs, checkChoices(i, p, t)...)
		}
		if p.Optional {
			seenOptional = true
		} else if seenOptional {
			add(i, "", -1, "arguments bind by position, so optional parameters go last", "required parameter %q follows an optional one", p.Name)
		}
	}

	used := make([]bool, len(c.Params))
	if len(c.Argv) == 0 {
		add(-1, "", -1, `add argv: [/absolute/path/to/program, ...]`, "argv is empty")
	}
	for i, a := range c.Argv {
		if strings.IndexByte(a, 0) >= 0 || !utf8.ValidString(a) {
			add(-1, "", i, "", "argv[%d] contains a NUL byte or invalid UTF-8", i)
			continue
		}
		segs, refs := parseElem(a)
		if i == 0 {
			if len(refs) > 0 {
				add(-1, "", 0, "the program is fixed by the policy; pass choices as later arguments", "argv[0] must not contain a placeholder")
			} else if !filepath.IsAbs(a) {
				add(-1, "", 0, "use an absolute path such as /usr/bin/"+filepath.Base(a), "argv[0] %s is not an absolute path", show(a))
			}
		}
		whole := len(segs) == 1 && segs[0].param == -2
		for j := range segs {
			if segs[j].param != -2 {
				continue
			}
			name := segs[j].lit
			pi, ok := index[name]
			if !ok {
				add(-1, "", i, didYouMean(name, names), "argv[%d]: placeholder {%s} names no parameter", i, name)
				segs[j].param = -1
				continue
			}
			segs[j] = segment{param: pi}
			used[pi] = true
			if whole {
				continue
			}
			t.embedded[pi] = true
			p := c.Params[pi]
			switch p.Type {
			case TypeEnum, TypeInt:
			case TypeString:
				if ok, bad := regexAlphabetSafe(p.Pattern); t.re[pi] != nil && !ok {
					add(-1, "", i, "narrow the pattern to the characters "+EmbedSafe+", or make the placeholder a whole argv element",
						"argv[%d]: parameter %q is embedded in a larger element but its pattern allows %s", i, name, show(string(bad)))
				}
			case TypePath:
				add(-1, "", i, fmt.Sprintf("make {%s} a whole argv element, e.g. [--file, \"{%s}\"]", name, name),
					"argv[%d]: path parameter %q cannot be embedded in a larger element", i, name)
			}
		}
		t.elems = append(t.elems, segs)
		t.whole = append(t.whole, whole)
	}
	for i, p := range c.Params {
		if !used[i] && paramName().MatchString(p.Name) {
			add(i, "", -1, fmt.Sprintf("use it as \"{%s}\" in argv, or remove it", p.Name), "parameter %q is never used in argv", p.Name)
		}
	}
	// A default must satisfy its type. Path defaults need the filesystem
	// and are checked by Load.
	if len(probs) == 0 {
		for i, p := range c.Params {
			if p.HasDefault && p.Type != TypePath {
				if _, err := bindValue(p, t, i, p.Default); err != nil {
					add(i, "default", -1, "", "default %s", err.Reason)
				}
			}
		}
	}
	return t, probs
}

// checkChoices binds every choice of parameter i as if typed: a choice
// that would be refused, or two that bind the same value, are errors.
func checkChoices(i int, p *Param, t *template) []problem {
	var probs []problem
	bound := map[string]int{}
	for j, ch := range p.Choices {
		label := func(format string, a ...any) {
			probs = append(probs, problem{param: i, key: "choices", path: []any{j}, argv: -1,
				msg: fmt.Sprintf("parameter %q: choice %s: ", p.Name, show(ch.Value)) + fmt.Sprintf(format, a...)})
		}
		switch {
		case ch.Label == "":
		case utf8.RuneCountInString(ch.Label) > MaxLabel:
			label("label is longer than %d characters", MaxLabel)
		case badText(ch.Label) != "":
			label("label %s", badText(ch.Label))
		}
		v, err := bindValue(p, t, i, ch.Value)
		if err != nil {
			probs = append(probs, problem{param: i, key: "choices", path: []any{j}, argv: -1,
				msg: fmt.Sprintf("parameter %q: choice %s", p.Name, err.Reason)})
			continue
		}
		if k, dup := bound[v]; dup {
			probs = append(probs, problem{param: i, key: "choices", path: []any{j}, argv: -1,
				msg: fmt.Sprintf("parameter %q: choice %s binds %s, as choice %d does", p.Name, show(ch.Value), show(v), k+1)})
		}
		bound[v] = j
	}
	return probs
}

// checkParam checks one parameter's own fields.
func checkParam(i int, p *Param, t *template) []problem {
	var probs []problem
	add := func(key, hint, format string, a ...any) {
		probs = append(probs, problem{param: i, key: key, argv: -1, msg: fmt.Sprintf("parameter %q: ", p.Name) + fmt.Sprintf(format, a...), hint: hint})
	}
	addAt := func(key string, path []any, hint, format string, a ...any) {
		probs = append(probs, problem{param: i, key: key, path: path, argv: -1, msg: fmt.Sprintf("parameter %q: ", p.Name) + fmt.Sprintf(format, a...), hint: hint})
	}
	switch p.Type {
	case TypeEnum:
		if len(p.Values) == 0 {
			add("values", "list the allowed values: values: [a, b]", "an enum needs values")
		}
		seen := map[string]bool{}
		for _, v := range p.Values {
			switch {
			case v == "":
				add("values", "", "empty enum value")
			case badText(v) != "":
				add("values", "", "enum value %s %s", show(v), badText(v))
			case seen[v]:
				add("values", "", "duplicate enum value %s", show(v))
			case v[0] == '-' && !p.AllowDash:
				add("values", "set allow_dash: true if the program must receive it", "enum value %s begins with '-' and could be read as an option", show(v))
			}
			seen[v] = true
		}
		if p.FoldCase {
			for j, v := range p.Values {
				for _, w := range p.Values[:j] {
					if v != w && strings.EqualFold(v, w) {
						addAt("values", []any{j}, "drop one, or drop fold_case", "enum values %s and %s are the same with fold_case", show(w), show(v))
					}
				}
			}
		}
		probs = append(probs, checkAliases(i, p)...)
	case TypeInt:
		if p.Min > p.Max {
			add("min", "", "min %d is greater than max %d", p.Min, p.Max)
		}
		if p.Min < 0 && !p.AllowDash {
			add("min", "set allow_dash: true if negative values are meant", "min %d allows negative values, which begin with '-' and could be read as an option", p.Min)
		}
	case TypeString:
		switch {
		case p.Pattern == "":
			add("pattern", `add an anchored pattern, e.g. pattern: "^[a-z0-9-]+$"`, "a string needs a pattern")
		case !anchored(p.Pattern):
			add("pattern", fmt.Sprintf("write it as %q", "^"+strings.TrimSuffix(strings.TrimPrefix(p.Pattern, "^"), "$")+"$"), "pattern %s is not anchored with ^...$", show(p.Pattern))
		default:
			_, err := regexp.Compile(p.Pattern)
			re, err2 := regexp.Compile(`\A(?:` + p.Pattern + `)\z`)
			if err == nil {
				err = err2
			}
			if err != nil {
				add("pattern", "Go RE2 syntax: no backreferences or lookaround", "pattern does not compile: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			} else {
				t.re[i] = re
			}
		}
		if p.MaxLen <= 0 || p.MaxLen > MaxArgBytes {
			add("max_len", fmt.Sprintf("set max_len between 1 and %d", MaxArgBytes), "a string needs max_len, got %d", p.MaxLen)
		}
	case TypePath:
		if p.Root == "" {
			add("root", "add root: /the/directory/values/must/stay/under", "a path needs a root")
		} else if !filepath.IsAbs(p.Root) {
			add("root", "use an absolute path", "root %s is not absolute", show(p.Root))
		}
	case "":
		add("", "add type: enum, int, string or path", "type is required")
	default:
		add("type", didYouMean(string(p.Type), []string{"enum", "int", "string", "path"}), "unknown type %s (want enum, int, string or path)", show(string(p.Type)))
	}
	if len(p.Choices) > MaxChoices {
		add("choices", "a picker shows at most 24 buttons; keep the ones used most", "%d choices, more than %d", len(p.Choices), MaxChoices)
	}
	if p.Optional && !p.HasDefault {
		add("optional", "add default: the value used when the argument is left out", "an optional parameter needs a default")
	}
	if p.HasDefault && !p.Optional {
		add("default", "add optional: true, or remove the default", "a default is only used by an optional parameter")
	}
	return probs
}

// checkAliases checks an enum's aliases: each belongs to a value, is text
// an argument could be, and is neither a value nor another alias, with
// fold_case whatever the case. An alias that collided would make what a
// word binds depend on the order of the file.
func checkAliases(i int, p *Param) []problem {
	var probs []problem
	add := func(path []any, hint, format string, a ...any) {
		probs = append(probs, problem{param: i, key: "aliases", path: path, argv: -1, msg: fmt.Sprintf("parameter %q: ", p.Name) + fmt.Sprintf(format, a...), hint: hint})
	}
	fold := func(s string) string {
		if p.FoldCase {
			return foldKey(s)
		}
		return s
	}
	values := map[string]string{}  // folded value -> value
	aliasOf := map[string]string{} // folded alias -> the value it binds
	for _, v := range p.Values {
		values[fold(v)] = v
	}
	keys := make([]string, 0, len(p.Aliases))
	for k := range p.Aliases {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(p.Values, k) {
			add([]any{k}, didYouMean(k, p.Values), "alias key %s is not one of the values %s", show(k), p.shape())
		}
	}
	for _, v := range p.Values {
		for j, a := range p.Aliases[v] {
			at := []any{v, j}
			switch {
			case a == "":
				add(at, "", "empty alias of %s", show(v))
				continue
			case len(a) > MaxArgBytes:
				add(at, "", "alias of %s is longer than %d bytes", show(v), MaxArgBytes)
				continue
			case badText(a) != "":
				add(at, "", "alias %s %s", show(a), badText(a))
				continue
			case a[0] == '-' && !p.AllowDash:
				add(at, "set allow_dash: true if it is meant", "alias %s begins with '-' and could be read as an option", show(a))
				continue
			}
			if w, ok := values[fold(a)]; ok {
				add(at, "an alias is another word for a value; drop it", "alias %s of %s is the value %s", show(a), show(v), show(w))
			} else if w, ok := aliasOf[fold(a)]; ok {
				add(at, "each word binds one value", "alias %s of %s is also an alias of %s", show(a), show(v), show(w))
			} else {
				aliasOf[fold(a)] = v
			}
		}
	}
	return probs
}

// foldKey maps s to one representative of its case-folding class, so that
// foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b): each rune
// becomes the smallest rune of its simple folding orbit.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}
