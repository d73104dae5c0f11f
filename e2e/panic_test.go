package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestLockWhileRepliesAreHeldBack is the scenario from the daemon's
// review, on the real binary: with a job running, /status is answered
// with a 429 whose retry_after is 25 s, then /lock. The job must be dead
// while the /status answer is still held back. Before the outbound
// queue, the update loop waited out the 429 itself, and the job was still
// alive 5 s after /lock.
func TestLockWhileRepliesAreHeldBack(t *testing.T) {
	r := startRelay(t, options{commands: napCmd})
	r.login()
	r.say("/nap")
	r.say("/ps")
	r.expect("nap")
	r.api.RateLimit("sendMessage", 1, 25*time.Second)
	r.say("/status")
	r.say("/lock")
	// exec_end is written once the job's whole process group is gone.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(r.auditText(), `"type":"exec_end","outcome":"killed"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the job was never killed\n%s", r.transcript())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, m := range r.api.Sent() {
		if strings.Contains(m.Text, "jobs:") || strings.Contains(m.Text, "locked:") {
			t.Fatalf("the job died only after the held-back replies were sent: /lock waited for the 429\n%s", r.transcript())
		}
	}
}
