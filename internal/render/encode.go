package render

import (
	"fmt"
	"sort"
	"strings"

	"github.com/itchyny/gojq"
)

// output collects rendered text up to a byte limit. Results are written as
// jq -r writes them: a string as its text, anything else as indented JSON,
// one result per line.
type output struct {
	b     strings.Builder
	limit int
	n     int // results written
}

func (o *output) String() string { return o.b.String() }

func (o *output) over() error {
	return &Error{Reason: fmt.Sprintf("the rendered text is over %s", size(int64(o.limit))), Limit: true}
}

func (o *output) value(v any) error {
	if o.n > 0 {
		o.b.WriteByte('\n')
	}
	o.n++
	if s, ok := v.(string); ok {
		if o.b.Len()+len(s) > o.limit {
			return o.over()
		}
		o.b.WriteString(s)
		return nil
	}
	if err := writeJSON(&o.b, v, "\n", 0, o.limit); err != nil {
		return o.over()
	}
	return nil
}

// errFull stops writeJSON at its limit.
var errFull = &Error{Reason: "full"}

// writeJSON writes v as JSON, indented by two spaces per level when nl is
// "\n" (compact when nl is ""), with keys sorted as jq sorts them, and
// stops with errFull once b holds more than limit bytes. It never follows
// shared structure further than the limit allows, so a value built by
// sharing cannot make it work longer than its output.
func writeJSON(b *strings.Builder, v any, nl string, depth, limit int) error {
	if b.Len() > limit {
		return errFull
	}
	if depth > maxGuardDepth {
		return errFull
	}
	indent := func(d int) {
		if nl != "" {
			b.WriteString(nl)
			for range d {
				b.WriteString("  ")
			}
		}
	}
	switch v := v.(type) {
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			indent(depth + 1)
			if err := writeJSON(b, e, nl, depth+1, limit); err != nil {
				return err
			}
		}
		indent(depth)
		b.WriteByte(']')
	case map[string]any:
		if len(v) == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			indent(depth + 1)
			kb, _ := gojq.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			if nl != "" {
				b.WriteByte(' ')
			}
			if err := writeJSON(b, v[k], nl, depth+1, limit); err != nil {
				return err
			}
		}
		indent(depth)
		b.WriteByte('}')
	default:
		s, err := gojq.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(s)
	}
	if b.Len() > limit {
		return errFull
	}
	return nil
}
