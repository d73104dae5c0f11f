package fakebotapi

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"
)

func TestParseHTML(t *testing.T) {
	tests := []struct {
		name string
		in   string
		text string
		ents []Entity
		err  string
	}{
		{name: "plain", in: "hello", text: "hello"},
		{name: "bold", in: "<b>x</b>y", text: "xy", ents: []Entity{{Type: "bold", Offset: 0, Length: 1}}},
		{name: "strong em ins del", in: "<strong>a</strong><em>b</em><ins>c</ins><del>d</del>", text: "abcd",
			ents: []Entity{{Type: "bold", Length: 1}, {Type: "italic", Offset: 1, Length: 1}, {Type: "underline", Offset: 2, Length: 1}, {Type: "strikethrough", Offset: 3, Length: 1}}},
		{name: "upper-case start tag", in: "<B>x</b>", text: "x", ents: []Entity{{Type: "bold", Length: 1}}},
		{name: "entities", in: "&lt;&gt;&amp;&quot;", text: `<>&"`},
		{name: "semicolon optional", in: "&lt b", text: "< b"},
		{name: "numeric", in: "&#39;&#x41;&#128512;", text: "'A😀"},
		{name: "emoji offsets in UTF-16", in: "😀<b>x</b>", text: "😀x", ents: []Entity{{Type: "bold", Offset: 2, Length: 1}}},
		{name: "decoded emoji counts 2", in: "&#x1F600;<i>x</i>", text: "😀x", ents: []Entity{{Type: "italic", Offset: 2, Length: 1}}},
		{name: "pre with language", in: `<pre><code class="language-go">x</code></pre>`, text: "x", ents: []Entity{{Type: "pre", Length: 1, Language: "go"}}},
		{name: "pre alone", in: "<pre>a&lt;b</pre>", text: "a<b", ents: []Entity{{Type: "pre", Length: 3}}},
		{name: "code drops language", in: `<code class="language-go">x</code>`, text: "x", ents: []Entity{{Type: "code", Length: 1}}},
		{name: "link", in: `<a href="https://example.com/?a=1&amp;b=2">x</a>`, text: "x", ents: []Entity{{Type: "text_link", Length: 1, URL: "https://example.com/?a=1&b=2"}}},
		{name: "bad link dropped", in: `<a href="javascript:alert(1)">x</a>`, text: "x"},
		{name: "mention", in: `<a href="tg://user?id=42">x</a>`, text: "x", ents: []Entity{{Type: "text_mention", Length: 1, User: &User{ID: 42}}}},
		{name: "spoiler span", in: `<span class="tg-spoiler">x</span>`, text: "x", ents: []Entity{{Type: "spoiler", Length: 1}}},
		{name: "tg-spoiler", in: `<tg-spoiler>x</tg-spoiler>`, text: "x", ents: []Entity{{Type: "spoiler", Length: 1}}},
		{name: "blockquote expandable", in: `<blockquote expandable>x</blockquote>`, text: "x", ents: []Entity{{Type: "expandable_blockquote", Length: 1}}},
		{name: "tg-emoji", in: `<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>`, text: "👍", ents: []Entity{{Type: "custom_emoji", Length: 2, CustomEmojiID: "5368324170671202286"}}},
		{name: "empty entity vanishes", in: "<b></b>x", text: "x"},
		{name: "anonymous end tag", in: "<b>x</>", text: "x", ents: []Entity{{Type: "bold", Length: 1}}},
		{name: "nested sorted", in: "<b>a<i>b</i></b>", text: "ab", ents: []Entity{{Type: "bold", Length: 2}, {Type: "italic", Offset: 1, Length: 1}}},
		{name: "bare greater-than", in: "a > b", text: "a > b"},
		{name: "unquoted attribute", in: "<a href=example.com>x</a>", text: "x", ents: []Entity{{Type: "text_link", Length: 1, URL: "http://example.com"}}},

		{name: "unknown tag", in: "<foo>x</foo>", err: `Unsupported start tag "foo" at byte offset 0`},
		{name: "bare less-than", in: "a < b", err: `Unsupported start tag "" at byte offset 2`},
		{name: "less-than at end", in: "a <", err: "Unclosed start tag at byte offset 2"},
		{name: "unclosed start tag", in: "x<b", err: "Unclosed start tag at byte offset 1"},
		{name: "unclosed element", in: "<b>x", err: `Can't find end tag corresponding to start tag "b"`},
		{name: "mismatched", in: "<b><i>x</b></i>", err: `Unmatched end tag at byte offset 7, expected "</i>", found "</b>"`},
		{name: "upper-case end tag", in: "<b>x</B>", err: `Unmatched end tag at byte offset 4, expected "</b>", found "</B>"`},
		{name: "stray end tag", in: "x</b>", err: "Unexpected end tag at byte offset 1"},
		{name: "unclosed end tag", in: "<b>x</b", err: "Unclosed end tag at byte offset 4"},
		{name: "span without class", in: "<span>x</span>", err: `Tag "span" must have class "tg-spoiler" at byte offset 0`},
		{name: "attribute without value", in: "<a href>x</a>", err: `Expected equal sign in declaration of an attribute of the tag "a" at byte offset 0`},
		{name: "bad name token", in: "<a href=x/y>z</a>", err: "Unexpected end of name token at byte offset 8"},
		{name: "unterminated quote", in: `<a href="x>y`, err: "Unclosed start tag at byte offset 0"},
		{name: "bad emoji id", in: `<tg-emoji emoji-id="x">y</tg-emoji>`, err: "Invalid custom emoji identifier specified"},

		{name: "bare ampersand is refused", in: "AT&T", err: `Unescaped "&" at byte offset 2`},
		{name: "unknown named entity is refused", in: "&nbsp;", err: `Unescaped "&" at byte offset 0`},
		{name: "NUL reference is refused", in: "&#0;", err: `Unescaped "&" at byte offset 0`},
		{name: "surrogate reference is refused", in: "&#xD800;", err: `Unescaped "&" at byte offset 0`},
		{name: "bare ampersand in an attribute", in: `<a href="x&y">z</a>`, err: `Unescaped "&" at byte offset 10`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, ents, err := ParseHTML(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("got error %v (text %q), want %q", err, text, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want text %q", err, tt.text)
			}
			if text != tt.text {
				t.Errorf("got text %q, want %q", text, tt.text)
			}
			if !reflect.DeepEqual(ents, tt.ents) {
				t.Errorf("got entities %+v, want %+v", ents, tt.ents)
			}
		})
	}
}

// TestParseHTMLLenient pins what real Telegram does with the "&" the
// strict parser refuses: it keeps it as text.
func TestParseHTMLLenient(t *testing.T) {
	for in, want := range map[string]string{
		"AT&T":          "AT&T",
		"&nbsp;":        "&nbsp;",
		"&#0;":          "&#0;",
		"&amp;&foo":     "&&foo",
		"a&#1234567890": "a&#1234567890",
	} {
		got, _, err := ParseHTMLLenient(in)
		if err != nil || got != want {
			t.Errorf("ParseHTMLLenient(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseMarkdownV2(t *testing.T) {
	tests := []struct {
		in, text, err string
		ents          []Entity
	}{
		{in: "*b* _i_ __u__ ~s~ ||p||", text: "b i u s p", ents: []Entity{{Type: "bold", Length: 1}, {Type: "italic", Offset: 2, Length: 1}, {Type: "underline", Offset: 4, Length: 1}, {Type: "strikethrough", Offset: 6, Length: 1}, {Type: "spoiler", Offset: 8, Length: 1}}},
		{in: `a\.b\!`, text: "a.b!"},
		{in: "`x.y`", text: "x.y", ents: []Entity{{Type: "code", Length: 3}}},
		{in: "```go\nx\n```", text: "x\n", ents: []Entity{{Type: "pre", Length: 2, Language: "go"}}},
		{in: "[t](https://e.com/a\\)b)", text: "t", ents: []Entity{{Type: "text_link", Length: 1, URL: "https://e.com/a)b"}}},
		{in: "a.b", err: `Character '.' is reserved and must be escaped with the preceding '\'`},
		{in: "*open", err: "Can't find end of Bold entity at byte offset 0"},
		{in: "x |y", err: `Character '|' is reserved and must be escaped with the preceding '\'`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			text, ents, err := ParseMarkdownV2(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("got error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || text != tt.text || !reflect.DeepEqual(ents, tt.ents) {
				t.Fatalf("got %q %+v %v, want %q %+v", text, ents, err, tt.text, tt.ents)
			}
		})
	}
}

func TestParseMarkdown(t *testing.T) {
	text, ents, err := ParseMarkdown("*b* _i_ `c` [l](https://e.com) a.b")
	if err != nil || text != "b i c l a.b" || len(ents) != 4 {
		t.Fatalf("got %q %+v %v, want 4 entities over %q", text, ents, err, "b i c l a.b")
	}
	if _, _, err := ParseMarkdown("x *y"); err == nil || err.Error() != "Can't find end of the entity starting at byte offset 2" {
		t.Fatalf("got %v, want the unclosed entity error", err)
	}
}

func TestUTF16Len(t *testing.T) {
	for in, want := range map[string]int{"": 0, "abc": 3, "é": 1, "😀": 2, "a😀b": 4, "\xff": 1} {
		if got := UTF16Len(in); got != want {
			t.Errorf("UTF16Len(%q) = %d, want %d", in, got, want)
		}
	}
}

func FuzzParseHTML(f *testing.F) {
	for _, s := range []string{"<b>x</b>", "&lt;", "<a href='x'>y</a>", "<pre><code class=\"language-go\">x</code></pre>", "<", "&", "😀<i>x</i>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !utf8.ValidString(in) {
			return // the server refuses invalid UTF-8 before parsing
		}
		text, ents, err := ParseHTML(in)
		lText, lEnts, lErr := ParseHTMLLenient(in)
		if err == nil {
			// Strict only refuses more; where it accepts, both agree.
			if lErr != nil || lText != text || !reflect.DeepEqual(ents, lEnts) {
				t.Fatalf("strict and lenient disagree on %q", in)
			}
		}
		if lErr != nil {
			if lErr.Error() == "" {
				t.Fatalf("empty error for %q", in)
			}
			return
		}
		if !utf8.ValidString(lText) {
			t.Fatalf("invalid UTF-8 text %q from %q", lText, in)
		}
		n := UTF16Len(lText)
		for _, e := range lEnts {
			if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > n {
				t.Fatalf("entity %+v outside text of %d units, from %q", e, n, in)
			}
		}
	})
}

// FuzzParseMarkdown covers both Markdown parsers: they never panic, and
// what they accept has entities inside the text.
func FuzzParseMarkdown(f *testing.F) {
	for _, s := range []string{"*b* _i_ __u__ ~s~ ||p||", "```go\nx\n```", "[t](https://e.com/a\\)b)", "a\\.b", "!["} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !utf8.ValidString(in) {
			return
		}
		for name, parse := range map[string]func(string) (string, []Entity, error){"MarkdownV2": ParseMarkdownV2, "Markdown": ParseMarkdown} {
			text, ents, err := parse(in)
			if err != nil {
				continue
			}
			n := UTF16Len(text)
			for _, e := range ents {
				if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > n {
					t.Fatalf("%s: entity %+v outside text of %d units, from %q", name, e, n, in)
				}
			}
		}
	})
}

func TestFuzzSeedCorpus(t *testing.T) {
	for _, target := range []string{"FuzzParseHTML", "FuzzParseMarkdown"} {
		files, err := os.ReadDir(filepath.Join("testdata", "fuzz", target))
		if err != nil || len(files) == 0 {
			t.Fatalf("seed corpus of %s: got %d files (%v), want some", target, len(files), err)
		}
	}
}
