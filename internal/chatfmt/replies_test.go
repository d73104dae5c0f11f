package chatfmt

import (
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"
)

var tagRE = regexp.MustCompile(`<[^>]*>`)

// plain is what the owner's phone shows for a rendered message.
func plain(s string) string { return html.UnescapeString(tagRE.ReplaceAllString(s, "")) }

func helpEntries(n int, desc string) []HelpEntry {
	var es []HelpEntry
	for i := range n {
		es = append(es, HelpEntry{Usage: fmt.Sprintf("/cmd%03d FILE [LINES]", i), Description: fmt.Sprintf("%s %d", desc, i)})
	}
	return es
}

var builtinEntries = []HelpEntry{{"/login CODE", "log in"}, {"/lock", "panic button"}, {"/help", "list the commands"}}

// TestHelpSplits: /help stays deliverable however many commands there
// are (at 60 to 92 it used to pass 4096 characters and get no reply at
// all): every message fits, every entry is shown exactly once, in order,
// whole, and the parts are numbered.
func TestHelpSplits(t *testing.T) {
	long := strings.Repeat("a long description with <html> & \"quotes\" ", 6)
	for _, n := range []int{0, 1, 30, 60, 92, 93, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cmds := helpEntries(n, long)
			msgs := Help(cmds, builtinEntries)
			var all strings.Builder
			for i, m := range msgs {
				if err := checkMessage(m); err != nil {
					t.Fatalf("message %d of %d: %v", i+1, len(msgs), err)
				}
				if len(msgs) > 1 && !strings.Contains(m, fmt.Sprintf("%d/%d", i+1, len(msgs))) {
					t.Errorf("message %d does not say it is part %d of %d", i+1, i+1, len(msgs))
				}
				all.WriteString(plain(m))
			}
			text := all.String()
			last := -1
			for _, e := range append(cmds, builtinEntries...) {
				i := strings.Index(text, e.Usage)
				if i < 0 || strings.Count(text, e.Usage+"\n") > 1 {
					t.Fatalf("%q shown %d times, want once", e.Usage, strings.Count(text, e.Usage))
				}
				if !strings.Contains(text, e.Description) {
					t.Fatalf("description of %q cut or missing", e.Usage)
				}
				if i < last {
					t.Fatalf("%q out of order", e.Usage)
				}
				last = i
			}
			if n >= 60 && len(msgs) < 2 {
				t.Errorf("got %d message for %d long entries, want a split", len(msgs), n)
			}
		})
	}
}

func TestStatusAndPS(t *testing.T) {
	s := Status(StatusInfo{Session: true, IdleLeft: 14*time.Minute + 700*time.Millisecond, AbsoluteLeft: time.Hour,
		LockoutLeft: time.Minute, Failures: 3, Locked: true, Jobs: 2, AuditHealthy: false, Version: "v1 <dev>", Uptime: 90 * time.Second})
	if err := checkMessage(s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"session: 14m1s idle left, 1h0m0s at most", "login lockout: 1m0s left (3 failures)", "locked:", "jobs: 2 running", "UNHEALTHY", "version: v1 <dev>", "uptime: 1m30s"} {
		if !strings.Contains(plain(s), want) {
			t.Errorf("status %q lacks %q", plain(s), want)
		}
	}
	if got := plain(PS(nil)); got != "no jobs running" {
		t.Errorf("got %q for no jobs", got)
	}
	var jobs []Job
	for i := range 500 {
		jobs = append(jobs, Job{ID: fmt.Sprintf("j%d", i), Command: "nap<&>", Elapsed: time.Second})
	}
	ps := PS(jobs)
	if err := checkMessage(ps); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plain(ps), "j499  nap<&>") {
		t.Errorf("/ps lost its newest job: %q", plain(ps)[len(plain(ps))-200:])
	}
}

func TestConfirmPrompt(t *testing.T) {
	p := Prompt{Command: "wipe", Argv: []string{"/usr/bin/rm", "-f", "it's here", "$(x)", "a<b>&"}, Workdir: "/", Timeout: 20 * time.Second, Sandbox: "no network", TTL: time.Minute}
	s, whole := ConfirmPrompt(p)
	if !whole {
		t.Fatal("got whole=false for a short argv")
	}
	if err := checkMessage(s); err != nil {
		t.Fatal(err)
	}
	want := `/usr/bin/rm -f 'it'\''s here' '$(x)' 'a<b>&'`
	if !strings.Contains(plain(s), want) || !strings.Contains(plain(s), "Run /wipe?") {
		t.Errorf("got %q, want the quoted argv %q", plain(s), want)
	}
	p.Argv = append(p.Argv, strings.Repeat("x", 4000))
	if s, whole := ConfirmPrompt(p); whole || s != "" {
		t.Error("an argv too long to show whole was rendered: the owner would confirm what they cannot see")
	}
}

func TestCheckpoint(t *testing.T) {
	s := Checkpoint("audit checkpoint seq=7 mac=0123456789abcdef")
	if err := checkMessage(s); err != nil {
		t.Fatal(err)
	}
	if plain(s) != "audit checkpoint seq=7 mac=0123456789abcdef" {
		t.Errorf("got %q", plain(s))
	}
}
