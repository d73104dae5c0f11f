package policy

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

func sortErrors(l ErrorList) {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Col < l[j].Col
	})
}

// typeKeys lists, per parameter type, the keys that belong to it; a key of
// another type is an error rather than silently ignored.
var typeKeys = map[ParamType][]string{
	TypeEnum:   {"values", "fold_case", "aliases"},
	TypeInt:    {"min", "max"},
	TypeString: {"pattern", "max_len"},
	TypePath:   {"root"},
}

// commandDefaults fills in a command's defaults and checks everything that
// needs the limits or the host's filesystem.
func (d *decoder) commandDefaults(cs *cmdSchema, l *Limits) {
	c := cs.cmd
	what := "commands." + c.Name
	at := func(k string) *yaml.Node {
		if n := cs.at[k]; n != nil {
			return n
		}
		return cs.key
	}
	if cs.bad {
		return
	}
	if d.dropMissing && len(c.Argv) > 0 && !exists(c.Argv[0]) {
		cs.drop = true
		return
	}

	if c.Description == "" && len(c.Argv) > 0 {
		c.Description = "run " + filepath.Base(c.Argv[0])
	}
	if utf8.RuneCountInString(c.Description) > 256 {
		d.errAt(at("description"), "Telegram shows at most 256 characters", "%s.description is longer than 256 characters", what)
	} else if why := badText(c.Description); why != "" {
		d.errAt(at("description"), "", "%s.description %s", what, why)
	}

	if _, ok := cs.at["timeout"]; !ok {
		c.Timeout = l.DefaultTimeout
	}
	switch {
	case c.Timeout <= 0:
		d.errAt(at("timeout"), "", "%s.timeout must be positive", what)
	case c.Timeout > l.MaxTimeout:
		d.errAt(at("timeout"), "raise limits.max_timeout or shorten the timeout", "%s.timeout %s exceeds limits.max_timeout %s", what, c.Timeout, l.MaxTimeout)
	}
	if _, ok := cs.at["max_output"]; !ok {
		c.MaxOutput = l.DefaultMaxOutput
	}
	switch {
	case c.MaxOutput <= 0:
		d.errAt(at("max_output"), "", "%s.max_output must be positive", what)
	case c.MaxOutput > l.MaxOutput:
		d.errAt(at("max_output"), "raise limits.max_output or lower max_output", "%s.max_output %d exceeds limits.max_output %d", what, c.MaxOutput, l.MaxOutput)
	}
	if _, ok := cs.at["concurrency"]; !ok {
		c.Concurrency = 1
	}
	switch {
	case c.Concurrency <= 0:
		d.errAt(at("concurrency"), "", "%s.concurrency must be positive", what)
	case c.Concurrency > l.MaxConcurrent:
		d.errAt(at("concurrency"), "raise limits.max_concurrent or lower concurrency", "%s.concurrency %d exceeds limits.max_concurrent %d", what, c.Concurrency, l.MaxConcurrent)
	}
	if c.Workdir == "" {
		c.Workdir = "/"
	}
	if d.absPath(at("workdir"), what+".workdir", c.Workdir, "") {
		c.Workdir = filepath.Clean(c.Workdir)
		d.dir(at("workdir"), what+".workdir", c.Workdir)
	}

	// The template: placeholders, parameter types, embedding rules.
	t, probs := compile(c)
	for _, p := range probs {
		n := cs.key
		switch {
		case p.argv >= 0 && p.argv < len(cs.argv):
			n = cs.argv[p.argv]
		case p.param >= 0 && p.param < len(cs.params):
			ps := cs.params[p.param]
			n = ps.n
			if v := ps.node(p.key, p.path); v != nil {
				n = v
			}
		}
		d.errAt(n, p.hint, "%s: %s", what, p.msg)
	}
	for _, ps := range cs.params {
		d.paramKeys(ps, what)
	}
	if len(c.Argv) > 0 && filepath.IsAbs(c.Argv[0]) {
		d.executable(cs.argv[0], what, c.Argv[0])
	}
	for i, p := range c.Params {
		if p.Type != TypePath || p.Root == "" || !filepath.IsAbs(p.Root) {
			continue
		}
		n := cs.params[i].at["root"]
		if !d.dir(n, what+".params."+p.Name+".root", p.Root) {
			continue
		}
		if p.HasDefault && len(probs) == 0 {
			if _, err := bindValue(p, t, i, p.Default); err != nil {
				d.errAt(cs.params[i].at["default"], "", "%s: parameter %q: default %s", what, p.Name, err.Reason)
			}
		}
		if len(probs) == 0 {
			for _, cp := range checkChoices(i, p, t) {
				d.errAt(cs.params[i].node(cp.key, cp.path), cp.hint, "%s: %s", what, cp.msg)
			}
		}
	}
	if len(probs) == 0 {
		c.tmpl = t
	}
	d.sandboxChecks(cs, what)
}

// paramKeys refuses keys that belong to another type and requires the
// ones the type needs, so "min" on a string is not silently ignored.
func (d *decoder) paramKeys(ps *paramSchema, what string) {
	p := ps.p
	own, known := typeKeys[p.Type]
	if !known {
		return
	}
	for t, keys := range typeKeys {
		if t == p.Type {
			continue
		}
		for _, k := range keys {
			if n := ps.at[k]; n != nil {
				d.errAt(n, "remove it", "%s: parameter %q: %s does not apply to type %s", what, p.Name, k, p.Type)
			}
		}
	}
	for _, k := range own[:min(len(own), 2)] { // the required ones
		if _, ok := ps.at[k]; !ok {
			if p.Type == TypeInt { // the others report their own missing key
				d.errAt(ps.n, "an int needs both min and max", "%s: parameter %q: %s is required", what, p.Name, k)
			}
		}
	}
}

func (d *decoder) dir(n *yaml.Node, what, p string) bool {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		d.errAt(n, "create it or fix the path", "%s: %s: %s", what, show(p), osReason(err))
	case !fi.IsDir():
		d.errAt(n, "", "%s: %s is not a directory", what, show(p))
	default:
		return true
	}
	return false
}

func (d *decoder) executable(n *yaml.Node, what, p string) {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		d.errAt(n, "install it or fix the path", "%s: argv[0] %s: %s", what, show(p), osReason(err))
	case !fi.Mode().IsRegular():
		d.errAt(n, "", "%s: argv[0] %s is not a regular file", what, show(p))
	case fi.Mode().Perm()&0o111 == 0:
		d.errAt(n, "", "%s: argv[0] %s is not executable", what, show(p))
	}
}

func osReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func (d *decoder) sandboxChecks(cs *cmdSchema, what string) {
	s := &cs.cmd.Sandbox
	if s.Disabled {
		return
	}
	what += ".sandbox"
	at := func(k string) *yaml.Node {
		if n := cs.sbox[k]; n != nil {
			return n
		}
		if n := cs.at["sandbox"]; n != nil {
			return n
		}
		return cs.key
	}
	for _, l := range []struct {
		key   string
		paths []string
		dir   bool
	}{{"read", s.Read, false}, {"write", s.Write, true}} {
		for i, p := range l.paths {
			n := at(l.key)
			if seq := cs.sbox[l.key]; seq != nil && i < len(seq.Content) {
				n = seq.Content[i]
			}
			w := what + "." + l.key
			if !d.absPath(n, w, p, "") {
				continue
			}
			l.paths[i] = filepath.Clean(p)
			fi, err := os.Stat(p)
			switch {
			case err != nil && l.dir:
				d.dir(n, w, p)
			case err != nil:
				d.errAt(n, "create it or remove it from the list", "%s: %s: %s", w, show(p), osReason(err))
			case l.dir && !fi.IsDir() && fi.Mode()&os.ModeDevice == 0:
				d.dir(n, w, p)
			}
		}
	}
	// A socket may appear after the relay starts (its server restarts):
	// one that is missing now is a warning, and the command is refused
	// until it exists.
	for i, p := range s.Sockets {
		n := at("sockets")
		if seq := cs.sbox["sockets"]; seq != nil && i < len(seq.Content) {
			n = seq.Content[i]
		}
		if d.absPath(n, what+".sockets", p, "") {
			s.Sockets[i] = filepath.Clean(p)
		}
	}
	if s.Network && len(s.ConnectPorts) > 0 {
		d.errAt(at("connect_ports"), "network: true allows every port; drop one of them", "%s: network and connect_ports contradict each other", what)
	}
	if s.NoFile != 0 && s.NoFile < 16 {
		d.errAt(at("nofile"), "the sandbox itself needs 16", "%s.nofile %d is too low", what, s.NoFile)
	}
}

// node finds the value node a problem concerns: key's value, then down
// path (a string picks a mapping's key, and is the key node itself when
// last; an int picks a list's element). It stops where the file differs.
func (ps *paramSchema) node(key string, path []any) *yaml.Node {
	n := ps.at[key]
	for i, step := range path {
		if n == nil {
			return nil
		}
		switch step := step.(type) {
		case int:
			if n.Kind != yaml.SequenceNode || step >= len(n.Content) {
				return n
			}
			n = n.Content[step]
		case string:
			if n.Kind != yaml.MappingNode {
				return n
			}
			found := false
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == step {
					if i == len(path)-1 {
						return n.Content[j]
					}
					n, found = n.Content[j+1], true
					break
				}
			}
			if !found {
				return n
			}
		}
	}
	return n
}
