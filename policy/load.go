package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/relaychat/relay/internal/lazyre"
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
