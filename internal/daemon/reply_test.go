package daemon

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/relaychat/relay/policy"
)

// hostile is an error text no chat may show: markup, a path and a string
// shaped like a secret.
const hostile = `<a href="https://evil.example/">open /var/lib/relay/totp.secret</a>: token=987654:ZZhostileSECRETvalue`

// TestReplyNeverShowsACause: an error relay did not mark safe to show
// (here a config reload that fails for a reason relay did not write)
// reaches the owner's chat as a fixed answer; its text is in the log and
// in the audit record, never in any message the Bot API was sent. A
// policy error, which is safe to show, still reaches the chat.
func TestReplyNeverShowsACause(t *testing.T) {
	var fail error
	o := hopts{commands: echoCmd, options: func(h *harness, o *Options) {
		o.Reload = func() (*policy.Config, error) {
			if fail != nil {
				return nil, fail
			}
			return policy.Load(h.cfg)
		}
	}}
	h := newHarness(t, o)
	h.login()
	fail = fmt.Errorf("load policy: %w", errors.New(hostile))
	m := h.reload(o)
	if !strings.Contains(m.Text, "config reload failed, keeping the old one: see the relay log") {
		t.Errorf("got %q, want the fixed answer", m.Text)
	}
	for _, part := range []string{"evil.example", "/var/lib/relay", "totp.secret", "ZZhostileSECRETvalue", "<a", "href"} {
		if strings.Contains(h.transcript(), part) {
			t.Errorf("the chat shows %q from the cause:\n%s", part, h.transcript())
		}
	}
	if !strings.Contains(h.log.String(), "ZZhostileSECRETvalue") {
		t.Error("the cause is not in the log")
	}
	if len(h.find("type", "config", "outcome", "failed")) != 1 {
		t.Error("the refused reload is not audited")
	}

	// A safe error still says what is wrong: the owner's own file.
	fail = &policy.ErrorList{{File: "relay.yaml", Line: 3, Col: 5, Msg: "unknown key \"timout\""}, {File: "relay.yaml", Line: 9, Msg: "second"}}
	m = h.reload(o)
	if !strings.Contains(m.Text, `relay.yaml:3:5: unknown key &#34;timout&#34;`) && !strings.Contains(m.Text, `relay.yaml:3:5: unknown key "timout"`) {
		t.Errorf("got %q, want the first problem of the policy", m.Text)
	}
}
