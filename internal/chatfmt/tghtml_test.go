package chatfmt

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// checkHTML parses s the way Telegram's HTML parse mode does, as far as the
// messages this package emits go, and returns the length of the parsed text
// in UTF-16 code units. It rejects what Telegram rejects ("can't parse
// entities"): a bare <, > or &, an unknown tag, an attribute, an unknown
// named entity, unbalanced or crossed tags. It also rejects invalid UTF-8
// and control characters other than newline and tab, which Telegram either
// refuses or silently mangles.
func checkHTML(s string) (int, error) {
	if !utf8.ValidString(s) {
		return 0, fmt.Errorf("invalid UTF-8")
	}
	allowed := map[string]bool{"pre": true, "b": true, "i": true, "code": true}
	var stack []string
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return 0, fmt.Errorf("bare < at %d", i)
			}
			tag := s[i+1 : i+end]
			closing := strings.HasPrefix(tag, "/")
			name := strings.TrimPrefix(tag, "/")
			if !allowed[name] {
				return 0, fmt.Errorf("unsupported tag %q at %d", tag, i)
			}
			if closing {
				if len(stack) == 0 || stack[len(stack)-1] != name {
					return 0, fmt.Errorf("unbalanced </%s> at %d", name, i)
				}
				stack = stack[:len(stack)-1]
			} else {
				if len(stack) > 0 && stack[len(stack)-1] == "pre" {
					return 0, fmt.Errorf("tag <%s> inside <pre> at %d", name, i)
				}
				stack = append(stack, name)
			}
			i += end + 1
		case '>':
			return 0, fmt.Errorf("bare > at %d", i)
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 || end > 10 {
				return 0, fmt.Errorf("bare & at %d", i)
			}
			ent := s[i+1 : i+end]
			switch {
			case ent == "lt" || ent == "gt" || ent == "amp" || ent == "quot":
				n++
			case strings.HasPrefix(ent, "#x") || strings.HasPrefix(ent, "#X"):
				v, err := strconv.ParseUint(ent[2:], 16, 32)
				if err != nil || !utf8.ValidRune(rune(v)) {
					return 0, fmt.Errorf("bad entity &%s; at %d", ent, i)
				}
				n += len(utf16.Encode([]rune{rune(v)}))
			case strings.HasPrefix(ent, "#"):
				v, err := strconv.ParseUint(ent[1:], 10, 32)
				if err != nil || !utf8.ValidRune(rune(v)) {
					return 0, fmt.Errorf("bad entity &%s; at %d", ent, i)
				}
				n += len(utf16.Encode([]rune{rune(v)}))
			default:
				return 0, fmt.Errorf("unknown entity &%s; at %d", ent, i)
			}
			i += end + 1
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				return 0, fmt.Errorf("control character %U at %d", r, i)
			}
			n += len(utf16.Encode([]rune{r}))
			i += size
		}
	}
	if len(stack) != 0 {
		return 0, fmt.Errorf("unclosed <%s>", stack[len(stack)-1])
	}
	return n, nil
}

// checkMessage asserts everything a rendered message must satisfy.
func checkMessage(s string) error {
	n, err := checkHTML(s)
	if err != nil {
		return err
	}
	if n > MaxMessage {
		return fmt.Errorf("rendered text is %d UTF-16 units, over %d", n, MaxMessage)
	}
	return nil
}
