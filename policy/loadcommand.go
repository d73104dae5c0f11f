package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/relaychat/relay/internal/lazyre"
	"github.com/relaychat/relay/internal/render"
)

var (
	commandName = lazyre.New(`^[a-z0-9_]{1,32}$`)
	paramName   = lazyre.New(`^[a-z][a-z0-9_]{0,31}$`)
	envName     = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func (d *decoder) commands(n *yaml.Node, c *Config) []*cmdSchema {
	if !d.kind(n, yaml.MappingNode, "commands", "a mapping of command names") {
		return nil
	}
	var out []*cmdSchema
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, ok := d.key(k, "commands")
		if !ok {
			continue
		}
		switch {
		case seen[name]:
			d.errAt(k, "", "duplicate command %q", name)
			continue
		case !commandName().MatchString(name):
			d.errAt(k, "Telegram commands are 1-32 characters of a-z, 0-9 and _", "invalid command name %s", show(name))
		case isReserved(name):
			d.errAt(k, "choose another name", "command name %q is reserved by the relay", name)
		}
		seen[name] = true
		cs := &cmdSchema{cmd: &Command{Name: name, Line: k.Line, Hub: true}, key: k}
		if !d.usable(v, "commands."+name) {
			continue
		}
		d.command(v, cs)
		out = append(out, cs)
		c.Commands = append(c.Commands, cs.cmd)
	}
	return out
}

func isReserved(name string) bool { return LookupBuiltin(name) != nil }

func (d *decoder) command(n *yaml.Node, cs *cmdSchema) {
	c := cs.cmd
	what := "commands." + c.Name
	before := len(d.errs)
	cs.at = d.mapping(n, what, []field{
		{"description", func(v *yaml.Node) { d.str(v, what+".description", &c.Description) }},
		{"argv", func(v *yaml.Node) {
			d.list(v, what+".argv", func(i int, e *yaml.Node) {
				var s string
				d.str(e, fmt.Sprintf("%s.argv[%d]", what, i), &s)
				c.Argv = append(c.Argv, s)
				cs.argv = append(cs.argv, e)
			})
		}},
		{"params", func(v *yaml.Node) {
			d.list(v, what+".params", func(i int, e *yaml.Node) {
				ps := &paramSchema{p: &Param{}, n: e}
				d.param(e, fmt.Sprintf("%s.params[%d]", what, i), ps)
				c.Params = append(c.Params, ps.p)
				cs.params = append(cs.params, ps)
			})
		}},
		{"timeout", func(v *yaml.Node) { d.duration(v, what+".timeout", &c.Timeout) }},
		{"workdir", func(v *yaml.Node) { d.str(v, what+".workdir", &c.Workdir) }},
		{"env", func(v *yaml.Node) {
			if !d.kind(v, yaml.MappingNode, what+".env", "a mapping of variable names to values") {
				return
			}
			c.Env = map[string]string{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, val := v.Content[i], v.Content[i+1]
				name, ok := d.key(k, what+".env")
				if !ok {
					continue
				}
				if _, dup := c.Env[name]; dup {
					d.errAt(k, "", "duplicate key %q in %s.env", name, what)
					continue
				}
				var s string
				if d.usable(val, what+".env."+name) && d.text(val, what+".env."+name, &s) {
					c.Env[name] = s
					d.envVar(k, val, what, name, s)
				}
			}
		}},
		{"max_output", func(v *yaml.Node) { d.size(v, what+".max_output", &c.MaxOutput) }},
		{"concurrency", func(v *yaml.Node) { d.count(v, what+".concurrency", &c.Concurrency) }},
		{"confirm", func(v *yaml.Node) { d.boolean(v, what+".confirm", &c.Confirm) }},
		{"reauth", func(v *yaml.Node) { d.boolean(v, what+".reauth", &c.Reauth) }},
		{"hub", func(v *yaml.Node) {
			c.Hub = true
			d.boolean(v, what+".hub", &c.Hub)
		}},
		{"sandbox", func(v *yaml.Node) { cs.sbox = d.sandbox(v, what+".sandbox", &c.Sandbox) }},
		{"format", func(v *yaml.Node) { c.Format = d.format(v, what+".format") }},
	})
	if _, ok := cs.at["argv"]; !ok && n.Kind == yaml.MappingNode {
		d.errAt(cs.key, `add argv: [/absolute/path/to/program, arg, "{param}"]`, "%s: argv is required", what)
	}
	cs.bad = len(d.errs) > before
}

// envVar checks one env entry. The value is never quoted in an error: an
// env value may be a secret.
func (d *decoder) envVar(k, v *yaml.Node, what, name, val string) {
	if !envName().MatchString(name) {
		d.errAt(k, "use letters, digits and _, not starting with a digit", "%s.env: invalid variable name %s", what, show(name))
	}
	if strings.IndexByte(val, 0) >= 0 {
		d.errAt(v, "", "%s.env.%s: value contains a NUL byte", what, name)
	}
}

func (d *decoder) param(n *yaml.Node, what string, ps *paramSchema) {
	p := ps.p
	ps.at = d.mapping(n, what, []field{
		{"name", func(v *yaml.Node) { d.str(v, what+".name", &p.Name) }},
		{"type", func(v *yaml.Node) {
			var s string
			d.str(v, what+".type", &s)
			p.Type = ParamType(s)
		}},
		{"description", func(v *yaml.Node) { d.str(v, what+".description", &p.Description) }},
		{"values", func(v *yaml.Node) {
			d.list(v, what+".values", func(i int, e *yaml.Node) {
				var s string
				if d.text(e, fmt.Sprintf("%s.values[%d]", what, i), &s) {
					p.Values = append(p.Values, s)
				}
			})
		}},
		{"min", func(v *yaml.Node) {
			if i, ok := d.integer(v, what+".min"); ok {
				p.Min = i
			}
		}},
		{"max", func(v *yaml.Node) {
			if i, ok := d.integer(v, what+".max"); ok {
				p.Max = i
			}
		}},
		{"pattern", func(v *yaml.Node) { d.str(v, what+".pattern", &p.Pattern) }},
		{"max_len", func(v *yaml.Node) { d.count(v, what+".max_len", &p.MaxLen) }},
		{"root", func(v *yaml.Node) { d.str(v, what+".root", &p.Root) }},
		{"optional", func(v *yaml.Node) { d.boolean(v, what+".optional", &p.Optional) }},
		{"default", func(v *yaml.Node) {
			if d.text(v, what+".default", &p.Default) {
				p.HasDefault = true
			}
		}},
		{"allow_dash", func(v *yaml.Node) { d.boolean(v, what+".allow_dash", &p.AllowDash) }},
		{"fold_case", func(v *yaml.Node) { d.boolean(v, what+".fold_case", &p.FoldCase) }},
		{"aliases", func(v *yaml.Node) { p.Aliases = d.aliases(v, what+".aliases") }},
		{"choices", func(v *yaml.Node) {
			d.list(v, what+".choices", func(i int, e *yaml.Node) {
				w := fmt.Sprintf("%s.choices[%d]", what, i)
				var ch Choice
				if e.Kind == yaml.MappingNode {
					d.mapping(e, w, []field{
						{"value", func(v *yaml.Node) { d.text(v, w+".value", &ch.Value) }},
						{"label", func(v *yaml.Node) { d.str(v, w+".label", &ch.Label) }},
					})
					if ch.Value == "" {
						d.errAt(e, "write {value: VALUE, label: TEXT}", "%s: value is required", w)
					}
				} else if !d.text(e, w, &ch.Value) {
					return
				}
				p.Choices = append(p.Choices, ch)
			})
		}},
	})
}

// aliases decodes {value: [alias, ...]}, keys and aliases as text.
func (d *decoder) aliases(n *yaml.Node, what string) map[string][]string {
	if !d.kind(n, yaml.MappingNode, what, "a mapping of values to lists of aliases") {
		return nil
	}
	m := map[string][]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var key string
		if !d.text(k, what, &key) {
			continue
		}
		if _, dup := m[key]; dup {
			d.errAt(k, "", "duplicate key %q in %s", key, what)
			continue
		}
		var names []string
		if d.usable(v, what+"."+key) {
			d.list(v, what+"."+key, func(j int, e *yaml.Node) {
				var a string
				if d.text(e, fmt.Sprintf("%s.%s[%d]", what, key, j), &a) {
					names = append(names, a)
				}
			})
		}
		m[key] = names
	}
	return m
}

// format decodes a command's format and compiles it, so that an
// expression that would not run never loads.
func (d *decoder) format(n *yaml.Node, what string) *Format {
	f := &Format{}
	var jqNode *yaml.Node
	at := d.mapping(n, what, []field{
		{"jq", func(v *yaml.Node) { d.str(v, what+".jq", &f.JQ); jqNode = v }},
		{"input", func(v *yaml.Node) {
			var s string
			d.str(v, what+".input", &s)
			switch s {
			case "json":
			case "text":
				f.Text = true
			default:
				if v.Tag == "!!str" {
					d.errAt(v, didYouMean(s, []string{"json", "text"}), "%s.input: want json or text, got %s", what, show(s))
				}
			}
		}},
		{"table", func(v *yaml.Node) {
			if v.Kind == yaml.SequenceNode {
				f.Table = true
				seen := map[string]bool{}
				d.list(v, what+".table", func(i int, e *yaml.Node) {
					var c string
					w := fmt.Sprintf("%s.table[%d]", what, i)
					if !d.text(e, w, &c) {
						return
					}
					switch {
					case c == "" || badText(c) != "":
						d.errAt(e, "", "%s: a column is a key of the rows, got %s", w, show(c))
					case seen[c]:
						d.errAt(e, "", "%s: duplicate column %s", w, show(c))
					}
					seen[c] = true
					f.Columns = append(f.Columns, c)
				})
				if len(v.Content) == 0 {
					d.errAt(v, "name the columns, or write table: true for every key", "%s.table: no columns", what)
				}
				return
			}
			d.boolean(v, what+".table", &f.Table)
		}},
	})
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if f.JQ == "" && !f.Table {
		if _, ok := at["jq"]; !ok {
			d.errAt(n, "add jq: EXPRESSION, table: true, or both", "%s: a format needs jq, table, or both", what)
		}
		return nil
	}
	prog, err := render.Compile(f.Spec())
	if err != nil {
		var ce *render.CompileError
		if errors.As(err, &ce) && jqNode != nil {
			d.exprError(jqNode, what+".jq", ce)
		} else {
			d.errAt(n, "", "%s: %v", what, err)
		}
		return f
	}
	f.prog = prog
	return f
}

// exprError reports a jq error at the character it concerns when the
// expression is written on one line without escapes, so that the column
// in the file is the column in the expression; else at the expression.
func (d *decoder) exprError(n *yaml.Node, what string, ce *render.CompileError) {
	v := n.Value
	exact := ce.Offset >= 0 && !strings.ContainsAny(v, "\n\r") && n.Line > 0
	shift := 0
	switch n.Style {
	case 0:
	case yaml.SingleQuotedStyle:
		exact = exact && !strings.Contains(v, "'")
		shift = 1
	case yaml.DoubleQuotedStyle:
		exact = exact && !strings.ContainsAny(v, "\\\"")
		shift = 1
	default:
		exact = false
	}
	hint := "a format may use jq's built-ins but those that reach outside the output or size their work from an argument"
	if strings.HasPrefix(ce.Msg, "jq syntax") {
		hint = ""
	}
	if !exact {
		d.errAt(n, hint, "%s: %s", what, ce.Error())
		return
	}
	e := &Error{File: d.file, Line: n.Line, Col: n.Column + shift + runeOffset(v, ce.Offset), Msg: what + ": " + ce.Msg, Hint: hint}
	d.errs = append(d.errs, e)
}

// runeOffset is the column offset of byte offset off in s.
func runeOffset(s string, off int) int {
	if off > len(s) {
		off = len(s)
	}
	return utf8.RuneCountInString(s[:off])
}
