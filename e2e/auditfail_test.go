package e2e

import (
	osexec "os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/relaychat/relay/internal/audit"
)

// TestNoAuditNoExecution makes the live audit file immutable (chattr +i
// stops even root from writing), so the relay cannot record the request:
// the command must not run. Once the file is writable again the relay heals
// the log, records the failure, and runs commands again.
func TestNoAuditNoExecution(t *testing.T) {
	need(t, "chattr")
	r := startRelay(t, options{commands: echoCmd})
	r.login()
	files := audit.Files(r.auditDir)
	live := files[len(files)-1]
	if out, err := osexec.Command("chattr", "+i", live).CombinedOutput(); err != nil {
		t.Skipf("chattr +i not supported here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = osexec.Command("chattr", "-i", live).Run() })

	r.say("/echo blocked")
	r.expect("audit log unavailable")

	if out, err := osexec.Command("chattr", "-i", live).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v %s", err, out)
	}
	r.say("/echo healed")
	r.expect("healed")
	r.stop(syscall.SIGTERM)
	r.verifyAudit()
	log := r.auditText()
	if strings.Contains(log, "blocked") {
		t.Error("the refused request reached the log after all")
	}
	if n := strings.Count(log, `"type":"exec_end"`); n != 1 {
		t.Errorf("got %d runs, want 1: the command refused for lack of audit must not have run", n)
	}
	if !strings.Contains(log, `"type":"recovery"`) {
		t.Error("no recovery record names the failure")
	}
}
