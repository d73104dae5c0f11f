package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSurvivesBotAPIFaults throws 5xx pages that echo the token-bearing URL,
// 429s with retry_after, dropped connections and slow answers at the relay.
// It must keep serving, honour retry_after, never log the token, and lose no
// audit record.
func TestSurvivesBotAPIFaults(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	// A proxy's error page that quotes the request path, token included.
	page := "<html><body><h1>502 Bad Gateway</h1><p>upstream failed for /bot" + testToken + "/getUpdates</p></body></html>"
	r.api.Fail("getUpdates", 2, 502, page, "text/html")
	r.api.Drop("getUpdates", 1)
	r.api.RateLimit("getUpdates", 1, time.Second)
	r.login()

	r.api.RateLimit("sendMessage", 2, time.Second)
	r.say("/echo limited")
	r.expect("limited")

	sendPage := "<html>bad gateway /bot" + testToken + "/sendMessage</html>"
	r.api.Fail("sendMessage", 1, 502, sendPage, "text/html")
	r.say("/echo gateway")
	r.expect("gateway")

	r.api.Drop("sendMessage", 1)
	r.say("/echo dropped")
	r.expect("dropped")

	r.api.Delay("sendMessage", 2*time.Second)
	r.say("/echo slow")
	r.expect("slow")
	r.api.Delay("sendMessage", 0)

	if n := r.api.RetriedTooEarly(); n != 0 {
		t.Errorf("the relay came back %d times before retry_after elapsed", n)
	}
	if got := r.stop(syscall.SIGTERM); got != 0 {
		t.Errorf("got exit code %d, want 0", got)
	}
	r.verifyAudit()
	log := r.auditText()
	if n := strings.Count(log, `"type":"exec_end"`); n != 4 {
		t.Errorf("got %d completion records, want 4", n)
	}
	if strings.Contains(log, testToken) {
		t.Error("the token reached the audit log")
	}
	// The harness's cleanup also fails the test if the token reached the
	// relay's own log.
}
