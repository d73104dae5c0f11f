package fakebotapi

import (
	"strings"
)

// mdReserved are the characters MarkdownV2 reserves outside code.
const mdReserved = "_*[]()~`>#+-=|{}.!"

type mdOpen struct {
	typ    string // Telegram entity type
	name   string // tdlib's name, for errors
	utf16  int
	byteAt int // where the entity began in the input, for errors
	outPos int
	lang   string
}

// ParseMarkdownV2 parses text with parse_mode MarkdownV2. It follows
// tdlib's parse_markdown_v2 for escapes, bold, italic, underline,
// strikethrough, spoiler, code, pre, links and custom emoji, and the error
// texts; blockquotes are recognised only in their simple form (lines that
// start with ">"), without the expandable "**>" variant.
func ParseMarkdownV2(text string) (string, []Entity, error) {
	at := func(i int) byte {
		if i < len(text) {
			return text[i]
		}
		return 0
	}
	var (
		out      strings.Builder
		entities []Entity
		nested   []mdOpen
		u16      int
		quote    = -1 // UTF-16 start of an open blockquote, or -1
	)
	writeByte := func(c byte) {
		out.WriteByte(c)
		if c < 0x80 || c >= 0xc0 {
			u16++
			if c >= 0xf0 {
				u16++
			}
		}
	}
	inCode := func() bool {
		return len(nested) > 0 && (nested[len(nested)-1].typ == "code" || nested[len(nested)-1].typ == "pre")
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		lineStart := i == 0 || text[i-1] == '\n'
		if lineStart && quote >= 0 && c != '>' {
			if u16 > quote {
				entities = append(entities, Entity{Type: "blockquote", Offset: quote, Length: trimQuote(out.String(), u16, quote)})
			}
			quote = -1
		}
		if lineStart && c == '>' && !inCode() {
			if quote < 0 {
				quote = u16
			}
			continue
		}
		if c == '\\' && at(i+1) > 0 && at(i+1) <= 126 {
			i++
			writeByte(text[i])
			continue
		}
		if inCode() {
			if c != '`' {
				writeByte(c)
				continue
			}
		} else if !strings.ContainsRune(mdReserved, rune(c)) || c == 0 {
			writeByte(c)
			continue
		}

		end := false
		if len(nested) > 0 {
			switch top := nested[len(nested)-1]; top.typ {
			case "bold":
				end = c == '*'
			case "italic":
				end = c == '_' && at(i+1) != '_'
			case "code":
				end = c == '`'
			case "pre":
				end = c == '`' && at(i+1) == '`' && at(i+2) == '`'
			case "text_link", "custom_emoji":
				end = c == ']'
			case "underline":
				end = c == '_' && at(i+1) == '_'
			case "strikethrough":
				end = c == '~'
			case "spoiler":
				end = c == '|' && at(i+1) == '|'
			}
		}
		if !end {
			o := mdOpen{utf16: u16, byteAt: i, outPos: out.Len()}
			switch c {
			case '_':
				if at(i+1) == '_' {
					o.typ, o.name = "underline", "Underline"
					i++
				} else {
					o.typ, o.name = "italic", "Italic"
				}
			case '*':
				o.typ, o.name = "bold", "Bold"
			case '~':
				o.typ, o.name = "strikethrough", "Strikethrough"
			case '|':
				if at(i+1) != '|' {
					return "", nil, parseErrorf("Character '|' is reserved and must be escaped with the preceding '\\'")
				}
				o.typ, o.name = "spoiler", "Spoiler"
				i++
			case '[':
				o.typ, o.name = "text_link", "TextUrl"
			case '`':
				if at(i+1) == '`' && at(i+2) == '`' {
					o.typ, o.name = "pre", "Pre"
					i += 3
					langEnd := i
					for langEnd < len(text) && !htmlSpace(text[langEnd]) && text[langEnd] != '`' {
						langEnd++
					}
					if langEnd > i && at(langEnd) != '`' {
						o.lang = text[i:langEnd]
						i = langEnd
					}
					if at(i) == '\n' || at(i) == '\r' {
						if at(i) == '\r' && at(i+1) == '\n' {
							i++
						}
						// the newline after the language is not text
					} else {
						i--
					}
				} else {
					o.typ, o.name = "code", "Code"
				}
			case '!':
				if at(i+1) != '[' {
					return "", nil, parseErrorf("Character '!' is reserved and must be escaped with the preceding '\\'")
				}
				o.typ, o.name = "custom_emoji", "CustomEmoji"
				i++
			default:
				return "", nil, parseErrorf("Character '%c' is reserved and must be escaped with the preceding '\\'", c)
			}
			nested = append(nested, o)
			continue
		}

		top := nested[len(nested)-1]
		nested = nested[:len(nested)-1]
		e := Entity{Type: top.typ, Offset: top.utf16, Length: u16 - top.utf16}
		switch top.typ {
		case "underline", "spoiler":
			i++
		case "pre":
			i += 2
			e.Language = top.lang
		case "text_link", "custom_emoji":
			link := ""
			if at(i+1) == '(' {
				i += 2
				var b strings.Builder
				for i < len(text) && text[i] != ')' {
					if text[i] == '\\' && at(i+1) > 0 && at(i+1) <= 126 {
						i++
					}
					b.WriteByte(text[i])
					i++
				}
				if at(i) != ')' {
					return "", nil, parseErrorf("Can't find end of a url at byte offset %d", top.byteAt)
				}
				link = b.String()
			} else {
				link = out.String()[top.outPos:]
			}
			if top.typ == "custom_emoji" {
				if link == "" || !strings.HasPrefix(link, "tg://emoji?id=") {
					return "", nil, &ParseError{Reason: "Custom emoji entity must contain a tg://emoji URL"}
				}
				e.CustomEmojiID = strings.TrimPrefix(link, "tg://emoji?id=")
			} else if id, ok := userLink(link); ok {
				e.Type, e.User = "text_mention", &User{ID: id}
			} else if u, ok := checkLink(link); ok {
				e.URL = u
			} else {
				continue
			}
		}
		if e.Length > 0 {
			entities = append(entities, e)
		}
	}
	if len(nested) > 0 {
		top := nested[len(nested)-1]
		return "", nil, parseErrorf("Can't find end of %s entity at byte offset %d", top.name, top.byteAt)
	}
	if quote >= 0 && u16 > quote {
		entities = append(entities, Entity{Type: "blockquote", Offset: quote, Length: trimQuote(out.String(), u16, quote)})
	}
	sortEntities(entities)
	return out.String(), entities, nil
}

// trimQuote is the length of a blockquote ending at u16, without the
// newline that ended it.
func trimQuote(s string, u16, start int) int {
	n := u16 - start
	if strings.HasSuffix(s, "\n") && n > 1 {
		n--
	}
	return n
}

// ParseMarkdown parses the legacy parse_mode Markdown, following tdlib's
// parse_markdown: _italic_, *bold*, `code`, ```pre``` and [text](url), no
// nesting, and "\" escaping only those markers.
func ParseMarkdown(text string) (string, []Entity, error) {
	at := func(i int) byte {
		if i < len(text) {
			return text[i]
		}
		return 0
	}
	var (
		out      strings.Builder
		entities []Entity
		u16      int
	)
	add := func(c byte) {
		out.WriteByte(c)
		if c < 0x80 || c >= 0xc0 {
			u16++
			if c >= 0xf0 {
				u16++
			}
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\\' && strings.IndexByte("_*`[", at(i+1)) >= 0 && at(i+1) != 0 {
			i++
			add(text[i])
			continue
		}
		if c != '_' && c != '*' && c != '`' && c != '[' {
			add(c)
			continue
		}
		begin := i
		end := c
		if c == '[' {
			end = ']'
		}
		i++
		pre, lang := false, ""
		if c == '`' && at(i) == '`' && at(i+1) == '`' {
			i += 2
			pre = true
			langEnd := i
			for langEnd < len(text) && !htmlSpace(text[langEnd]) && text[langEnd] != '`' {
				langEnd++
			}
			if langEnd > i && at(langEnd) != '`' {
				lang = text[i:langEnd]
				i = langEnd
			}
			if at(i) == '\n' {
				i++
			}
		}
		start := u16
		startByte := out.Len()
		for i < len(text) && (text[i] != end || (pre && !(at(i+1) == '`' && at(i+2) == '`'))) {
			add(text[i])
			i++
		}
		if i >= len(text) {
			return "", nil, parseErrorf("Can't find end of the entity starting at byte offset %d", begin)
		}
		e := Entity{Offset: start, Length: u16 - start}
		switch c {
		case '_':
			e.Type = "italic"
		case '*':
			e.Type = "bold"
		case '`':
			e.Type = "code"
			if pre {
				e.Type, e.Language = "pre", lang
				i += 2
			}
		case '[':
			link := ""
			if at(i+1) == '(' {
				j := i + 2
				for j < len(text) && text[j] != ')' {
					j++
				}
				if j < len(text) {
					link = text[i+2 : j]
					i = j
				}
			}
			if link == "" {
				link = out.String()[startByte:]
			}
			if id, ok := userLink(link); ok {
				e.Type, e.User = "text_mention", &User{ID: id}
			} else if u, ok := checkLink(link); ok {
				e.Type, e.URL = "text_link", u
			}
		}
		if e.Type != "" && e.Length > 0 {
			entities = append(entities, e)
		}
	}
	sortEntities(entities)
	return out.String(), entities, nil
}
