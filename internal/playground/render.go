package playground

import (
	"net/url"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// span is one piece of a message as the phone renders it: plain text (Kind
// "") or a formatted run holding more spans. The page turns a span into
// an element of a fixed kind and its Text into a text node, so nothing the
// bot sends is ever parsed as HTML by the browser.
type span struct {
	Kind string `json:"k,omitempty"`
	Text string `json:"t,omitempty"`
	// URL is set only on links, and only to an http or https URL.
	URL  string `json:"u,omitempty"`
	Kids []span `json:"c,omitempty"`
}

// kinds maps Telegram's entity types to the span kinds the page knows;
// a type not listed is shown as its plain text.
var kinds = map[string]string{
	"bold":                  "b",
	"italic":                "i",
	"underline":             "u",
	"strikethrough":         "s",
	"spoiler":               "spoiler",
	"code":                  "code",
	"pre":                   "pre",
	"text_link":             "a",
	"url":                   "a",
	"blockquote":            "quote",
	"expandable_blockquote": "quote",
	"bot_command":           "cmd",
	"mention":               "mention",
	"text_mention":          "mention",
	"hashtag":               "tag",
	"cashtag":               "tag",
	"email":                 "tag",
	"phone_number":          "tag",
	"custom_emoji":          "emoji",
}

// maxEntities bounds the entities rendered: Telegram allows 100 per
// message; the rest are shown as plain text.
const maxEntities = 1000

// node is an entity placed in the text, in UTF-16 units.
type node struct {
	start, end int
	kind, url  string
	kids       []*node
}

// render turns a message's text and its entities (offsets and lengths in
// UTF-16 code units, as the Bot API counts them) into spans. Whatever the
// entities say, the spans' texts concatenate to exactly text (made valid
// UTF-8): an entity past the end is clipped, one that would split a
// character is widened to whole characters, and one that overlaps another
// without nesting is cut at its parent's end.
func render(text string, ents []fakebotapi.Entity) []span {
	text = strings.ToValidUTF8(text, "\uFFFD")
	if text == "" {
		return nil
	}
	u := utf16.Encode([]rune(text))
	n := len(u)
	// within reports whether i falls between the two halves of a
	// surrogate pair, where no boundary may lie.
	within := func(i int) bool {
		return i > 0 && i < n && u[i] >= 0xDC00 && u[i] <= 0xDFFF && u[i-1] >= 0xD800 && u[i-1] <= 0xDBFF
	}
	var placed []*node
	for i, e := range ents {
		if i == maxEntities {
			break
		}
		k, ok := kinds[e.Type]
		if !ok || e.Length <= 0 || e.Offset < 0 || e.Offset >= n {
			continue
		}
		start, end := e.Offset, e.Offset+e.Length
		if end > n || end < start { // end < start: the sum overflowed
			end = n
		}
		if within(start) {
			start--
		}
		if within(end) {
			end++
		}
		nd := &node{start: start, end: end, kind: k}
		if k == "a" {
			link := e.URL
			if e.Type == "url" {
				// A bare "example.org" is a link too, to its http URL.
				link = string(utf16.Decode(u[start:end]))
				if !strings.Contains(link, "://") {
					link = "http://" + link
				}
			}
			nd.url = safeURL(link)
		}
		placed = append(placed, nd)
	}
	// Outer entities first: by start, then the longer one.
	sort.SliceStable(placed, func(i, j int) bool {
		if placed[i].start != placed[j].start {
			return placed[i].start < placed[j].start
		}
		return placed[i].end > placed[j].end
	})
	root := &node{start: 0, end: n}
	stack := []*node{root}
	for _, nd := range placed {
		for len(stack) > 1 && nd.start >= stack[len(stack)-1].end {
			stack = stack[:len(stack)-1]
		}
		top := stack[len(stack)-1]
		if nd.end > top.end {
			nd.end = top.end
		}
		if nd.start >= nd.end {
			continue
		}
		top.kids = append(top.kids, nd)
		stack = append(stack, nd)
	}
	return spansOf(u, root)
}

// spansOf renders the text of nd's range with its children.
func spansOf(u []uint16, nd *node) []span {
	var out []span
	plain := func(a, b int) {
		if a < b {
			out = append(out, span{Text: string(utf16.Decode(u[a:b]))})
		}
	}
	pos := nd.start
	for _, k := range nd.kids {
		plain(pos, k.start)
		out = append(out, span{Kind: k.kind, URL: k.url, Kids: spansOf(u, k)})
		pos = k.end
	}
	plain(pos, nd.end)
	return out
}

// flatten is the text spans show, for tests and the page's plain copies.
func flatten(ss []span) string {
	var b strings.Builder
	var walk func([]span)
	walk = func(ss []span) {
		for _, s := range ss {
			b.WriteString(s.Text)
			walk(s.Kids)
		}
	}
	walk(ss)
	return b.String()
}

// safeURL is link when it is an absolute http or https URL the browser may
// open, else "": a javascript:, data: or file: link from a message must
// never become clickable in the page.
func safeURL(link string) string {
	if len(link) > 2048 || !utf8.ValidString(link) {
		return ""
	}
	u, err := url.Parse(link)
	if err != nil || u.Host == "" {
		return ""
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return ""
	}
	return u.String()
}

// plainText is text as one span, for the owner's own messages.
func plainText(text string) []span {
	text = strings.ToValidUTF8(text, "\uFFFD")
	if text == "" {
		return nil
	}
	return []span{{Text: text}}
}
