package e2e

import (
	"context"
	"fmt"
	"net"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// TestMenuIsTheAllowlist: the phone's menu is the policy's commands, then
// the built-ins, in the owner's private chat only; nobody else is shown
// what this bot runs.
func TestMenuIsTheAllowlist(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmds, err := r.api.WaitCommandsFor(ctx, fmt.Sprintf(`{"type":"chat","chat_id":%d}`, ownerID), "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cmds {
		names = append(names, c.Command)
	}
	got := strings.Join(names, " ")
	if !strings.HasPrefix(got, "echo login logout lock status") {
		t.Errorf("got menu %q, want the policy's commands then the built-ins", got)
	}
	if others := r.api.VisibleCommands(fakebotapi.Private(stranger)); len(others) != 0 {
		t.Errorf("a stranger sees the menu %v, want none", others)
	}
}

// TestLiveProgress: a long job shows its progress as a draft with a stop
// button, and the result arrives as a message; a server without drafts
// gets a progress message that is edited into the result.
func TestLiveProgress(t *testing.T) {
	const slow = `  slow:
    description: takes a few seconds
    argv: [/bin/sleep, "3"]
    timeout: 10s
    workdir: /
`
	t.Run("draft", func(t *testing.T) {
		r := startRelay(t, options{commands: slow})
		r.login()
		r.say("/slow")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := r.api.WaitDraft(ctx, func(d fakebotapi.Draft) bool {
			return d.ChatID == ownerID && d.CanStop && strings.Contains(d.Text, "/slow ⏳ running")
		}); err != nil {
			t.Fatalf("no progress draft: %v", err)
		}
		r.expect("exit 0")
	})
	t.Run("edited message", func(t *testing.T) {
		r := startRelay(t, options{commands: slow, fake: []fakebotapi.Option{fakebotapi.Without(fakebotapi.FeatureDrafts)}})
		r.login()
		r.say("/slow")
		p := r.expect("running")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The progress message itself becomes the result.
		m, err := r.api.WaitMessage(ctx, func(m fakebotapi.Message) bool { return m.ID == p.ID && strings.Contains(m.Text, "exit 0") })
		if err != nil {
			t.Fatalf("the progress message never became the result: %v\n%s", err, r.transcript())
		}
		if len(m.Edits) == 0 {
			t.Errorf("got no edits, want the progress message edited into the result")
		}
	})
}

func TestNotifyThroughDaemonAndDirect(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	notify := func(args ...string) {
		t.Helper()
		cmd := osexec.Command(relayBin, append([]string{"notify", "--config", r.cfgPath}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + r.dir, "CREDENTIALS_DIRECTORY=" + filepath.Join(r.dir, "creds")}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("relay notify: %v\n%s", err, out)
		}
	}
	notify("backup <done> & verified")
	r.expect("backup <done> & verified")
	if got := r.stop(syscall.SIGTERM); got != 0 {
		t.Fatalf("got exit code %d, want 0", got)
	}
	// With no daemon, notify writes the audit record itself.
	notify("--silent", "relay is down")
	m := r.expect("relay is down")
	if !m.Silent {
		t.Error("--silent message was not sent silently")
	}
	r.verifyAudit()
	if n := strings.Count(r.auditText(), `"type":"notify"`); n != 2 {
		t.Errorf("got %d notify records, want 2", n)
	}
}

func TestSdNotifyReadyAndStopping(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	must(t, err)
	defer conn.Close()
	r := startRelay(t, options{commands: echoCmd, env: []string{"NOTIFY_SOCKET=" + sock}})
	read := func() string {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify datagram: %v", err)
		}
		return string(buf[:n])
	}
	if got := read(); !strings.Contains(got, "READY=1") {
		t.Errorf("got %q, want READY=1", got)
	}
	r.stop(syscall.SIGTERM)
	if got := read(); !strings.Contains(got, "STOPPING=1") {
		t.Errorf("got %q, want STOPPING=1", got)
	}
}

func TestDoctor(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	r.stop(syscall.SIGTERM)
	cmd := osexec.Command(relayBin, "doctor", "--config", r.cfgPath)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + r.dir, "CREDENTIALS_DIRECTORY=" + filepath.Join(r.dir, "creds"),
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(r.dir, "no-bus")}
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("relay doctor: %v\n%s", err, text)
	}
	for _, want := range []string{"ok    config", "ok    token", "ok    totp", "ok    audit", "ok    getMe", "/echo"} {
		if !strings.Contains(text, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, testToken) || strings.Contains(text, totpSecret) {
		t.Error("doctor printed a secret")
	}
}

func TestRunWithoutConfigOrTerminalSaysWhatIsMissing(t *testing.T) {
	home := t.TempDir()
	cmd := osexec.Command(relayBin, "run")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "cfg")}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*osexec.ExitError)
	if !ok || ee.ExitCode() != 5 {
		t.Fatalf("got %v, want exit code 5 (not set up)\n%s", err, out)
	}
	if lines := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; lines != 1 || !strings.Contains(string(out), "no config file") {
		t.Errorf("got %q, want one line saying the config is missing", out)
	}
}
