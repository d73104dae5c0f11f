package audit

import (
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	dir, _, l := newLog(t, Options{RotateBytes: 1500})
	exit := 0
	for i := 0; i < 30; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime", UserID: 7})
		mustAppend(t, l, Record{Type: "exec_end", Outcome: "ok", Command: "uptime", Exit: &exit, DurationMS: 12})
		mustAppend(t, l, Record{Type: "request", Outcome: "denied", Command: "reboot", Reason: "no session"})
	}
	l.Close()
	files := Files(dir)
	all, _ := Summarize(files, Filter{}, 0)
	if len(all) != 1+90+len(files)-1 {
		t.Fatalf("got %d lines, want every record", len(all))
	}
	tests := []struct {
		name  string
		f     Filter
		n     int
		count int
		check func(Line) bool
	}{
		{"last 5", Filter{}, 5, 5, nil},
		{"type", Filter{Types: []string{"exec_end"}}, 0, 30, func(l Line) bool { return l.Type == "exec_end" }},
		{"command with slash", Filter{Command: "/reboot"}, 0, 30, func(l Line) bool { return l.Command == "reboot" }},
		{"outcome, last 3", Filter{Outcome: "denied"}, 3, 3, func(l Line) bool { return l.Outcome == "denied" }},
		{"since", Filter{Since: all[len(all)-4].Time}, 0, 4, nil},
		{"until", Filter{Until: all[2].Time}, 0, 3, nil},
		{"more than there are", Filter{Types: []string{"init"}}, 10, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Summarize(files, tt.f, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.count {
				t.Fatalf("got %d lines, want %d", len(got), tt.count)
			}
			for i, l := range got {
				if tt.check != nil && !tt.check(l) {
					t.Fatalf("line %d %v does not match the filter", i, l)
				}
				if i > 0 && l.Seq <= got[i-1].Seq {
					t.Fatalf("got seq %d after %d, want oldest first", l.Seq, got[i-1].Seq)
				}
			}
			if tt.n > 0 && tt.f.empty() && got[len(got)-1].Seq != all[len(all)-1].Seq {
				t.Fatalf("got last seq %d, want the newest %d", got[len(got)-1].Seq, all[len(all)-1].Seq)
			}
		})
	}
}

func TestLineStringIsSafeAndShort(t *testing.T) {
	l := Line{Seq: 9, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Entry: Entry{Record: Record{
		Type: "request", Outcome: "denied", Command: "deploy", UserID: 42,
		Reason: "bad\nline\x1b[31m\u202e" + strings.Repeat("x", 500),
	}}}
	s := l.String()
	if strings.ContainsAny(s, "\n\x1b\u202e") {
		t.Fatalf("got %q, want control characters replaced", s)
	}
	if len([]rune(s)) > 200 {
		t.Fatalf("got %d runes, want a short line", len([]rune(s)))
	}
	want := `2026-01-02 03:04:05Z #9 request denied /deploy user=42 reason="bad line`
	if !strings.HasPrefix(s, want) {
		t.Fatalf("got %q, want prefix %q", s, want)
	}
	if c := l.Columns(); !strings.Contains(c, "request") || strings.Contains(c, "\n") {
		t.Fatalf("got columns %q", c)
	}
}

func TestScanReportsUnreadableLines(t *testing.T) {
	dir, _, l := newLog(t, Options{})
	l.Close()
	appendRaw(t, Files(dir)[0], []byte("garbage\n"))
	got, _ := Summarize(Files(dir), Filter{}, 0)
	if len(got) != 2 || got[1].Type != "?" || !strings.Contains(got[1].String(), "unreadable") {
		t.Fatalf("got %v, want the init record and an unreadable line", got)
	}
	got, _ = Summarize(Files(dir), Filter{Types: []string{"init"}}, 0)
	if len(got) != 1 {
		t.Fatalf("got %d lines with a type filter, want 1", len(got))
	}
}
