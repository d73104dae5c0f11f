package fakebotapi

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Entity is a Telegram MessageEntity: offsets and lengths are in UTF-16
// code units of the parsed text, as the Bot API counts them.
type Entity struct {
	Type          string `json:"type"`
	Offset        int    `json:"offset"`
	Length        int    `json:"length"`
	URL           string `json:"url,omitempty"`
	Language      string `json:"language,omitempty"`
	CustomEmojiID string `json:"custom_emoji_id,omitempty"`
	User          *User  `json:"user,omitempty"`
}

// ParseError is an entity parse failure. Error() is the reason in
// Telegram's words; the Bot API description is "Bad Request: can't parse
// entities: " followed by it.
type ParseError struct {
	Reason string
}

func (e *ParseError) Error() string { return e.Reason }

func parseErrorf(format string, args ...any) error {
	return &ParseError{Reason: fmt.Sprintf(format, args...)}
}

// ParseHTML parses text with parse_mode HTML the way the Bot API does (a
// port of tdlib's parse_html), with one deliberate strictness: an "&" that
// does not start a known character reference is an error here, where
// Telegram keeps it literally. Output that reaches Telegram unescaped is a
// bug in the sender even when Telegram tolerates it ("&lt" in command
// output would be shown as "<"), so the fake refuses it. ParseHTMLLenient
// is exactly Telegram's behaviour.
//
// It returns the plain text and its entities. The caller must have checked
// that text is valid UTF-8.
func ParseHTML(text string) (string, []Entity, error) { return parseHTML(text, true) }

// ParseHTMLLenient is ParseHTML without the strictness about "&".
func ParseHTMLLenient(text string) (string, []Entity, error) { return parseHTML(text, false) }

type openTag struct {
	name     string
	arg      string
	utf16    int // entity offset in UTF-16 units
	bytePos  int // entity start in the result, in bytes
	expanded bool
}

// htmlSpace is tdlib's is_space: NUL counts, because tdlib reads its input
// as a NUL-terminated string and NUL is where a tag stops.
func htmlSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 || c == '\v'
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

var htmlTags = map[string]bool{
	"a": true, "b": true, "strong": true, "i": true, "em": true, "s": true, "strike": true,
	"del": true, "u": true, "ins": true, "tg-spoiler": true, "tg-emoji": true, "span": true,
	"pre": true, "code": true, "blockquote": true,
}

func parseHTML(text string, strict bool) (string, []Entity, error) {
	// at reads like tdlib's CSlice: 0 past the end.
	at := func(i int) byte {
		if i < len(text) {
			return text[i]
		}
		return 0
	}
	var (
		out      strings.Builder
		entities []Entity
		nested   []openTag
		u16      int
	)
	out.Grow(len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '&' {
			if r, next := decodeHTMLEntity(text, i); r != 0 {
				out.WriteRune(r)
				u16 += utf16Len(r)
				i = next - 1
				continue
			}
			if strict {
				return "", nil, parseErrorf("Unescaped \"&\" at byte offset %d", i)
			}
		}
		if c != '<' {
			out.WriteByte(c)
			if c < 0x80 || c >= 0xc0 {
				u16++
				if c >= 0xf0 {
					u16++
				}
			}
			continue
		}

		begin := i
		i++
		if at(i) != '/' {
			for !htmlSpace(at(i)) && at(i) != '>' {
				i++
			}
			if at(i) == 0 {
				return "", nil, parseErrorf("Unclosed start tag at byte offset %d", begin)
			}
			name := strings.ToLower(text[begin+1 : i])
			if !htmlTags[name] {
				return "", nil, parseErrorf("Unsupported start tag \"%s\" at byte offset %d", name, begin)
			}
			var arg string
			expandable := false
			for at(i) != '>' {
				for at(i) != 0 && htmlSpace(at(i)) {
					i++
				}
				if at(i) == '>' {
					break
				}
				attrBegin := i
				for !htmlSpace(at(i)) && at(i) != '=' && at(i) != '>' {
					i++
				}
				attr := text[attrBegin:i]
				if attr == "" {
					return "", nil, parseErrorf("Empty attribute name in the tag \"%s\" at byte offset %d", name, begin)
				}
				for at(i) != 0 && htmlSpace(at(i)) {
					i++
				}
				if at(i) != '=' {
					if name == "blockquote" && attr == "expandable" {
						expandable = true
						continue
					}
					return "", nil, parseErrorf("Expected equal sign in declaration of an attribute of the tag \"%s\" at byte offset %d", name, begin)
				}
				i++
				for at(i) != 0 && htmlSpace(at(i)) {
					i++
				}
				if at(i) == 0 {
					return "", nil, parseErrorf("Unclosed start tag \"%s\" at byte offset %d", name, begin)
				}
				var value strings.Builder
				if q := at(i); q != '\'' && q != '"' {
					// A name token: letters, digits, periods, hyphens.
					tokenBegin := i
					for isAlpha(at(i)) || isDigit(at(i)) || at(i) == '.' || at(i) == '-' {
						i++
					}
					value.WriteString(strings.ToLower(text[tokenBegin:i]))
					if !htmlSpace(at(i)) && at(i) != '>' {
						return "", nil, parseErrorf("Unexpected end of name token at byte offset %d", tokenBegin)
					}
				} else {
					i++
					for at(i) != q && at(i) != 0 {
						if at(i) == '&' {
							if r, next := decodeHTMLEntity(text, i); r != 0 {
								value.WriteRune(r)
								i = next
								continue
							}
							if strict {
								return "", nil, parseErrorf("Unescaped \"&\" at byte offset %d", i)
							}
						}
						value.WriteByte(at(i))
						i++
					}
					if at(i) == q {
						i++
					}
				}
				if at(i) == 0 {
					return "", nil, parseErrorf("Unclosed start tag at byte offset %d", begin)
				}
				v := value.String()
				switch {
				case name == "a" && attr == "href":
					arg = v
				case name == "code" && attr == "class" && strings.HasPrefix(v, "language-"):
					arg = v[len("language-"):]
				case name == "span" && attr == "class" && strings.HasPrefix(v, "tg-"):
					arg = v[len("tg-"):]
				case name == "tg-emoji" && attr == "emoji-id":
					arg = v
				case name == "blockquote" && attr == "expandable":
					expandable = true
				}
			}
			if name == "span" && arg != "spoiler" {
				return "", nil, parseErrorf("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", begin)
			}
			nested = append(nested, openTag{name: name, arg: arg, utf16: u16, bytePos: out.Len(), expanded: expandable})
			continue
		}

		// An end tag.
		if len(nested) == 0 {
			return "", nil, parseErrorf("Unexpected end tag at byte offset %d", begin)
		}
		for !htmlSpace(at(i)) && at(i) != '>' {
			i++
		}
		endName := text[begin+2 : i]
		for htmlSpace(at(i)) && at(i) != 0 {
			i++
		}
		if at(i) != '>' {
			return "", nil, parseErrorf("Unclosed end tag at byte offset %d", begin)
		}
		top := nested[len(nested)-1]
		if endName != "" && endName != top.name {
			return "", nil, parseErrorf("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", begin, top.name, endName)
		}
		if u16 > top.utf16 {
			var err error
			entities, err = closeEntity(entities, top, u16, out.String())
			if err != nil {
				return "", nil, err
			}
		}
		nested = nested[:len(nested)-1]
	}
	if len(nested) > 0 {
		return "", nil, parseErrorf("Can't find end tag corresponding to start tag \"%s\"", nested[len(nested)-1].name)
	}
	sortEntities(entities)
	return out.String(), entities, nil
}

// closeEntity appends the entity a closed tag makes.
func closeEntity(entities []Entity, top openTag, u16 int, result string) ([]Entity, error) {
	off, n := top.utf16, u16-top.utf16
	add := func(typ string) []Entity {
		return append(entities, Entity{Type: typ, Offset: off, Length: n})
	}
	last := func() *Entity {
		if len(entities) == 0 {
			return nil
		}
		e := &entities[len(entities)-1]
		if e.Offset == off && e.Length == n {
			return e
		}
		return nil
	}
	switch top.name {
	case "b", "strong":
		return add("bold"), nil
	case "i", "em":
		return add("italic"), nil
	case "u", "ins":
		return add("underline"), nil
	case "s", "strike", "del":
		return add("strikethrough"), nil
	case "tg-spoiler", "span":
		return add("spoiler"), nil
	case "blockquote":
		if top.expanded {
			return add("expandable_blockquote"), nil
		}
		return add("blockquote"), nil
	case "tg-emoji":
		id, err := strconv.ParseInt(top.arg, 10, 64)
		if err != nil || id == 0 {
			return nil, &ParseError{Reason: "Invalid custom emoji identifier specified"}
		}
		return append(entities, Entity{Type: "custom_emoji", Offset: off, Length: n, CustomEmojiID: top.arg}), nil
	case "a":
		link := top.arg
		if link == "" {
			link = result[top.bytePos:]
		}
		if id, ok := userLink(link); ok {
			return append(entities, Entity{Type: "text_mention", Offset: off, Length: n, User: &User{ID: id}}), nil
		}
		if u, ok := checkLink(link); ok {
			return append(entities, Entity{Type: "text_link", Offset: off, Length: n, URL: u}), nil
		}
		return entities, nil // Telegram drops a link it cannot use, silently
	case "pre":
		if e := last(); e != nil && e.Type == "code" && e.Language != "" {
			e.Type = "pre"
			return entities, nil
		}
		return add("pre"), nil
	case "code":
		if e := last(); e != nil && e.Type == "pre" && top.arg != "" {
			e.Language = top.arg
			return entities, nil
		}
		return append(entities, Entity{Type: "code", Offset: off, Length: n, Language: top.arg}), nil
	}
	return entities, nil
}

// sortEntities orders entities as the Bot API returns them (by offset,
// longer first) and drops the language a lone <code class> carries: only
// pre has one in the Bot API.
func sortEntities(es []Entity) {
	for i := range es {
		if es[i].Type == "code" {
			es[i].Language = ""
		}
	}
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Offset != es[j].Offset {
			return es[i].Offset < es[j].Offset
		}
		return es[i].Length > es[j].Length
	})
}

// decodeHTMLEntity decodes the character reference at text[pos], which is
// '&'. It returns 0 when there is none, else the rune and the position
// after it. As in tdlib the ';' is optional.
func decodeHTMLEntity(text string, pos int) (rune, int) {
	at := func(i int) byte {
		if i < len(text) {
			return text[i]
		}
		return 0
	}
	end := pos + 1
	var r rune
	if at(pos+1) == '#' {
		end++
		if at(pos+2) == 'x' {
			end++
			for isHex(at(end)) {
				d, _ := strconv.ParseUint(string(at(end)), 16, 8)
				r = r*16 + rune(d)
				end++
				if r >= 0x10ffff {
					return 0, pos
				}
			}
		} else {
			for isDigit(at(end)) {
				r = r*10 + rune(at(end)-'0')
				end++
				if r >= 0x10ffff {
					return 0, pos
				}
			}
		}
		if r == 0 || end-pos >= 10 || (r >= 0xd800 && r <= 0xdfff) {
			return 0, pos
		}
	} else {
		for isAlpha(at(end)) {
			end++
		}
		switch text[pos+1 : end] {
		case "lt":
			r = '<'
		case "gt":
			r = '>'
		case "amp":
			r = '&'
		case "quot":
			r = '"'
		default:
			return 0, pos
		}
	}
	if at(end) == ';' {
		end++
	}
	return r, end
}

// userLink recognises tg://user?id=N, which makes a text_mention.
func userLink(link string) (int64, bool) {
	rest, ok := strings.CutPrefix(link, "tg://user?id=")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}

// checkLink approximates tdlib's check_link: http(s), tg and ton links,
// with http:// assumed when there is no scheme.
func checkLink(link string) (string, bool) {
	link = strings.TrimSpace(link)
	if link == "" || !utf8.ValidString(link) {
		return "", false
	}
	if !strings.Contains(link, "://") && !strings.HasPrefix(strings.ToLower(link), "tg:") {
		link = "http://" + link
	}
	u, err := url.Parse(link)
	if err != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return "", false
		}
	case "tg", "ton", "tonsite":
	default:
		return "", false
	}
	return link, true
}

// utf16Len is how many UTF-16 code units r takes.
func utf16Len(r rune) int {
	if r > 0xffff {
		return 2
	}
	return 1
}

// UTF16Len is the length of s in UTF-16 code units, the unit of every
// Telegram length limit. An invalid byte counts as one unit (U+FFFD).
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16Len(r)
	}
	return n
}
