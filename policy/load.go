package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/relaychat/relay/internal/lazyre"
	"github.com/relaychat/relay/internal/render"
	"github.com/relaychat/relay/internal/sandbox/trampoline"
	"github.com/relaychat/relay/internal/telegram"
)

// maxFileBytes caps a config file: a policy is hand-written, and a huge
// file is a mistake or an attack on the parser.
const maxFileBytes = 1 << 20

// DefaultCommandUser is command_user's default: the account the installer
// creates for commands of a relay that runs as root.
const DefaultCommandUser = "relay-cmd"

// Load reads, strictly decodes and validates the config file at path,
// filling in every default. A read failure is a plain wrapped error; every
// problem in the file itself is reported together as an *ErrorList.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("load policy %q: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a config file held in memory; name is used
// in messages. Defaults for state_dir and audit.dir come from the process
// environment (see DefaultPaths).
func Parse(name string, data []byte) (*Config, error) {
	return parseWith(parseOptions{name: name, data: data, getenv: os.Getenv, needOwner: true})
}

type parseOptions struct {
	name        string
	data        []byte
	getenv      func(string) string
	needOwner   bool // false only for the built-in default policy
	dropMissing bool // drop commands whose program is absent (default policy)
}

func parseWith(o parseOptions) (*Config, error) {
	name, data := o.name, o.data
	d := &decoder{file: name, dropMissing: o.dropMissing}
	if len(data) > maxFileBytes {
		d.errAt(nil, "a policy file is hand-written; split or trim it", "file is larger than %d bytes", maxFileBytes)
		return nil, &d.errs
	}
	cfg := &Config{Source: name}
	root, ok := d.document(data)
	var s *schema
	if ok {
		s = d.config(root, cfg)
	}
	if s != nil {
		d.decoded = true
		d.defaults(cfg, s, o.getenv, o.needOwner)
	}
	if len(d.errs) > 0 {
		sortErrors(d.errs)
		return nil, &d.errs
	}
	return cfg, nil
}

// yamlLine extracts the line from a yaml.v3 syntax error message.
var yamlLine = lazyre.New(`line (\d+)`)

// document parses data into the single mapping at its root.
func (d *decoder) document(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errAt(nil, "start from the example in the policy package documentation", "file is empty")
			return nil, false
		}
		e := &Error{File: d.file, Msg: strings.TrimPrefix(err.Error(), "yaml: "), Hint: "check the indentation and quoting"}
		if m := yamlLine().FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = strings.TrimSpace(yamlLine().ReplaceAllString(e.Msg, ""))
			e.Msg = strings.TrimPrefix(e.Msg, ": ")
		}
		d.errs = append(d.errs, e)
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		n := &extra
		if err != nil {
			n = nil
		}
		d.errAt(n, "keep one document per file", "more than one YAML document")
	}
	if len(doc.Content) != 1 {
		d.errAt(&doc, "", "file is empty")
		return nil, false
	}
	return doc.Content[0], true
}

// schema remembers where things were written, for errors found after
// decoding (cross-field checks and defaults).
type schema struct {
	root     *yaml.Node
	at       map[string]*yaml.Node // "limits.max_timeout" -> value node
	commands []*cmdSchema
	hosts    []*hostSchema
	groups   []*groupSchema
}

type cmdSchema struct {
	cmd    *Command
	key    *yaml.Node            // the name key
	at     map[string]*yaml.Node // value nodes of the command's keys
	params []*paramSchema
	argv   []*yaml.Node
	sbox   map[string]*yaml.Node
	bad    bool // a decoding error already reported; skip deeper checks
	drop   bool // left out of the config (default policy, program absent)
}

type paramSchema struct {
	p  *Param
	n  *yaml.Node
	at map[string]*yaml.Node
}

func (s *schema) node(path string) *yaml.Node {
	if n := s.at[path]; n != nil {
		return n
	}
	return s.root
}

func (d *decoder) config(root *yaml.Node, c *Config) *schema {
	s := &schema{root: root, at: map[string]*yaml.Node{}}
	rec := func(prefix string, m map[string]*yaml.Node) {
		for k, v := range m {
			s.at[prefix+k] = v
		}
	}
	top := d.mapping(root, "config", []field{
		{"state_dir", func(v *yaml.Node) { d.str(v, "state_dir", &c.StateDir) }},
		{"command_user", func(v *yaml.Node) { d.str(v, "command_user", &c.CommandUser) }},
		{"telegram", func(v *yaml.Node) { rec("telegram.", d.telegram(v, &c.Telegram)) }},
		{"auth", func(v *yaml.Node) { rec("auth.", d.auth(v, &c.Auth)) }},
		{"audit", func(v *yaml.Node) {
			rec("audit.", d.mapping(v, "audit", []field{
				{"dir", func(v *yaml.Node) { d.str(v, "audit.dir", &c.Audit.Dir) }},
				{"rotate_bytes", func(v *yaml.Node) { d.size(v, "audit.rotate_bytes", &c.Audit.RotateBytes) }},
				{"checkpoint_interval", func(v *yaml.Node) { d.duration(v, "audit.checkpoint_interval", &c.Audit.CheckpointInterval) }},
			}))
		}},
		{"limits", func(v *yaml.Node) {
			l := &c.Limits
			rec("limits.", d.mapping(v, "limits", []field{
				{"max_concurrent", func(v *yaml.Node) { d.count(v, "limits.max_concurrent", &l.MaxConcurrent) }},
				{"default_timeout", func(v *yaml.Node) { d.duration(v, "limits.default_timeout", &l.DefaultTimeout) }},
				{"max_timeout", func(v *yaml.Node) { d.duration(v, "limits.max_timeout", &l.MaxTimeout) }},
				{"default_max_output", func(v *yaml.Node) { d.size(v, "limits.default_max_output", &l.DefaultMaxOutput) }},
				{"max_output", func(v *yaml.Node) { d.size(v, "limits.max_output", &l.MaxOutput) }},
			}))
		}},
		{"secrets", func(v *yaml.Node) {
			rec("secrets.", d.mapping(v, "secrets", []field{
				{"keyring", func(v *yaml.Node) {
					keyring := true
					d.boolean(v, "secrets.keyring", &keyring)
					c.Secrets.NoKeyring = !keyring
				}},
			}))
		}},
		{"notify", func(v *yaml.Node) {
			rec("notify.", d.mapping(v, "notify", []field{
				{"group", func(v *yaml.Node) { d.text(v, "notify.group", &c.Notify.Group) }},
				{"dir", func(v *yaml.Node) { d.str(v, "notify.dir", &c.Notify.Dir) }},
			}))
		}},
		{"commands", func(v *yaml.Node) { s.commands = d.commands(v, c) }},
		{"member", func(v *yaml.Node) {
			c.Member = &Member{}
			rec("member.", d.member(v, c.Member))
		}},
		{"fleet", func(v *yaml.Node) { rec("fleet.", d.fleet(v, &c.Fleet)) }},
		{"hosts", func(v *yaml.Node) { s.hosts = d.hosts(v) }},
		{"groups", func(v *yaml.Node) { s.groups = d.groups(v) }},
	})
	rec("", top)
	return s
}

func (d *decoder) telegram(n *yaml.Node, t *Telegram) map[string]*yaml.Node {
	var wh map[string]*yaml.Node
	m := d.mapping(n, "telegram", []field{
		{"api_url", func(v *yaml.Node) { d.str(v, "telegram.api_url", &t.APIURL) }},
		{"mode", func(v *yaml.Node) { d.str(v, "telegram.mode", &t.Mode) }},
		{"poll_timeout", func(v *yaml.Node) { d.duration(v, "telegram.poll_timeout", &t.PollTimeout) }},
		{"max_document_bytes", func(v *yaml.Node) { d.size(v, "telegram.max_document_bytes", &t.MaxDocumentBytes) }},
		{"token_file", func(v *yaml.Node) { d.str(v, "telegram.token_file", &t.TokenFile) }},
		{"protect_content", func(v *yaml.Node) { d.boolean(v, "telegram.protect_content", &t.ProtectContent) }},
		{"webhook", func(v *yaml.Node) {
			w := &t.Webhook
			wh = d.mapping(v, "telegram.webhook", []field{
				{"listen", func(v *yaml.Node) { d.str(v, "telegram.webhook.listen", &w.Listen) }},
				{"url", func(v *yaml.Node) { d.str(v, "telegram.webhook.url", &w.URL) }},
				{"tls_cert", func(v *yaml.Node) { d.str(v, "telegram.webhook.tls_cert", &w.TLSCert) }},
				{"tls_key", func(v *yaml.Node) { d.str(v, "telegram.webhook.tls_key", &w.TLSKey) }},
				{"max_body_bytes", func(v *yaml.Node) { d.size(v, "telegram.webhook.max_body_bytes", &w.MaxBodyBytes) }},
			})
		}},
	})
	for k, v := range wh {
		m["webhook."+k] = v
	}
	return m
}

func (d *decoder) auth(n *yaml.Node, a *Auth) map[string]*yaml.Node {
	return d.mapping(n, "auth", []field{
		{"owner_id", func(v *yaml.Node) {
			if i, ok := d.integer(v, "auth.owner_id"); ok {
				a.OwnerID = i
			}
		}},
		{"max_message_age", func(v *yaml.Node) { d.duration(v, "auth.max_message_age", &a.MaxMessageAge) }},
		{"session_idle", func(v *yaml.Node) { d.duration(v, "auth.session_idle", &a.SessionIdle) }},
		{"session_max", func(v *yaml.Node) { d.duration(v, "auth.session_max", &a.SessionMax) }},
		{"login_attempts", func(v *yaml.Node) { d.count(v, "auth.login_attempts", &a.LoginAttempts) }},
		{"login_window", func(v *yaml.Node) { d.duration(v, "auth.login_window", &a.LoginWindow) }},
		{"lockout", func(v *yaml.Node) { d.duration(v, "auth.lockout", &a.LockoutBase) }},
		{"lockout_max", func(v *yaml.Node) { d.duration(v, "auth.lockout_max", &a.LockoutMax) }},
		{"recovery_codes", func(v *yaml.Node) { d.count(v, "auth.recovery_codes", &a.RecoveryCodes) }},
	})
}

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

func (d *decoder) sandbox(n *yaml.Node, what string, s *Sandbox) map[string]*yaml.Node {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!str" && n.Value == "none" {
			s.Disabled = true
			return nil
		}
		d.errAt(n, `write "sandbox: none" to disable it, or a mapping of profile settings`, "%s: want none or a mapping, got %s", what, show(n.Value))
		return nil
	}
	return d.mapping(n, what, []field{
		{"read", func(v *yaml.Node) { d.strings(v, what+".read", &s.Read) }},
		{"write", func(v *yaml.Node) { d.strings(v, what+".write", &s.Write) }},
		{"network", func(v *yaml.Node) { d.boolean(v, what+".network", &s.Network) }},
		{"connect_ports", func(v *yaml.Node) {
			d.list(v, what+".connect_ports", func(i int, e *yaml.Node) {
				w := fmt.Sprintf("%s.connect_ports[%d]", what, i)
				p, ok := d.integer(e, w)
				if !ok {
					return
				}
				if p < 1 || p > 65535 {
					d.errAt(e, "", "%s: port %d is out of range 1-65535", w, p)
					return
				}
				for _, q := range s.ConnectPorts {
					if q == uint16(p) {
						d.errAt(e, "", "%s: duplicate port %d", w, p)
						return
					}
				}
				s.ConnectPorts = append(s.ConnectPorts, uint16(p))
			})
		}},
		{"sockets", func(v *yaml.Node) { d.strings(v, what+".sockets", &s.Sockets) }},
		{"pty", func(v *yaml.Node) { d.boolean(v, what+".pty", &s.Pty) }},
		{"allow_syscalls", func(v *yaml.Node) {
			d.list(v, what+".allow_syscalls", func(i int, e *yaml.Node) {
				w := fmt.Sprintf("%s.allow_syscalls[%d]", what, i)
				var name string
				if !d.text(e, w, &name) {
					return
				}
				known := trampoline.FilteredSyscalls()
				if !slices.Contains(known, name) {
					hint := didYouMean(name, known)
					if hint == "" {
						hint = "only the system calls the filter refuses can be re-allowed: " + strings.Join(known, ", ")
					}
					d.errAt(e, hint, "%s: %s is not a system call the sandbox refuses", w, show(name))
					return
				}
				if slices.Contains(s.AllowSyscalls, name) {
					d.errAt(e, "", "%s: duplicate %s", w, name)
					return
				}
				s.AllowSyscalls = append(s.AllowSyscalls, name)
			})
		}},
		{"namespaces", func(v *yaml.Node) {
			var ignored bool
			d.boolean(v, what+".namespaces", &ignored)
			s.ObsoleteNamespaces = true
		}},
		{"tmp_size", func(v *yaml.Node) { d.size(v, what+".tmp_size", &s.TmpSize) }},
		{"memory", func(v *yaml.Node) { d.size(v, what+".memory", &s.Memory) }},
		{"cpus", func(v *yaml.Node) {
			var t string
			if !d.text(v, what+".cpus", &t) {
				return
			}
			f, err := strconv.ParseFloat(t, 64)
			if err != nil || f < 0.01 || f > 1024 {
				d.errAt(v, "a number of CPUs the job may keep busy, e.g. 0.5 or 2", "%s.cpus: want a number from 0.01 to 1024, got %s", what, show(t))
				return
			}
			s.CPUs = f
		}},
		{"cpu", func(v *yaml.Node) { d.duration(v, what+".cpu", &s.CPU) }},
		{"nofile", func(v *yaml.Node) { d.unsigned(v, what+".nofile", &s.NoFile) }},
		{"fsize", func(v *yaml.Node) { d.size(v, what+".fsize", &s.FileSize) }},
		{"address_space", func(v *yaml.Node) { d.size(v, what+".address_space", &s.AddressSpace) }},
		{"procs", func(v *yaml.Node) { d.unsigned(v, what+".procs", &s.Procs) }},
	})
}

// setDefault assigns def to *v when the key was absent.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// defaults fills in every default and runs the checks that need the whole
// file (limits before commands, paths on this host).
func (d *decoder) defaults(c *Config, s *schema, getenv func(string) string, needOwner bool) {
	at := s.node
	present := func(k string) bool { _, ok := s.at[k]; return ok }

	setDefault(&c.CommandUser, DefaultCommandUser)
	if u := c.CommandUser; u == "root" || u == "nobody" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "65534:") {
		d.errAt(at("command_user"), "create a dedicated user: useradd --system --no-create-home --shell /usr/sbin/nologin relay-cmd", "command_user: %s is shared or privileged; commands need an account of their own", show(u))
	}
	d.notify(c, at, present)

	paths := DefaultPaths(getenv)
	if !present("state_dir") {
		c.StateDir = paths.StateDir
	}
	if !present("audit.dir") {
		c.Audit.Dir = paths.AuditDir
	}
	d.absPath(at("state_dir"), "state_dir", c.StateDir, "set state_dir, or $STATE_DIRECTORY, $XDG_STATE_HOME or $HOME")
	d.absPath(at("audit.dir"), "audit.dir", c.Audit.Dir, "set audit.dir, or $LOGS_DIRECTORY, $XDG_STATE_HOME or $HOME")
	// The group socket's directory is opened to the group: it must not be,
	// or be inside, a directory that holds the relay's secrets or its log.
	if n := c.Notify; n.Group != "" && filepath.IsAbs(n.Dir) {
		for _, p := range []struct{ key, dir string }{{"state_dir", c.StateDir}, {"audit.dir", c.Audit.Dir}} {
			if filepath.IsAbs(p.dir) && within(filepath.Clean(n.Dir), filepath.Clean(p.dir)) {
				d.errAt(at("notify.dir"), "keep it apart, e.g. /run/relay-notify", "notify.dir %s is inside %s %s, which only the relay may enter", show(n.Dir), p.key, show(p.dir))
			}
		}
	}

	t := &c.Telegram
	setDefault(&t.APIURL, "https://api.telegram.org")
	setDefault(&t.Mode, "polling")
	setDefault(&t.PollTimeout, 25*time.Second)
	setDefault(&t.MaxDocumentBytes, 50<<20)
	setDefault(&t.Webhook.MaxBodyBytes, 1<<20)
	d.apiURL(at("telegram.api_url"), t.APIURL)
	switch t.Mode {
	case "polling":
	case "webhook":
		if t.Webhook.Listen == "" {
			d.errAt(at("telegram.mode"), `add telegram.webhook.listen: "127.0.0.1:8443"`, "telegram.webhook.listen is required in webhook mode")
		}
		if t.Webhook.URL == "" {
			d.errAt(at("telegram.mode"), `add telegram.webhook.url: "https://relay.example.org"`, "telegram.webhook.url is required in webhook mode")
		}
	default:
		d.errAt(at("telegram.mode"), didYouMean(t.Mode, []string{"polling", "webhook"}), "telegram.mode: want polling or webhook, got %s", show(t.Mode))
	}
	if w := t.Webhook.Listen; w != "" {
		if _, port, err := net.SplitHostPort(w); err != nil || port == "" {
			d.errAt(at("telegram.webhook.listen"), `use host:port, e.g. "127.0.0.1:8443"`, "telegram.webhook.listen: invalid address %s", show(w))
		}
	}
	if u := t.Webhook.URL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "https" || pu.Host == "" || pu.User != nil {
			d.errAt(at("telegram.webhook.url"), "Telegram delivers webhooks only to https URLs", "telegram.webhook.url: want an https URL, got %s", show(u))
		}
	}
	if (t.Webhook.TLSCert == "") != (t.Webhook.TLSKey == "") {
		d.errAt(at("telegram.webhook"), "set both tls_cert and tls_key, or neither", "telegram.webhook: tls_cert and tls_key go together")
	}
	d.existingFile(at("telegram.webhook.tls_cert"), "telegram.webhook.tls_cert", t.Webhook.TLSCert)
	d.existingFile(at("telegram.webhook.tls_key"), "telegram.webhook.tls_key", t.Webhook.TLSKey)
	if t.TokenFile != "" {
		d.absPath(at("telegram.token_file"), "telegram.token_file", t.TokenFile, "")
	}
	d.positive(at("telegram.poll_timeout"), "telegram.poll_timeout", int64(t.PollTimeout))
	if t.PollTimeout > 10*time.Minute {
		d.errAt(at("telegram.poll_timeout"), "25s is a good value", "telegram.poll_timeout: %s is longer than 10m", t.PollTimeout)
	}
	d.positive(at("telegram.max_document_bytes"), "telegram.max_document_bytes", t.MaxDocumentBytes)
	d.positive(at("telegram.webhook.max_body_bytes"), "telegram.webhook.max_body_bytes", t.Webhook.MaxBodyBytes)

	a := &c.Auth
	// A member's file may leave the owner out: its owner is in the hub's
	// chat, and relay run refuses a file without one.
	if needOwner && a.OwnerID <= 0 && !(c.Member != nil && !present("auth.owner_id")) {
		if present("auth.owner_id") {
			d.errAt(at("auth.owner_id"), "it is a positive number; send /start to the bot to learn it", "auth.owner_id: must be positive, got %d", a.OwnerID)
		} else {
			d.errAt(at("auth"), "add auth: {owner_id: 123456789}, your numeric Telegram user ID", "auth.owner_id is required")
		}
	}
	setDefault(&a.MaxMessageAge, 60*time.Second)
	setDefault(&a.SessionIdle, 15*time.Minute)
	setDefault(&a.SessionMax, 12*time.Hour)
	setDefault(&a.LoginAttempts, 3)
	setDefault(&a.LoginWindow, 30*time.Second)
	setDefault(&a.LockoutBase, time.Minute)
	setDefault(&a.LockoutMax, 24*time.Hour)
	if !present("auth.recovery_codes") {
		a.RecoveryCodes = 10
	}
	for _, f := range []struct {
		k string
		v time.Duration
	}{{"max_message_age", a.MaxMessageAge}, {"session_idle", a.SessionIdle}, {"session_max", a.SessionMax}, {"login_window", a.LoginWindow}, {"lockout", a.LockoutBase}, {"lockout_max", a.LockoutMax}} {
		d.positive(at("auth."+f.k), "auth."+f.k, int64(f.v))
	}
	d.positive(at("auth.login_attempts"), "auth.login_attempts", int64(a.LoginAttempts))
	if a.SessionIdle > a.SessionMax {
		d.errAt(at("auth.session_idle"), "", "auth.session_idle %s is longer than auth.session_max %s", a.SessionIdle, a.SessionMax)
	}
	if a.LockoutBase > a.LockoutMax {
		d.errAt(at("auth.lockout"), "", "auth.lockout %s is longer than auth.lockout_max %s", a.LockoutBase, a.LockoutMax)
	}
	if a.RecoveryCodes > 100 {
		d.errAt(at("auth.recovery_codes"), "", "auth.recovery_codes: %d is more than 100", a.RecoveryCodes)
	}

	setDefault(&c.Audit.RotateBytes, 64<<20)
	if !present("audit.checkpoint_interval") {
		c.Audit.CheckpointInterval = time.Hour
	}
	if c.Audit.RotateBytes < 64<<10 {
		d.errAt(at("audit.rotate_bytes"), "", "audit.rotate_bytes: %d is less than 64KiB", c.Audit.RotateBytes)
	}

	l := &c.Limits
	setDefault(&l.MaxConcurrent, 4)
	setDefault(&l.DefaultTimeout, 30*time.Second)
	setDefault(&l.MaxTimeout, 10*time.Minute)
	setDefault(&l.DefaultMaxOutput, 16<<20)
	setDefault(&l.MaxOutput, 1<<30)
	d.positive(at("limits.max_concurrent"), "limits.max_concurrent", int64(l.MaxConcurrent))
	d.positive(at("limits.default_timeout"), "limits.default_timeout", int64(l.DefaultTimeout))
	d.positive(at("limits.max_timeout"), "limits.max_timeout", int64(l.MaxTimeout))
	d.positive(at("limits.default_max_output"), "limits.default_max_output", l.DefaultMaxOutput)
	d.positive(at("limits.max_output"), "limits.max_output", l.MaxOutput)
	if l.DefaultTimeout > l.MaxTimeout {
		d.errAt(at("limits.default_timeout"), "", "limits.default_timeout %s is longer than limits.max_timeout %s", l.DefaultTimeout, l.MaxTimeout)
	}
	if l.DefaultMaxOutput > l.MaxOutput {
		d.errAt(at("limits.default_max_output"), "", "limits.default_max_output %d is more than limits.max_output %d", l.DefaultMaxOutput, l.MaxOutput)
	}

	d.fleetDefaults(c, s)

	c.Commands = c.Commands[:0]
	for _, cs := range s.commands {
		d.commandDefaults(cs, l)
		if !cs.drop {
			c.Commands = append(c.Commands, cs.cmd)
		}
	}
}

// notify resolves notify.group on this host and checks that no command
// could carry the group: a command running with it could send
// notifications in the group's name.
func (d *decoder) notify(c *Config, at func(string) *yaml.Node, present func(string) bool) {
	n := &c.Notify
	n.GID = -1
	if n.Dir == "" {
		n.Dir = DefaultNotifyDir
	} else if d.absPath(at("notify.dir"), "notify.dir", n.Dir, "") {
		n.Dir = filepath.Clean(n.Dir)
	}
	if !present("notify.group") {
		return
	}
	g := n.Group
	var gid int
	if digits(g) {
		id, err := strconv.Atoi(g)
		if err != nil {
			d.errAt(at("notify.group"), "", "notify.group: %s is not a group id", show(g))
			return
		}
		gid = id
	} else if grp, err := user.LookupGroup(g); err == nil {
		gid, _ = strconv.Atoi(grp.Gid)
	} else {
		d.errAt(at("notify.group"), "name the group the sending service runs as, or create one: groupadd --system relay-notify",
			"notify.group: no group %s on this host", show(g))
		return
	}
	if gid == 0 {
		d.errAt(at("notify.group"), "create a group for the senders: groupadd --system relay-notify", "notify.group: the root group is shared by system processes; name a group of its own")
		return
	}
	n.GID = gid
	cmdGID := -1
	if _, g, ok := strings.Cut(c.CommandUser, ":"); ok && digits(g) {
		cmdGID, _ = strconv.Atoi(g)
	} else if u, err := user.Lookup(c.CommandUser); err == nil {
		cmdGID, _ = strconv.Atoi(u.Gid)
	}
	if cmdGID == gid {
		d.errAt(at("notify.group"), "give the command user a group of its own", "notify.group: %s is command_user's group, so every command could notify in its name", show(g))
	}
}

func digits(s string) bool {
	return s != "" && strings.TrimLeft(s, "0123456789") == ""
}

func (d *decoder) positive(n *yaml.Node, what string, v int64) {
	if v <= 0 {
		d.errAt(n, "", "%s: must be positive", what)
	}
}

func (d *decoder) absPath(n *yaml.Node, what, p, hint string) bool {
	switch {
	case p == "":
		d.errAt(n, hint, "%s: no path", what)
	case !filepath.IsAbs(p):
		d.errAt(n, "use an absolute path", "%s: %s is not absolute", what, show(p))
	case strings.IndexByte(p, 0) >= 0:
		d.errAt(n, "", "%s: path contains a NUL byte", what)
	default:
		return true
	}
	return false
}

func (d *decoder) existingFile(n *yaml.Node, what, p string) {
	if p == "" || !d.absPath(n, what, p, "") {
		return
	}
	if fi, err := os.Stat(p); err != nil {
		d.errAt(n, "", "%s: %v", what, errors.Unwrap(err))
	} else if !fi.Mode().IsRegular() {
		d.errAt(n, "", "%s: %s is not a regular file", what, show(p))
	}
}

func (d *decoder) apiURL(n *yaml.Node, s string) {
	if msg, hint := apiURLProblem(s); msg != "" {
		d.errAt(n, hint, "%s", msg)
	}
}

// CheckAPIURL reports whether s is acceptable as telegram.api_url, by
// exactly the rule Load applies: an https base URL, or plain http to a
// loopback host (the bot token travels in the URL). First-run setup uses
// it, so that a URL it accepts is one the config will load with.
func CheckAPIURL(s string) error {
	msg, hint := apiURLProblem(s)
	switch {
	case msg == "":
		return nil
	case hint == "":
		return errors.New(msg)
	}
	return fmt.Errorf("%s (%s)", msg, hint)
}

// apiURLProblem is the reason s is not an acceptable api_url, with a hint;
// "" when it is. The rule is internal/telegram's, which sends the token.
func apiURLProblem(s string) (msg, hint string) {
	_, _, err := telegram.CheckAPIURL(s, false)
	var e *telegram.APIURLError
	if errors.As(err, &e) {
		return "telegram.api_url: " + e.Reason, e.Hint
	}
	return "", ""
}
