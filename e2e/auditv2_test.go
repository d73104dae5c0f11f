package e2e

import (
	"fmt"
	osexec "os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/relaychat/relay/internal/audit"
)

// TestSignedCheckpointInChat: the checkpoint the real relay sends at
// shutdown carries a signed checkpoint that the public key opens, that
// matches the log, and that relay audit verify accepts without K0.
func TestSignedCheckpointInChat(t *testing.T) {
	r := startRelay(t, options{commands: echoCmd})
	r.login()
	r.stop(syscall.SIGTERM)
	m := r.expect("audit checkpoint")
	pub, err := audit.ReadPublicKey(r.auditDir)
	must(t, err)
	notes := audit.FindCheckpoints(m.Text)
	if len(notes) != 1 {
		t.Fatalf("found %d signed checkpoints in %q, want 1", len(notes), m.Text)
	}
	cp, err := audit.OpenCheckpoint(notes[0], pub)
	must(t, err)
	sum, err := audit.VerifyFiles(audit.Files(r.auditDir), audit.VerifyOptions{Signed: []audit.Checkpoint{cp}})
	if err != nil || sum.Signed != 1 {
		t.Fatalf("verify with the chat's signed checkpoint: %+v, %v", sum, err)
	}
	if !audit.IsCheckpointText(m.Text) {
		t.Fatal("the checkpoint message is not recognised as one")
	}
	out, err := osexec.Command(relayBin, "audit", "verify", "--public-key", pub, "--checkpoint", m.Text, "--dir", r.auditDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "signed checkpoint(s) matched") {
		t.Fatalf("relay audit verify --public-key: %v\n%s", err, out)
	}
	if strings.Contains(string(out), fmt.Sprintf("%x", r.k0)) {
		t.Fatal("verify printed K0")
	}
}
