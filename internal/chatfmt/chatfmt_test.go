package chatfmt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello", "hello"},
		{"specials", `a<b>&"c'`, "a&lt;b&gt;&amp;&quot;c&#39;"},
		{"entity-looking text stays text", "&amp; &lt;", "&amp;amp; &amp;lt;"},
		{"tag-looking text stays text", "<pre>x</pre>", "&lt;pre&gt;x&lt;/pre&gt;"},
		{"newline and tab kept", "a\n\tb", "a\n\tb"},
		{"carriage return dropped", "a\r\nb", "a\nb"},
		{"NUL and DEL dropped", "a\x00b\x7fc", "abc"},
		{"invalid UTF-8 repaired", "a\xffb", "a\uFFFDb"},
		{"truncated rune repaired", "a\xe2\x82", "a\uFFFD\uFFFD"},
		{"surrogate encoding repaired", "\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"SGR colour stripped", "\x1b[1;31mred\x1b[0m", "red"},
		{"private CSI stripped", "\x1b[?25lx\x1b[?25h", "x"},
		{"OSC title with BEL stripped", "\x1b]0;title\x07after", "after"},
		{"OSC hyperlink with ST stripped", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"unterminated OSC ends at newline", "\x1b]0;title\nnext", "\nnext"},
		{"two-byte escape stripped", "\x1bcreset", "reset"},
		{"charset escape stripped", "\x1b(Bx", "x"},
		{"C1 CSI stripped", "\u009b31mx", "x"},
		{"C1 OSC stripped", "\u009d0;t\u009cx", "x"},
		{"CSI aborted by newline keeps newline", "\x1b[31\nx", "\nx"},
		{"ESC before non-ASCII keeps the char", "\x1bé", "é"},
		{"bidi override stripped", "abc\u202Edef\u2066g", "abcdefg"},
		{"emoji kept", "ok 👍", "ok 👍"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Escape(tt.in)
			if got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if _, err := checkHTML(got); err != nil {
				t.Errorf("Escape(%q) = %q does not parse: %v", tt.in, got, err)
			}
		})
	}
}

func TestLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "denied: unknown command", "denied: unknown command"},
		{"newlines become spaces", "a\nb\tc\n", "a b c"},
		{"escaped", "<x>", "&lt;x&gt;"},
		{"escape sequence stripped", "\x1b[31merr\x1b[0m", "err"},
		{"long line cut", strings.Repeat("a", 600), strings.Repeat("a", lineMax-1) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Line(tt.in); got != tt.want {
				t.Errorf("Line(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPreShort(t *testing.T) {
	tests := []struct {
		name, out, footer, want string
	}{
		{"simple", "hi\n", "exit 0 · 1.2s", "<pre>hi</pre>\nexit 0 · 1.2s"},
		{"escaped", "a<b> & c\n", "exit 0", "<pre>a&lt;b&gt; &amp; c</pre>\nexit 0"},
		{"empty", "", "exit 1", "<i>(no output)</i>\nexit 1"},
		{"only escapes", "\x1b[2J\x1b[H", "exit 0", "<i>(no output)</i>\nexit 0"},
		{"no footer", "x", "", "<pre>x</pre>"},
		{"footer escaped and on one line", "x", "exit <1>\nforged", "<pre>x</pre>\nexit &lt;1&gt; forged"},
		{"leading indentation kept", "  a\n    b\n", "", "<pre>  a\n    b</pre>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Pre([]byte(tt.out), tt.footer)
			if got != tt.want {
				t.Errorf("Pre(%q, %q) = %q, want %q", tt.out, tt.footer, got, tt.want)
			}
			if !FitsMessage([]byte(tt.out), tt.footer) {
				t.Errorf("FitsMessage(%q) = false, want true", tt.out)
			}
			if err := checkMessage(got); err != nil {
				t.Errorf("Pre(%q) = %q: %v", tt.out, got, err)
			}
		})
	}
}

// numberedLines returns n lines "line 00001" … so a test can tell which
// lines survived.
func numberedLines(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(100000 + i)[1:])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestPreLongKeepsTail(t *testing.T) {
	for _, n := range []int{400, 1000, 100000} { // 4.4 KB, 11 KB, 1.1 MB
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			out := numberedLines(n)
			if FitsMessage(out, "exit 0") {
				t.Fatalf("FitsMessage(%d lines) = true, want false", n)
			}
			got := Pre(out, "exit 0")
			if err := checkMessage(got); err != nil {
				t.Fatalf("Pre: %v", err)
			}
			last := "line " + strconv.Itoa(100000 + n)[1:] + "</pre>\nexit 0"
			if !strings.HasSuffix(got, last) {
				t.Errorf("Pre does not end with the last line: got …%q, want suffix %q", got[len(got)-40:], last)
			}
			// The note must say exactly how many bytes are missing, and the
			// block must start at a whole line.
			head, body, ok := strings.Cut(got, "\n<pre>")
			if !ok {
				t.Fatalf("no <pre> block after the note: %q", got[:80])
			}
			var omitted int
			if _, err := fmt.Sscanf(head, "<i>… %d bytes omitted</i>", &omitted); err != nil {
				t.Fatalf("note %q: %v", head, err)
			}
			shown := strings.TrimSuffix(body, "</pre>\nexit 0")
			if want := string(out[omitted:]); strings.TrimRight(want, "\n") != shown {
				t.Errorf("block is not the output after the %d omitted bytes: got %q…, want %q…", omitted, shown[:20], want[:20])
			}
			if !strings.HasPrefix(shown, "line ") {
				t.Errorf("block starts mid-line: %q", shown[:20])
			}
		})
	}
}

func TestPreCountsRenderedText(t *testing.T) {
	// 3000 '<' render as 3000 characters but 12000 bytes of HTML: Telegram
	// counts the former, so this must still fit in one message.
	lt := bytes.Repeat([]byte("<"), 3000)
	if !FitsMessage(lt, "exit 0") {
		t.Errorf("FitsMessage(3000 x '<') = false, want true")
	}
	if err := checkMessage(Pre(lt, "exit 0")); err != nil {
		t.Error(err)
	}
	// Emoji outside the BMP count twice.
	emoji := bytes.Repeat([]byte("😀"), 2500)
	if FitsMessage(emoji, "exit 0") {
		t.Errorf("FitsMessage(2500 emoji) = true, want false (5000 UTF-16 units)")
	}
	got := Pre(emoji, "exit 0")
	n, err := checkHTML(got)
	if err != nil {
		t.Fatal(err)
	}
	if n > MaxMessage {
		t.Errorf("got %d UTF-16 units, want <= %d", n, MaxMessage)
	}
}

func TestPreHugeSingleLine(t *testing.T) {
	out := bytes.Repeat([]byte("é&"), 5<<20) // 15 MiB, no newline at all
	got := Pre(out, "exit 0")
	if err := checkMessage(got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "<i>… ") {
		t.Errorf("no omission note: %q", got[:40])
	}
}

func TestPreWindowStartsCleanly(t *testing.T) {
	// A long output whose window boundary falls inside a multi-byte rune.
	out := append(bytes.Repeat([]byte("€"), scanWindow), "end\n"...)
	got := Pre(out, "")
	if err := checkMessage(got); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "\uFFFD") {
		t.Errorf("window cut a rune in half: replacement character in output")
	}
}

func TestProgress(t *testing.T) {
	got := Progress(12*time.Second, numberedLines(50))
	if err := checkMessage(got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "⏳ running · 12s\n<pre>") {
		t.Errorf("header: got %q", got[:30])
	}
	if c := strings.Count(got, "line "); c != progressLines {
		t.Errorf("got %d lines, want %d", c, progressLines)
	}
	if !strings.Contains(got, "line 00050</pre>") {
		t.Errorf("last line missing: %q", got)
	}
	if got := Progress(3*time.Second, nil); got != "⏳ running · 3.0s" {
		t.Errorf("Progress without output = %q, want header only", got)
	}
	long := Progress(time.Minute, bytes.Repeat([]byte("x"), 10000))
	if n, err := checkHTML(long); err != nil || n > progressMax+40 {
		t.Errorf("Progress of one long line: %d units, err %v; want <= %d", n, err, progressMax+40)
	}
}

func TestElapsed(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0.0s"},
		{1234 * time.Millisecond, "1.2s"},
		{12 * time.Second, "12s"},
		{123 * time.Second, "2m03s"},
		{3720 * time.Second, "1h02m"},
	}
	for _, tt := range tests {
		if got := Elapsed(tt.d); got != tt.want {
			t.Errorf("Elapsed(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestCheckHTMLRejects keeps the checker honest: the fuzz target is only as
// strong as this parser.
func TestCheckHTMLRejects(t *testing.T) {
	bad := []string{
		"a < b", "a > b", "a & b", "&nbsp;", "<a href=\"x\">x</a>", "<pre>x",
		"<b><i>x</b></i>", "</pre>", "<pre><b>x</b></pre>", "\x00", "\xff", "&#xZZ;", "\u0085",
	}
	for _, s := range bad {
		if _, err := checkHTML(s); err == nil {
			t.Errorf("checkHTML(%q) = nil error, want a parse error", s)
		}
	}
	n, err := checkHTML("<i>a</i>&lt;&#128512;😀")
	if err != nil || n != 6 {
		t.Errorf("checkHTML = %d, %v; want 6, nil", n, err)
	}
}

func TestFuzzSeedCorpus(t *testing.T) {
	for _, name := range []string{"FuzzPre", "FuzzFanOut"} {
		entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
		if err != nil || len(entries) == 0 {
			t.Errorf("seed corpus for %s: %d files, err %v; want at least one", name, len(entries), err)
		}
	}
}

func FuzzPre(f *testing.F) {
	f.Add([]byte("hello\n"), "exit 0 · 1.2s")
	f.Add([]byte("\x1b[31m<b>&amp;</b>\x1b]0;t\x07\xff\xfe"), "exit <1>")
	f.Add([]byte("R😀<&\n"), "") // 'R' inputs are repeated to ~8 KiB below
	f.Fuzz(func(t *testing.T, out []byte, footer string) {
		// Let short fuzz inputs reach the truncation paths too.
		if len(out) > 0 && out[0] == 'R' {
			out = bytes.Repeat(out, 1+8192/len(out))
		}
		got := Pre(out, footer)
		if err := checkMessage(got); err != nil {
			t.Fatalf("Pre(%q, %q) = %q: %v", out, footer, got, err)
		}
		if FitsMessage(out, footer) == strings.HasPrefix(got, "<i>… ") {
			t.Fatalf("FitsMessage disagrees with Pre's omission note")
		}
		if err := checkMessage(Progress(time.Second, out)); err != nil {
			t.Fatalf("Progress: %v", err)
		}
		line := Line(footer)
		if _, err := checkHTML(line); err != nil || strings.ContainsAny(line, "\n\t") {
			t.Fatalf("Line(%q) = %q: %v", footer, line, err)
		}
		esc := Escape(string(out))
		if _, err := checkHTML(esc); err != nil || !utf8.ValidString(esc) {
			t.Fatalf("Escape(%q) = %q: %v", out, esc, err)
		}
	})
}

// BenchmarkPre measures rendering a short output and a 10 MiB one, side by
// side: the long one is bounded by the scan window, not the output size.
func BenchmarkPre(b *testing.B) {
	for _, size := range []int{1 << 10, 10 << 20} {
		out := bytes.Repeat([]byte("\x1b[32mok\x1b[0m <x> & y\n"), size/24)
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Pre(out, "exit 0 · 1.2s")
			}
		})
	}
}

// TestNotifyCannotPassForRelay: whatever a notification says, its message
// starts with the notify header, so it cannot look like a checkpoint or a
// result, which never do.
func TestNotifyCannotPassForRelay(t *testing.T) {
	for _, text := range []string{
		"audit checkpoint seq=12 mac=0123456789abcdef",
		"<code>audit checkpoint seq=12 mac=ab</code>",
		"\n\naudit checkpoint seq=1",
		"\u202eaudit checkpoint",
		"",
	} {
		for _, prog := range []string{"cron", "</i><b>relay</b>", "", "a\nb"} {
			got := Notify(prog, text)
			if !strings.HasPrefix(got, "<i>"+NotifyHeader) {
				t.Errorf("Notify(%q, %q) = %q: want it to start with the header", prog, text, got)
			}
			head, body, _ := strings.Cut(got, "\n")
			if strings.Contains(head[len("<i>"+NotifyHeader):], "<") && !strings.HasSuffix(head, "</i>") || strings.Count(head, "<") != 2 {
				t.Errorf("Notify(%q, %q): the header line %q carries markup of the sender's", prog, text, head)
			}
			if strings.Contains(body, "<code>") {
				t.Errorf("Notify(%q, %q): body %q kept markup", prog, text, body)
			}
		}
	}
}

// TestTextBudget: text of exactly the budget fits whole next to its
// footer, one unit more does not, whatever the footer.
func TestTextBudget(t *testing.T) {
	for _, footer := range []string{"", "exit 0 · 1.2s", strings.Repeat("f", 1000), "😀 wide"} {
		n := TextBudget(footer)
		if n <= 0 || n > MaxMessage {
			t.Fatalf("footer %q: got budget %d", footer, n)
		}
		if !FitsMessage([]byte(strings.Repeat("x", n)), footer) {
			t.Errorf("footer %q: %d units do not fit, want the budget to fit", footer, n)
		}
		if FitsMessage([]byte(strings.Repeat("x", n+1)), footer) {
			t.Errorf("footer %q: %d units fit, want the budget to be the most that does", footer, n+1)
		}
	}
}
