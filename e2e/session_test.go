package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	osexec "os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
)

const napCmd = `  nap:
    description: sleep a while
    argv: [/bin/sleep, "30"]
    timeout: 60s
    workdir: /
`

func TestReauthNeedsAFreshCode(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd + `  secure:
    description: needs a fresh code
    argv: [/bin/echo, stepped-up]
    timeout: 10s
    workdir: /
    reauth: true
`})
	r.login() // uses the current step
	r.say("/secure")
	r.expect("fresh TOTP code")
	// The login's code is spent: a step-up needs a newer step.
	r.say("/secure " + code(t, time.Now()))
	r.expect("step-up failed")
	next := code(t, time.Now().Add(30*time.Second))
	msg := r.say("/secure " + next)
	r.expect("stepped-up")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.api.WaitDeleted(ctx, ownerID, msg); err != nil {
		t.Errorf("the message carrying the code was not deleted: %v", err)
	}
	r.say("/secure " + next)
	r.expect("step-up failed")
}

// TestSessionsExpireInChat runs the real binary with short session
// limits: an idle session and one past its lifetime both refuse commands,
// the owner is told why once, and each end is in the audit log. The exact
// boundaries are tested with an injected clock in internal/auth; this
// shows the daemon enforces them on a real clock.
func TestSessionsExpireInChat(t *testing.T) {
	const idle, lifetime = 5 * time.Second, 8 * time.Second
	r := startRelay(t, options{commands: echoCmd, auth: "  session_idle: 5s\n  session_max: 8s"})

	r.login()
	r.say("/echo one")
	r.expect("one")
	time.Sleep(idle + 500*time.Millisecond)
	r.say("/echo two")
	r.expect("session expired (idle for 5s): send /login")
	r.say("/echo three")
	r.expect("not logged in") // told once; the rest is the usual answer

	// Active all along, the session still ends at its lifetime. The login
	// is timed from when its answer arrived, after the relay started the
	// session, so the relay's clock is ahead of this one. The last
	// keep-alive leaves 3.5 s before the lifetime ends; the final request
	// comes after the lifetime and, if late, after the idle limit too, but
	// the lifetime ended first either way.
	r.say("/login " + code(t, time.Now().Add(30*time.Second)))
	r.expect("logged in")
	loggedIn := time.Now()
	for i := 1; time.Since(loggedIn) < lifetime-4*time.Second; i++ {
		time.Sleep(1500 * time.Millisecond)
		w := fmt.Sprintf("keep%d", i)
		r.say("/echo " + w)
		r.expect(w)
	}
	time.Sleep(time.Until(loggedIn.Add(lifetime + 500*time.Millisecond)))
	r.say("/echo late")
	r.expect("session expired (reached its lifetime of 8s): send /login")

	r.stop(syscall.SIGTERM)
	log := r.auditText()
	for _, want := range []string{`"outcome":"expired","reason":"idle"`, `"outcome":"expired","reason":"lifetime"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if !strings.Contains(log, `"argv":["/bin/echo","one"]`) {
		t.Error("audit log lacks the command run in the session; the check below would prove nothing")
	}
	for _, w := range []string{"two", "three", "late"} {
		if strings.Contains(log, `"argv":["/bin/echo","`+w+`"]`) {
			t.Errorf("/echo %s ran without a live session", w)
		}
	}
	r.verifyAudit()
}

func TestLockKillsJobsAndNeedsFreshLogin(t *testing.T) {
	r := startRelay(t, options{commands: napCmd + echoCmd})
	r.login()
	r.say("/nap")
	r.say("/ps")
	r.expect("nap")
	r.say("/lock")
	r.expectAll("1 jobs killed", "· killed ·")
	r.say("/echo x")
	r.expect("not logged in")
	// A code from before the lock cannot undo it.
	r.say("/login " + code(t, time.Now()))
	r.expect("login failed")
	r.say("/login " + code(t, time.Now().Add(30*time.Second)))
	r.expect("logged in")
}

func TestKillAndAuditInChat(t *testing.T) {
	r := startRelay(t, options{commands: napCmd})
	r.login()
	r.say("/nap")
	r.say("/ps")
	ps := r.expect("nap")
	id := strings.Fields(strings.TrimSpace(ps.Text))[0]
	r.say("/kill " + id)
	r.expectAll("killing job "+id, "· killed ·")
	r.say("/audit 5")
	m := r.expect("last 5 audit records")
	if !strings.Contains(m.Text, "exec_end") {
		t.Errorf("got /audit %q, want the job's end among the records", m.Text)
	}
}

// TestCheckpointAtShutdown: the owner's chat gets the chain head, and verify
// accepts it; a log truncated before it is then caught.
func TestCheckpointAtShutdown(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	r.login()
	r.stop(syscall.SIGTERM)
	m := r.expect("audit checkpoint")
	head, err := audit.ParseCheckpoint(m.Text)
	must(t, err)
	if _, err := audit.Verify(audit.Files(r.auditDir), r.k0, []audit.Head{head}); err != nil {
		t.Fatalf("verify with the chat's checkpoint: %v", err)
	}
	cmd := osexec.Command(relayBin, "audit", "verify", "--key", fmt.Sprintf("%x", r.k0), "--checkpoint", m.Text, "--dir", r.auditDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("relay audit verify: %v\n%s", err, out)
	}
}

// TestWebhookMode: the relay registers a webhook with a random path and a
// secret, serves updates that carry the secret, and answers 401 to the rest.
func TestWebhookMode(t *testing.T) {
	port := freePort(t)
	r := startRelay(t, options{commands: echoCmd, webhook: true, telegram: fmt.Sprintf(`  mode: webhook
  webhook:
    listen: 127.0.0.1:%d
    url: https://relay.example.test
`, port)})
	call := r.webhookCall()
	u, err := url.Parse(call.URL)
	must(t, err)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d%s", port, u.Path)
	post := func(secret string, body []byte) int {
		req, _ := http.NewRequest("POST", endpoint, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
		var resp *http.Response
		for i := 0; i < 100; i++ {
			if resp, err = http.DefaultClient.Do(req); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
			req, _ = http.NewRequest("POST", endpoint, bytes.NewReader(body))
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
		}
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("wrong-secret-wrong-secret", ownerUpdate(1, "/help")); got != http.StatusUnauthorized {
		t.Errorf("got %d for a wrong secret, want 401", got)
	}
	if got := post(call.SecretToken, ownerUpdate(2, "/help")); got != http.StatusOK {
		t.Fatalf("got %d for the right secret, want 200", got)
	}
	r.expect("Commands")
	for _, m := range r.api.Sent() {
		if m.ChatID == ownerID && strings.Count(m.Text, "Commands") > 1 {
			t.Error("the wrong-secret update was handled")
		}
	}
	if n := len(r.api.Sent()); n != 1 {
		t.Errorf("got %d messages, want only the answer to the authenticated update", n)
	}
}
