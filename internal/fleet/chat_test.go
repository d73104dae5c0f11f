package fleet

import (
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/policy"
)

func TestParseOn(t *testing.T) {
	for _, c := range []struct {
		in, target, cmd, args string
		bad                   bool
	}{
		{in: "nas disk", target: "nas", cmd: "disk"},
		{in: "Nas Disk /var", target: "nas", cmd: "disk", args: "/var"},
		{in: "web,nas /restart nginx", target: "web,nas", cmd: "restart", args: "nginx"},
		{in: "all uptime", target: "all", cmd: "uptime"},
		{in: `nas logs "two words" 50`, target: "nas", cmd: "logs", args: "two words|50"},
		{in: "nas disk@relaybot", target: "nas", cmd: "disk"},
		{in: "nas", bad: true},
		{in: "", bad: true},
		{in: "nas rm;reboot", bad: true},
		{in: "nas ../x", bad: true},
		{in: "nas \"unclosed", bad: true},
		{in: "nas disk \x00", bad: true},
	} {
		target, cmd, args, err := ParseOn(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParseOn(%q): got %q %q %q, want an error", c.in, target, cmd, args)
			}
			continue
		}
		if err != nil || target != c.target || cmd != c.cmd || strings.Join(args, "|") != c.args {
			t.Errorf("ParseOn(%q): got %q %q %q %v", c.in, target, cmd, args, err)
		}
	}
}

func TestResolve(t *testing.T) {
	cfg := &policy.Config{Hosts: []*policy.Host{{Name: "nas"}, {Name: "web1"}, {Name: "web2"}},
		Groups: []*policy.Group{{Name: "web", Hosts: []string{"web2", "web1"}}}}
	f := &Fleet{cfg: cfg}
	for in, want := range map[string]string{
		"nas": "nas", "WEB": "web1,web2", "all": "nas,web1,web2", "web2,nas,web": "nas,web1,web2",
	} {
		got, err := f.Resolve(in)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("Resolve(%q): got %v %v, want %s", in, got, err, want)
		}
	}
	if _, err := f.Resolve("wbe"); err == nil || !strings.Contains(err.Error(), "did you mean web?") {
		t.Errorf("got %v, want a suggestion", err)
	}
	if _, err := f.Resolve("nas,\u202eevil"); err == nil || strings.Contains(err.Error(), "\u202e") {
		t.Errorf("got %v: an unknown target must not be echoed raw", err)
	}
}

// TestFanOutSummaryMessage: a real fan-out, rendered as the chat would
// show it.
func TestFanOutSummaryMessage(t *testing.T) {
	a := newMember(t, "a", memberOpts{})
	b := newMember(t, "b", memberOpts{})
	h := newHub(t, "", a, b)
	b.stop()
	s := h.f.FanOut(t.Context(), []string{"a", "b"}, "hello", []string{"hi"}, FanOutOptions{CallOptions: CallOptions{Audit: h.audit}})
	defer s.Close()
	text, attach := chatfmt.FanOut(Title("all", "hello", []string{"hi"}), s.Duration, s.Lines())
	for _, want := range []string{"/on all hello hi · 2 hosts · 1 ok · 1 not run", "✅ a · exit 0", "<pre>hi</pre>", "⛔ b · unreachable: connection refused"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if len(attach) != 0 {
		t.Errorf("attach %v", attach)
	}
}
