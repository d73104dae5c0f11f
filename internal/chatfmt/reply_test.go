package chatfmt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type safeErr struct{ msg string }

func (e *safeErr) Error() string      { return "internal: " + e.msg }
func (e *safeErr) SafeToShow() string { return e.msg }

func TestReply(t *testing.T) {
	cause := errors.New(`<b>open /etc/relay/token</b>`)
	for _, tc := range []struct {
		name string
		r    Reply
		want string
	}{
		{"constant", Say("logged out"), "logged out"},
		{"args", Say("%d jobs, %s idle, /%s", Num(3), Dur(90*time.Second+300*time.Millisecond), Name("echo")), "3 jobs, 1m30s idle, /echo"},
		{"name escaped", Say("/%s", Name("<b>x</b>")), "/&lt;b&gt;x&lt;/b&gt;"},
		{"refusal unsafe", Refusal(fmt.Errorf("wrap: %w", cause), "see the relay log"), "see the relay log"},
		{"refusal safe", Refusal(fmt.Errorf("wrap: %w", &safeErr{"bad <arg>"}), "x"), "bad &lt;arg&gt;"},
		{"nested reply", Say("failed: %s", Refusal(cause, "see the log")), "failed: see the log"},
		{"shown", Say("login failed: %s", Shown(&safeErr{"invalid code"})), "login failed: invalid code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.HTML(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if strings.Contains(tc.r.HTML(), "/etc/relay") {
				t.Errorf("the cause reached the reply: %q", tc.r.HTML())
			}
		})
	}
}
