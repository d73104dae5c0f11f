package chatfmt

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestFanOutInlineAndAttached(t *testing.T) {
	hosts := []HostLine{
		{Host: "web1", Outcome: HostOK, Status: "exit 0", Elapsed: 300 * time.Millisecond, Output: []byte("/dev/vda 42%\n"), Size: 13},
		{Host: "web2", Outcome: HostNotRun, Status: "unreachable: connection refused"},
		{Host: "web3", Outcome: HostOK, Status: "exit 0", Elapsed: 2 * time.Second, Output: bytes.Repeat([]byte("x"), 4096), Size: 20 << 20},
		{Host: "web4", Outcome: HostFailed, Status: "exit 3", Elapsed: time.Second, Output: []byte("oops\n"), Size: 5},
	}
	got, attach := FanOut("/on web disk", 2400*time.Millisecond, hosts)
	if err := checkMessage(got); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"/on web disk · 4 hosts · 2 ok · 1 failed · 1 not run · 2.4s\n",
		"✅ web1 · exit 0 · 0.3s\n<pre>/dev/vda 42%</pre>",
		"⛔ web2 · unreachable: connection refused\n",
		"✅ web3 · exit 0 · 2.0s · output attached (20.0 MiB)",
		"❌ web4 · exit 3 · 1.0s\n<pre>oops</pre>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if fmt.Sprint(attach) != "[2]" {
		t.Errorf("got attach %v, want web3's only", attach)
	}
}

// TestFanOutStaysAMessage: many hosts, every one with output that would
// fit alone, hostile text in names' statuses and outputs: one deliverable
// message, every host either shown or named, every output shown or
// attached.
func TestFanOutStaysAMessage(t *testing.T) {
	var hosts []HostLine
	for i := 0; i < 120; i++ {
		hosts = append(hosts, HostLine{Host: fmt.Sprintf("h%03d", i), Outcome: HostOutcome(i % 3),
			Status: "refused: <b>bold</b>\n\u202eevil & more", Elapsed: time.Second,
			Output: []byte("line\x1b[31m <i>red</i>\n"), Size: 26})
	}
	got, attach := FanOut("/on all uptime", time.Minute, hosts)
	if err := checkMessage(got); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "<b>") || strings.Contains(got, "\u202e") || strings.Contains(got, "\x1b") {
		t.Error("hostile text reached the message")
	}
	for _, h := range hosts {
		if !strings.Contains(got, h.Host) {
			t.Errorf("%s neither shown nor named", h.Host)
		}
	}
	inlined := strings.Count(got, "<pre>")
	if inlined+len(attach) != len(hosts) {
		t.Errorf("%d inline + %d attached, want all %d outputs", inlined, len(attach), len(hosts))
	}
}

// FuzzFanOut: whatever members answer, the summary is one deliverable
// message and every output is shown or attached.
func FuzzFanOut(f *testing.F) {
	f.Add("nas", "exit 0", []byte("ok\n"), uint8(3), int64(3))
	f.Add("web", "refused: <x>&\n", []byte("\x1b]0;t\x07<b>\xff"), uint8(40), int64(1<<20))
	f.Fuzz(func(t *testing.T, host, status string, out []byte, n uint8, size int64) {
		if size < 0 {
			size = -size
		}
		hosts := make([]HostLine, int(n)%40+1)
		for i := range hosts {
			hosts[i] = HostLine{Host: fmt.Sprintf("%s%d", host, i), Outcome: HostOutcome(i % 3), Status: status, Output: out, Size: size}
		}
		got, attach := FanOut("/on "+host+" cmd", time.Second, hosts)
		if err := checkMessage(got); err != nil {
			t.Fatalf("%v:\n%q", err, got)
		}
		withOutput := 0
		for _, h := range hosts {
			if h.Size > 0 {
				withOutput++
			}
		}
		if inlined := strings.Count(got, "<pre>") + strings.Count(got, "(no visible output)"); inlined+len(attach) != withOutput {
			t.Fatalf("%d inline + %d attached of %d outputs", inlined, len(attach), withOutput)
		}
	})
}
