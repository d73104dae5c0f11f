package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/relaychat/relay/internal/control"
)

// TestNotifySocketMessages: relay notify --socket says what is wrong in
// terms of the socket and the group, never of the bot token, and never
// falls back to sending by itself.
func TestNotifySocketMessages(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "notify.sock")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"nothing listening", []string{"notify", "--socket", missing, "door open"}, ExitFailure,
			"relay: error: notify: no relay is listening on " + missing + "\n" +
				"relay: hint: is the relay running, with notify.group in its config? Its log says why it does not serve the group socket\n"},
		{"both --socket and --config", []string{"notify", "--socket", missing, "--config", "relay.yaml", "x"}, ExitUsage,
			usageLines("notify: --socket sends without a config; give one of --socket and --config", "notify")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(t, nil, "", tc.args...)
			if code != tc.code || stdout != "" || stderr != tc.stderr {
				t.Errorf("got exit %d, stdout %q, stderr\n%s\nwant exit %d, stderr\n%s", code, stdout, stderr, tc.code, tc.stderr)
			}
		})
	}
}

// TestNotifyRefusedByTheGroupCheck: a process that reaches the group
// socket but is not a member (root here) is told so by the relay, with
// the fix.
func TestNotifyRefusedByTheGroupCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory with another group")
	}
	base, err := os.MkdirTemp("", "relay-cli-notify-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	dir := filepath.Join(base, "notify")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	const gid = 64210
	if err := os.Chown(dir, 0, gid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := control.Group{Name: "homeassistant", GID: gid, Dir: dir}
	errc := make(chan error, 1)
	go func() {
		errc <- control.ServeGroup(ctx, g, 1<<20, func(context.Context, control.Notification) error {
			t.Error("the handler got a notification from a non-member")
			return nil
		})
	}()
	for {
		if c, err := net.Dial("unix", g.GroupPath()); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("ServeGroup: %v", err)
		default:
		}
	}
	code, _, stderr := cliRun(t, nil, "", "notify", "--socket", g.GroupPath(), "door open")
	want := "relay: error: notify: the relay refused: permission denied: uid 0 is not in group homeassistant (notify.group)\n" +
		"relay: hint: usermod -aG 64210 USER adds the user to the group; then restart the sending service, which reads its groups when it starts\n"
	if code != ExitFailure || stderr != want {
		t.Errorf("got exit %d, stderr\n%s\nwant exit 1, stderr\n%s", code, stderr, want)
	}
}
