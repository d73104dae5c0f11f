package daemon

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/launch"
)

// TestNotifyGroupSocket: with notify.group set, the sandbox protects the
// group socket's directory like the state directory, for commands of the
// bot (and of relay exec and serve-ssh, which launch the same way); a
// directory the group socket cannot be served from is logged with its
// fix, and the bot works on. (e2e's TestHomeAssistantNotifies sends
// through the socket as another user.)
func TestNotifyGroupSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "notify")
	h := newHarness(t, hopts{extra: fmt.Sprintf("notify: {group: \"64210\", dir: %s}\n", dir)})
	if p := launch.Protected(h.d.launchConfig(), h.d.o.Launch); !slices.Contains(p, dir) {
		t.Errorf("the sandbox protects %v, not the notify group's directory %s", p, dir)
	}
	h.waitFor("the refusal logged", func() bool {
		return strings.Contains(h.log.String(), "notify group socket not served") && strings.Contains(h.log.String(), "install -d -o")
	})
	h.login()
	h.say(`/echo "still here"`)
	h.expect("still here")

	off := newHarness(t, hopts{})
	if p := launch.Protected(off.d.launchConfig(), off.d.o.Launch); slices.Contains(p, "/run/relay-notify") {
		t.Errorf("without notify.group the sandbox protects %v, want no notify directory", p)
	}
}
