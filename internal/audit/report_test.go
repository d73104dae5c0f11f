package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// evil is attacker-influenced text that reaches records: a command name
// and an update's kind come from the chat, a reason from a failing
// command.
const evil = `<script>window.pwned=1</script></td><img src="http://127.0.0.1:9/x" onerror="window.pwned=2">`

// reportLog writes a log over five days (the fourth empty): commands,
// denials, logins, a lockout, a torn write and its recovery, a burst of
// unauthorized updates and a burst of stale ones, and records carrying
// evil; then edits one record so that verify breaks there. It returns the
// directory, K0 and the broken record's seq.
func reportLog(t testing.TB) (dir string, k0 []byte, broken uint64) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "audit")
	day := func(d, h, m int) time.Time { return time.Date(2026, 2, d, h, m, 0, 0, time.UTC) }
	now := day(1, 8, 0)
	clk := func() time.Time { return now }
	k0, err := InitWith(dir, nil, InitOptions{Now: clk})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, Options{Now: clk, RotateBytes: 4000})
	if err != nil {
		t.Fatal(err)
	}
	at := func(tm time.Time, r Record) Head {
		now = tm
		return mustAppend(t, l, r)
	}
	// Day 1: commands and a login.
	at(day(1, 9, 0), Record{Type: "login", Outcome: "login_ok", UserID: 7})
	for i := 0; i < 6; i++ {
		at(day(1, 9, 1+i), Record{Type: "request", Outcome: "ok", Command: "uptime", UserID: 7})
	}
	at(day(1, 10, 0), Record{Type: "request", Outcome: "denied", Command: "reboot", Reason: "no session"})
	// Day 2: an unauthorized burst, a lockout, a failure, evil.
	for i := 0; i < 4; i++ {
		at(day(2, 3, i), Record{Type: "unauthorized", Outcome: "ignored", UserID: 666, Detail: "message"})
	}
	at(day(2, 3, 5), Record{Type: "unauthorized", Outcome: "ignored", UserID: 666, Count: 20, Reason: "rate limit"})
	at(day(2, 4, 0), Record{Type: "login", Outcome: "lockout", UserID: 7, Reason: "too many failed codes"})
	at(day(2, 5, 0), Record{Type: "exec_end", Outcome: "failed", Command: "backup", Reason: evil})
	at(day(2, 5, 1), Record{Type: "request", Outcome: "denied", Command: evil, Detail: evil})
	// Day 3: a torn write, recovered, then stale updates.
	l.Close()
	files := Files(dir)
	appendRawFile(t, files[len(files)-1], []byte(`{"seq":99,"ts":"2026-`))
	now = day(3, 6, 0)
	if l, err = Open(dir, Options{Now: clk, RotateBytes: 4000}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		detail := "message"
		if i == 2 {
			detail = evil // shown in the page: the burst links to it
		}
		at(day(3, 7, 2*i), Record{Type: "stale", Outcome: "ignored", Detail: detail})
	}
	// Day 5: commands again.
	broken = at(day(5, 12, 0), Record{Type: "request", Outcome: "ok", Command: "backup"}).Seq
	for i := 1; i < 3; i++ {
		at(day(5, 12, i), Record{Type: "request", Outcome: "ok", Command: "backup"})
	}
	at(day(5, 13, 0), Record{Type: "request", Outcome: "ok", Command: "uptime"})
	at(day(5, 13, 1), Record{Type: "request", Outcome: "ok", Command: "uptime"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Break the chain at the first backup of day 5.
	for _, f := range Files(dir) {
		lines := readLines(t, f)
		for i, ln := range lines {
			if h, r := parseHeader(ln); r == "" && h.seq == broken {
				lines[i] = bytes.Replace(ln, []byte(`"backup"`), []byte(`"bckup!"`), 1)
			}
		}
		writeLines(t, f, lines)
	}
	return dir, k0, broken
}

func renderReport(t testing.TB, dir string, o ReportOptions) string {
	t.Helper()
	var b bytes.Buffer
	if o.Now == nil {
		o.Now = func() time.Time { return time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC) }
	}
	if _, err := Report(Files(dir), o, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestReportContent checks the page without a browser: every series for
// every day, the busiest commands, each anomaly linking to a record that
// is in the page, and nothing from the log unescaped.
func TestReportContent(t *testing.T) {
	dir, k0, broken := reportLog(t)
	page := renderReport(t, dir, ReportOptions{Title: dir, Verify: VerifyOptions{Key: k0}})
	if strings.Contains(page, "<script") || strings.Contains(page, "<img") || strings.Contains(page, "onerror=\"") {
		t.Fatal("log text reached the page unescaped")
	}
	if !strings.Contains(page, "&lt;script&gt;window.pwned=1&lt;/script&gt;") {
		t.Fatal("the evil text is not shown, escaped")
	}
	if got := regexp.MustCompile(`data-days="(\d+)"`).FindStringSubmatch(page); got == nil || got[1] != "5" {
		t.Fatalf("got days %v, want 5 (the empty fourth day included)", got)
	}
	for _, s := range reportSeries {
		if n := strings.Count(page, `class="point" data-series="`+s.Name+`"`); n != 5 {
			t.Fatalf("series %s has %d points, want 5", s.Name, n)
		}
	}
	for _, want := range []string{
		"BROKEN: ", ">seq " + strconv.FormatUint(broken, 10) + "</a>", // the verify finding, linked
		`data-kind="recovery"`, `data-kind="lockout"`, `data-kind="unauthorized"`, `data-kind="stale"`,
		"25 unauthorized updates", "6 stale updates",
		`<code>/uptime</code></td><td class="num">8</td>`, // the busiest command, with its requests
	} {
		if !strings.Contains(page, want) {
			t.Fatalf("the page lacks %q", want)
		}
	}
	// Every link points at a row in the page.
	for _, m := range regexp.MustCompile(`href="#([^"]+)"`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(page, `<tr id="`+m[1]+`"`) {
			t.Fatalf("link #%s has no record in the page", m[1])
		}
	}
	// Nothing fetched: no URL in any attribute the browser would load.
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(page); m != "" {
		t.Fatalf("the page refers to %s", m)
	}

	// --since/--until narrow the plot, not the verification.
	narrow := renderReport(t, dir, ReportOptions{Since: time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 2, 3, 23, 59, 59, 0, time.UTC), Verify: VerifyOptions{Key: k0}})
	if got := regexp.MustCompile(`data-days="(\d+)"`).FindStringSubmatch(narrow); got == nil || got[1] != "2" || !strings.Contains(narrow, "BROKEN: ") {
		t.Fatalf("got days %v, want 2 and the verify finding still there", got)
	}
}

func appendRawFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}
