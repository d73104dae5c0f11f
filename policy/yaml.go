package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree, so that every value keeps its line and
// column, and collects every error instead of stopping at the first.
type decoder struct {
	file        string
	errs        ErrorList
	dropMissing bool
	// decoded is set once decoding ends and defaulting and cross-checks
	// begin; from then on a node that already failed to decode gets no
	// second, derived error (its field holds a zero value, not the file's).
	decoded bool
	failed  map[*yaml.Node]bool
}

func (d *decoder) errAt(n *yaml.Node, hint, format string, a ...any) {
	if d.failed == nil {
		d.failed = map[*yaml.Node]bool{}
	}
	if n != nil {
		if d.decoded && d.failed[n] {
			return
		}
		if !d.decoded {
			d.failed[n] = true
		}
	}
	e := &Error{File: d.file, Msg: fmt.Sprintf(format, a...), Hint: hint}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// field is one key of a YAML mapping the schema knows.
type field struct {
	name string
	set  func(v *yaml.Node)
}

// mapping decodes n as a mapping whose keys must all be among fields. It
// reports unknown keys (with the closest known key as a hint), duplicate
// keys and non-string keys, and returns the value node of each key seen.
func (d *decoder) mapping(n *yaml.Node, what string, fields []field) map[string]*yaml.Node {
	seen := map[string]*yaml.Node{}
	if !d.kind(n, yaml.MappingNode, what, "a mapping") {
		return seen
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, what)
		if !ok {
			continue
		}
		if _, dup := seen[key]; dup {
			d.errAt(k, "", "duplicate key %q in %s", key, what)
			continue
		}
		seen[key] = v
		var f *field
		for j := range fields {
			if fields[j].name == key {
				f = &fields[j]
			}
		}
		if f == nil {
			d.errAt(k, didYouMean(key, names), "unknown key %s", show(key))
			continue
		}
		if d.usable(v, what+"."+key) {
			f.set(v)
		}
	}
	return seen
}

// key returns a mapping key, which must be a plain string scalar.
func (d *decoder) key(k *yaml.Node, what string) (string, bool) {
	if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
		d.errAt(k, "", "%s: keys must be strings", what)
		return "", false
	}
	return k.Value, true
}

// usable refuses aliases and empty values before any typed decoding.
func (d *decoder) usable(v *yaml.Node, what string) bool {
	if v.Kind == yaml.AliasNode {
		d.errAt(v, "write the value out", "%s: YAML aliases are not supported", what)
		return false
	}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		d.errAt(v, "", "%s: missing value", what)
		return false
	}
	return true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!bool":
			return "a boolean"
		case "!!float":
			return "a number"
		case "!!null":
			return "nothing"
		}
		return "a scalar"
	}
	return "nothing"
}

func (d *decoder) kind(n *yaml.Node, k yaml.Kind, what, want string) bool {
	if n.Kind == k {
		return true
	}
	d.errAt(n, "", "%s: want %s, got %s", what, want, kindName(n))
	return false
}

func (d *decoder) scalar(n *yaml.Node, what, want, tag string) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == tag {
		return true
	}
	hint := ""
	if tag == "!!str" && n.Kind == yaml.ScalarNode {
		hint = fmt.Sprintf("quote it: %q", n.Value)
	}
	d.errAt(n, hint, "%s: want %s, got %s", what, want, kindName(n))
	return false
}

func (d *decoder) str(n *yaml.Node, what string, dst *string) {
	if d.scalar(n, what, "a string", "!!str") {
		*dst = n.Value
	}
}

// text accepts any non-null scalar as its literal text: enum values,
// defaults and env values are strings, but "values: [1, 2]" or
// "DEBUG: true" mean the obvious text.
func (d *decoder) text(n *yaml.Node, what string, dst *string) bool {
	if n.Kind == yaml.ScalarNode {
		switch n.Tag {
		case "!!str", "!!int", "!!float", "!!bool":
			*dst = n.Value
			return true
		}
	}
	d.errAt(n, "", "%s: want a string, got %s", what, kindName(n))
	return false
}

func (d *decoder) boolean(n *yaml.Node, what string, dst *bool) {
	if !d.scalar(n, what, "true or false", "!!bool") {
		return
	}
	b, err := strconv.ParseBool(strings.ToLower(n.Value))
	if err != nil {
		d.errAt(n, "", "%s: want true or false, got %s", what, show(n.Value))
		return
	}
	*dst = b
}

func (d *decoder) integer(n *yaml.Node, what string) (int64, bool) {
	if !d.scalar(n, what, "an integer", "!!int") {
		return 0, false
	}
	i, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil {
		d.errAt(n, "", "%s: %s is not a 64-bit integer", what, show(n.Value))
		return 0, false
	}
	return i, true
}

// count decodes a non-negative int that fits an int.
func (d *decoder) count(n *yaml.Node, what string, dst *int) {
	i, ok := d.integer(n, what)
	if !ok {
		return
	}
	if i < 0 || i > math.MaxInt32 {
		d.errAt(n, "", "%s: %d is out of range", what, i)
		return
	}
	*dst = int(i)
}

func (d *decoder) unsigned(n *yaml.Node, what string, dst *uint64) {
	i, ok := d.integer(n, what)
	if !ok {
		return
	}
	if i < 0 {
		d.errAt(n, "", "%s: must not be negative", what)
		return
	}
	*dst = uint64(i)
}

// duration decodes a Go duration string ("10s", "1m30s"). A bare number
// is refused: "timeout: 10" is ambiguous.
func (d *decoder) duration(n *yaml.Node, what string, dst *time.Duration) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		d.errAt(n, fmt.Sprintf("write a duration with a unit, e.g. \"%ss\"", n.Value), "%s: want a duration, got a bare number", what)
		return
	}
	if !d.scalar(n, what, "a duration", "!!str") {
		return
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errAt(n, `use a Go duration such as "30s", "5m" or "1h30m"`, "%s: invalid duration %s", what, show(n.Value))
		return
	}
	if v < 0 {
		d.errAt(n, "", "%s: must not be negative", what)
		return
	}
	*dst = v
}

// sizeUnits are the suffixes a size may carry, longest first.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize parses a byte size: a plain integer, or an integer with one of
// the units B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
// (powers of 1024), with no space: "64MiB", "1MB", "4096".
func ParseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("invalid size %s", show(s))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %s is too large", show(s))
	}
	return n * mult, nil
}

func (d *decoder) size(n *yaml.Node, what string, dst *int64) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		i, ok := d.integer(n, what)
		if !ok {
			return
		}
		if i < 0 {
			d.errAt(n, "", "%s: must not be negative", what)
			return
		}
		*dst = i
		return
	}
	if !d.scalar(n, what, "a size", "!!str") {
		return
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		d.errAt(n, `use bytes or a unit: B, KB, MB, GB, KiB, MiB, GiB, TiB, e.g. "64MiB"`, "%s: %v", what, err)
		return
	}
	*dst = v
}

// list decodes a sequence, calling each for every element.
func (d *decoder) list(n *yaml.Node, what string, each func(i int, v *yaml.Node)) {
	if !d.kind(n, yaml.SequenceNode, what, "a list") {
		return
	}
	for i, v := range n.Content {
		if d.usable(v, fmt.Sprintf("%s[%d]", what, i)) {
			each(i, v)
		}
	}
}

func (d *decoder) strings(n *yaml.Node, what string, dst *[]string) {
	var out []string
	d.list(n, what, func(i int, v *yaml.Node) {
		var s string
		d.str(v, fmt.Sprintf("%s[%d]", what, i), &s)
		out = append(out, s)
	})
	*dst = out
}
