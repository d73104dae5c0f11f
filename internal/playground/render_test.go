package playground

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// parsed is what the fake makes of an HTML message: its text and entities.
func parsed(t testing.TB, html string) (string, []fakebotapi.Entity) {
	t.Helper()
	text, ents, err := fakebotapi.ParseHTMLLenient(html)
	if err != nil {
		t.Fatalf("ParseHTML(%q): %v", html, err)
	}
	return text, ents
}

func spansJSON(ss []span) string {
	b, _ := json.Marshal(ss)
	return string(b)
}

func TestRenderTelegramHTML(t *testing.T) {
	for _, tc := range []struct {
		name, html, want string
	}{
		{"plain", "hello", `[{"t":"hello"}]`},
		{"tags look like text once escaped", "&lt;img src=x onerror=alert(1)&gt; &amp; co", `[{"t":"\u003cimg src=x onerror=alert(1)\u003e \u0026 co"}]`},
		{"bold inside pre", "<pre>a<b>b</b>c</pre>", `[{"k":"pre","c":[{"t":"a"},{"k":"b","c":[{"t":"b"}]},{"t":"c"}]}]`},
		{"pre with a footer", "<pre>out</pre>\n/x · exit 0", `[{"k":"pre","c":[{"t":"out"}]},{"t":"\n/x · exit 0"}]`},
		{"http link", `<a href="https://example.org/a?b=1">site</a>`, `[{"k":"a","u":"https://example.org/a?b=1","c":[{"t":"site"}]}]`},
		{"tg link is not clickable", `<a href="tg://user?id=1">me</a>`, `[{"k":"mention","c":[{"t":"me"}]}]`},
		{"emoji keep their halves together", "<b>😀</b>x", `[{"k":"b","c":[{"t":"😀"}]},{"t":"x"}]`},
		{"spoiler", "<tg-spoiler>secret</tg-spoiler>", `[{"k":"spoiler","c":[{"t":"secret"}]}]`},
		{"blockquote", "<blockquote>q</blockquote>", `[{"k":"quote","c":[{"t":"q"}]}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, ents := parsed(t, tc.html)
			if got := spansJSON(render(text, ents)); got != tc.want {
				t.Errorf("render(%q): got %s, want %s", tc.html, got, tc.want)
			}
		})
	}
}

// TestRenderHostileEntities: entities that no Telegram would send (past
// the end, splitting a character, overlapping, a javascript: link) still
// give exactly the text, and no clickable link that is not http(s).
func TestRenderHostileEntities(t *testing.T) {
	text := "a😀bc" // UTF-16: a, two halves, b, c
	for _, tc := range []struct {
		name string
		ents []fakebotapi.Entity
		want string
	}{
		{"past the end is clipped", []fakebotapi.Entity{{Type: "bold", Offset: 3, Length: 100}}, `[{"t":"a😀"},{"k":"b","c":[{"t":"bc"}]}]`},
		{"starting past the end is dropped", []fakebotapi.Entity{{Type: "bold", Offset: 9, Length: 1}}, `[{"t":"a😀bc"}]`},
		{"negative offset is dropped", []fakebotapi.Entity{{Type: "bold", Offset: -1, Length: 3}}, `[{"t":"a😀bc"}]`},
		{"overflowing length is clipped", []fakebotapi.Entity{{Type: "bold", Offset: 1, Length: int(^uint(0) >> 1)}}, `[{"t":"a"},{"k":"b","c":[{"t":"😀bc"}]}]`},
		{"a split character is widened", []fakebotapi.Entity{{Type: "italic", Offset: 2, Length: 1}}, `[{"t":"a"},{"k":"i","c":[{"t":"😀"}]},{"t":"bc"}]`},
		{"overlap is cut at the parent", []fakebotapi.Entity{{Type: "bold", Offset: 0, Length: 3}, {Type: "italic", Offset: 1, Length: 4}},
			`[{"k":"b","c":[{"t":"a"},{"k":"i","c":[{"t":"😀"}]}]},{"t":"bc"}]`},
		{"javascript link", []fakebotapi.Entity{{Type: "text_link", Offset: 0, Length: 1, URL: "javascript:alert(1)"}}, `[{"k":"a","c":[{"t":"a"}]},{"t":"😀bc"}]`},
		{"data link", []fakebotapi.Entity{{Type: "text_link", Offset: 0, Length: 1, URL: "data:text/html,<script>alert(1)</script>"}}, `[{"k":"a","c":[{"t":"a"}]},{"t":"😀bc"}]`},
		{"unknown type is plain", []fakebotapi.Entity{{Type: "marquee", Offset: 0, Length: 1}}, `[{"t":"a😀bc"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := render(text, tc.ents)
			if j := spansJSON(got); j != tc.want {
				t.Errorf("got %s, want %s", j, tc.want)
			}
			if f := flatten(got); f != text {
				t.Errorf("text: got %q, want %q", f, text)
			}
		})
	}
}

func TestSafeURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://example.org/x", "https://example.org/x"},
		{"HTTP://example.org", "http://example.org"},
		{"javascript:alert(1)", ""},
		{"JaVaScRiPt:alert(1)", ""},
		{" javascript:alert(1)", ""},
		{"data:text/html,x", ""},
		{"file:///etc/passwd", ""},
		{"//example.org", ""},
		{"tg://resolve?domain=x", ""},
		{"https:", ""},
	} {
		if got := safeURL(tc.in); got != tc.want {
			t.Errorf("safeURL(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzRender: for any text and any entities, the spans show exactly the
// text and every link they carry is http(s).
func FuzzRender(f *testing.F) {
	f.Add("<b>bold</b> <i>it<u>al</u></i> <a href=\"https://x.org\">l</a>", "")
	f.Add("a😀bc", `[{"type":"bold","offset":2,"length":1},{"type":"text_link","offset":0,"length":9,"url":"javascript:x"}]`)
	f.Fuzz(func(t *testing.T, html, entsJSON string) {
		text, ents, err := fakebotapi.ParseHTMLLenient(html)
		if err != nil || !utf8.ValidString(html) {
			text, ents = html, nil
		}
		var extra []fakebotapi.Entity
		if json.Unmarshal([]byte(entsJSON), &extra) == nil {
			ents = append(ents, extra...)
		}
		got := render(text, ents)
		if f := flatten(got); f != strings.ToValidUTF8(text, "\uFFFD") {
			t.Fatalf("render(%q, %v): text %q, want %q", text, ents, f, text)
		}
		var check func([]span)
		check = func(ss []span) {
			for _, s := range ss {
				if s.URL != "" && !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") {
					t.Fatalf("link %q is not http(s)", s.URL)
				}
				if s.Kind == "" && len(s.Kids) > 0 {
					t.Fatalf("a text span has children: %+v", s)
				}
				check(s.Kids)
			}
		}
		check(got)
	})
}

func TestFuzzSeedCorpusNotEmpty(t *testing.T) {
	for _, target := range []string{"FuzzRender", "FuzzAdmit"} {
		ents, err := os.ReadDir("testdata/fuzz/" + target)
		if err != nil || len(ents) == 0 {
			t.Errorf("seed corpus of %s: got %d files (%v), want some", target, len(ents), err)
		}
	}
}
