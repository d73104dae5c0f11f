package e2e

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

const echoCmd = `  echo:
    description: echo one word
    argv: [/bin/echo, "{word}"]
    params:
      - {name: word, type: string, pattern: "^[a-z0-9]+$", max_len: 32}
    timeout: 10s
    workdir: /
`

func TestLoginRunCommandAndAudit(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	r.say("/echo hello")
	r.expect("not logged in")

	c := code(t, time.Now())
	loginMsg := r.say("/login " + c)
	r.expect("logged in")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.api.WaitDeleted(ctx, ownerID, loginMsg); err != nil {
		t.Errorf("the /login message was not deleted: %v", err)
	}

	r.say("/echo hello")
	m := r.expect("hello")
	if !strings.Contains(m.Text, "exit 0") {
		t.Errorf("got reply %q, want an exit-status footer", m.Text)
	}
	if got := r.stop(syscall.SIGTERM); got != 0 {
		t.Errorf("got exit code %d after SIGTERM, want 0", got)
	}
	sum := r.verifyAudit()
	t.Logf("audit: %s", sum)
	log := r.auditText()
	for _, want := range []string{`"type":"login"`, `"type":"request"`, `"type":"exec_end"`, `"type":"delivery"`, `"type":"stop"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	for _, secret := range []string{testToken, totpSecret, c} {
		if strings.Contains(log, secret) {
			t.Errorf("audit log contains a secret (%d chars)", len(secret))
		}
	}
}

func TestReplayAndLockout(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	c := code(t, time.Now())
	r.say("/login " + c)
	r.expect("logged in")
	r.say("/logout")
	r.expect("logged out")
	r.say("/login " + c)
	r.expect("login failed")
	r.say("/echo x")
	r.expect("not logged in")
	for i := 0; i < 3; i++ {
		r.say("/login 000000")
		r.expect("login failed")
	}
	r.say("/login " + code(t, time.Now().Add(30*time.Second)))
	m := r.expect("login failed")
	if !strings.Contains(m.Text, "lock") {
		t.Errorf("got %q after repeated failures, want a lockout", m.Text)
	}
}

func TestDeniedArgumentsNeverRun(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	r.login()
	for _, arg := range []string{"$(reboot)", "`id`", "--output=/etc/passwd", "-rf", "../..", "a;b", "two words"} {
		r.say("/echo " + arg)
		m := r.expect("")
		if strings.Contains(m.Text, "exit ") {
			t.Errorf("/echo %q ran: %q", arg, m.Text)
		}
	}
	r.say("/nosuchcommand")
	r.expect("unknown command")
	r.stop(syscall.SIGTERM)
	if log := r.auditText(); strings.Contains(log, `"type":"exec_end"`) {
		t.Error("a denied argument reached a process")
	}
}

func TestConfirmButtons(t *testing.T) {
	r := startRelay(t, options{commands: `  danger:
    description: needs a confirmation
    argv: [/bin/echo, confirmed]
    timeout: 10s
    workdir: /
    confirm: true
`})
	r.login()
	r.say("/danger")
	prompt := r.expect("Run /danger?")
	if len(prompt.Buttons) == 0 || len(prompt.Buttons[0]) != 2 {
		t.Fatalf("got buttons %+v, want Run and Cancel", prompt.Buttons)
	}
	run := prompt.Buttons[0][0].Data

	// Someone else pressing the button gets nothing run.
	r.api.PressButton(stranger, ownerID, prompt.ID, run)
	r.say("/ps")
	r.expect("no jobs")
	// The owner's press runs it once.
	r.api.PressButton(owner, ownerID, prompt.ID, run)
	r.expect("confirmed")
	// A replayed press does not run it again.
	r.api.PressButton(owner, ownerID, prompt.ID, run)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.api.WaitCalls(ctx, "answerCallbackQuery", 2); err != nil {
		t.Errorf("not every button press was answered: %v", err)
	}
	r.stop(syscall.SIGTERM)
	if n := strings.Count(r.auditText(), `"type":"exec_end"`); n != 1 {
		t.Errorf("got %d runs, want exactly 1", n)
	}
}

func TestTimeoutKillsCommand(t *testing.T) {
	r := startRelay(t, options{commands: `  nap:
    description: sleep
    argv: [/bin/sleep, "{secs}"]
    params:
      - {name: secs, type: int, min: 1, max: 60}
    timeout: 1s
    workdir: /
`})
	r.login()
	r.say("/nap 30")
	r.expect("timed out")
}

func TestLargeOutputArrivesAsDocument(t *testing.T) {
	r := startRelay(t, options{commands: `  big:
    description: ten megabytes of numbers
    argv: [/usr/bin/seq, "1", "1500000"]
    timeout: 30s
    workdir: /
    max_output: 32MiB
`})
	r.login()
	r.say("/big")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	doc, err := r.api.WaitDocument(ctx, func(d fakebotapi.Document) bool { return d.ChatID == ownerID })
	if err != nil {
		t.Fatalf("no document: %v\n%s", err, r.transcript())
	}
	if doc.Size < 10_000_000 {
		t.Errorf("got a %d-byte document, want the whole ~10 MB output", doc.Size)
	}
	if !strings.HasPrefix(doc.FileName, "big-") {
		t.Errorf("got file name %q, want it named after the command", doc.FileName)
	}
}

func TestStrangersGetSilence(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	r.api.SendMessage(stranger, fakebotapi.Private(stranger), "/help")
	r.api.SendMessage(stranger, fakebotapi.Private(stranger), "/login 123456")
	r.api.SendMessage(owner, fakebotapi.Group(-100123, "friends"), "/help")
	// The owner's own message afterwards is answered: the strangers'
	// updates were processed (in order) and got nothing.
	r.say("/help")
	r.expect("Commands")
	for _, m := range r.api.Sent() {
		if m.ChatID != ownerID {
			t.Errorf("relay answered chat %d: %q", m.ChatID, m.Text)
		}
	}
	r.stop(syscall.SIGTERM)
	if n := strings.Count(r.auditText(), `"type":"unauthorized"`); n < 3 {
		t.Errorf("got %d unauthorized records, want 3", n)
	}
}

func TestStaleBacklogNeverRuns(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd, before: func(r *relay) {
		old := time.Now().Add(-2 * time.Hour)
		r.api.SendMessage(owner, ownerDM, "/login "+code(t, old), fakebotapi.At(old))
		r.api.SendMessage(owner, ownerDM, "/echo stale", fakebotapi.At(old))
	}})
	r.expect("ignored messages")
	r.login()
	r.say("/echo fresh")
	r.expect("fresh")
	r.stop(syscall.SIGTERM)
	if n := strings.Count(r.auditText(), `"type":"exec_end"`); n != 1 {
		t.Errorf("got %d runs, want 1 (only the fresh one)", n)
	}
}

func TestMalformedEntityDoesNotCrash(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	r.api.SendMessage(owner, ownerDM, "/help", fakebotapi.WithEntities(fakebotapi.Entity{Type: "bot_command", Offset: 100, Length: 50}))
	r.say("/help")
	r.expect("Commands")
	select {
	case <-r.exited:
		t.Fatal("relay exited after a malformed entity")
	default:
	}
}

func TestSighupBadPolicyKeepsOldOne(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	r.login()
	good, err := os.ReadFile(r.cfgPath)
	must(t, err)
	must(t, os.WriteFile(r.cfgPath, append(good, []byte("  broken: {argv: [relative]}\nbogus_key: 1\n")...), 0o600))
	_ = r.cmd.Process.Signal(syscall.SIGHUP)
	r.expect("config reload failed")
	r.say("/echo still")
	r.expect("still")
	r.stop(syscall.SIGTERM)
	if !strings.Contains(r.auditText(), `"type":"config","outcome":"failed"`) {
		t.Error("the failed reload is not in the audit log")
	}
}

func TestSigtermDuringJob(t *testing.T) {
	r := startRelay(t, options{commands: `  nap:
    description: sleep
    argv: [/bin/sleep, "30"]
    timeout: 60s
    workdir: /
`, args: []string{"--shutdown-grace", "1s"}})
	r.login()
	r.say("/nap")
	r.say("/ps")
	r.expect("nap")
	if got := r.stop(syscall.SIGTERM); got != 0 {
		t.Errorf("got exit code %d, want 0", got)
	}
	r.verifyAudit()
	log := r.auditText()
	if !strings.Contains(log, `"type":"exec_end","outcome":"killed"`) {
		t.Error("the killed job's end is not in the audit log")
	}
	if !strings.Contains(log, `"type":"stop"`) {
		t.Error("no stop record")
	}
}
