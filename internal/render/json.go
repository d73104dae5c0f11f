package render

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds how deeply a JSON value may nest. Device state is a few
// levels deep; a bound keeps every recursive walk below (the size guard,
// the encoder, gojq's own comparisons) far from the goroutine stack limit.
const maxDepth = 256

// decoder is a single-pass JSON decoder into the values gojq works on:
// nil, bool, float64, string, []any and map[string]any. It exists because
// the command's output is untrusted and large: it reads RFC 8259 JSON
// exactly (encoding/json is the reference, see FuzzDecode), refuses
// nesting beyond maxDepth, and counts what it builds, so that a hostile
// output costs at most Limits.Input bytes and a known number of values.
// It is about three times faster than encoding/json into any, which
// matters for the 20 ms budget of a 1 MiB output.
type decoder struct {
	b     []byte
	i     int
	depth int
	// keys interns object keys: they repeat across the objects of an
	// output (every Home Assistant state has the same dozen), and one
	// string per distinct key instead of one per occurrence spares most
	// of the decoder's allocations. Bounded, so that hostile keys cost
	// what any string does.
	keys map[string]string
}

// The interning bounds: keys longer than maxInternedKey, or beyond
// maxInternedKeys distinct ones, are decoded as any string is.
const (
	maxInternedKey  = 64
	maxInternedKeys = 1024
)

// errSyntax is the one decoding error: where, not what, is what the owner
// needs to see the output is not JSON.
type syntaxError struct{ off int }

func (e *syntaxError) Error() string { return fmt.Sprintf("not JSON (at byte %d)", e.off) }

var errTooDeep = errors.New("JSON nested deeper than 256 levels")

// next decodes the next value of a stream of JSON values (what jq reads),
// and reports done at the end of the input.
func (d *decoder) next() (v any, done bool, err error) {
	d.space()
	if d.i >= len(d.b) {
		return nil, true, nil
	}
	v, err = d.value()
	if err != nil {
		return nil, false, err
	}
	// Like encoding/json's Decoder (and jq), values need no separator:
	// "[1][2]" and "00" are two values each; "1x" fails at the "x".
	return v, false, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (d *decoder) space() {
	for d.i < len(d.b) && isSpace(d.b[d.i]) {
		d.i++
	}
}

func (d *decoder) value() (any, error) {
	if d.i >= len(d.b) {
		return nil, &syntaxError{d.i}
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		return d.str()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, &syntaxError{d.i}
}

func (d *decoder) literal(s string) error {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return &syntaxError{d.i}
	}
	d.i += len(s)
	return nil
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return errTooDeep
	}
	return nil
}

func (d *decoder) object() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++ // {
	m := map[string]any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		d.depth--
		return m, nil
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, &syntaxError{d.i}
		}
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, &syntaxError{d.i}
		}
		d.i++
		d.space()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m[k] = v // a repeated key keeps the last value, as encoding/json and jq do
		d.space()
		if d.i >= len(d.b) {
			return nil, &syntaxError{d.i}
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			d.depth--
			return m, nil
		default:
			return nil, &syntaxError{d.i}
		}
	}
}

func (d *decoder) array() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++ // [
	a := []any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		d.depth--
		return a, nil
	}
	for {
		d.space()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.space()
		if d.i >= len(d.b) {
			return nil, &syntaxError{d.i}
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			d.depth--
			return a, nil
		default:
			return nil, &syntaxError{d.i}
		}
	}
}

// number reads the RFC 8259 number grammar exactly and converts it as
// encoding/json does (strconv.ParseFloat); a number outside float64's
// range is an error there, and here.
func (d *decoder) number() (any, error) {
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.i >= len(d.b) {
		return nil, &syntaxError{d.i}
	}
	simple := true
	switch {
	case d.b[d.i] == '0':
		d.i++
	case d.b[d.i] >= '1' && d.b[d.i] <= '9':
		digits()
	default:
		return nil, &syntaxError{d.i}
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		simple = false
		d.i++
		if digits() == 0 {
			return nil, &syntaxError{d.i}
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		simple = false
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, &syntaxError{d.i}
		}
	}
	lit := d.b[start:d.i]
	// Integers of up to 15 digits are exact in a float64: no string.
	if simple && len(lit) <= 15 {
		neg := lit[0] == '-'
		if neg {
			lit = lit[1:]
		}
		var n int64
		for _, c := range lit {
			n = n*10 + int64(c-'0')
		}
		if neg {
			if n == 0 {
				return math.Copysign(0, -1), nil
			}
			n = -n
		}
		return float64(n), nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return nil, &syntaxError{start}
	}
	return f, nil
}

// str reads a string. Invalid UTF-8 and lone surrogates become U+FFFD, as
// encoding/json makes them; control characters must be escaped.
// key decodes an object key at d.i, interned when it is short and
// plain (no escapes): a key met before costs a map lookup, which does not
// allocate, instead of a new string.
func (d *decoder) key() (string, error) {
	for j := d.i + 1; j < len(d.b) && j-d.i <= maxInternedKey+1; j++ {
		c := d.b[j]
		if c == '"' {
			// Only a key str accepted (valid UTF-8) is ever interned, so a
			// hit is one too.
			if k, ok := d.keys[string(d.b[d.i+1:j])]; ok {
				d.i = j + 1
				return k, nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	k, err := d.str()
	if err == nil && len(k) <= maxInternedKey && len(d.keys) < maxInternedKeys {
		if d.keys == nil {
			d.keys = make(map[string]string)
		}
		d.keys[k] = k
	}
	return k, err
}

func (d *decoder) str() (string, error) {
	start := d.i
	d.i++ // "
	// Fast path: no escapes and valid ASCII or UTF-8.
	j := d.i
	for j < len(d.b) {
		c := d.b[j]
		if c == '"' {
			s := d.b[d.i:j]
			if utf8.Valid(s) {
				d.i = j + 1
				return string(s), nil
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
		j++
	}
	buf := make([]byte, 0, j-d.i+16)
	for {
		if d.i >= len(d.b) {
			return "", &syntaxError{start}
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(buf), nil
		case c < 0x20:
			return "", &syntaxError{d.i}
		case c == '\\':
			d.i++
			if d.i >= len(d.b) {
				return "", &syntaxError{d.i}
			}
			e := d.b[d.i]
			d.i++
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", &syntaxError{d.i}
				}
				if utf16.IsSurrogate(r) {
					// A high surrogate followed by an escaped low one is one
					// rune; anything else is U+FFFD.
					r2 := rune(-1)
					if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						var ok2 bool
						if r2, ok2 = d.hex4(); !ok2 {
							return "", &syntaxError{d.i}
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r, r2 = dec, -1
						} else {
							d.i = save // the second escape stands alone
							r2 = -1
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", &syntaxError{d.i - 1}
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, "\ufffd"...)
			} else {
				buf = append(buf, d.b[d.i:d.i+size]...)
			}
			d.i += size
		}
	}
}

func (d *decoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}
