package fleet

import (
	"bytes"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

// relay runs the real binary as the hub's CLI.
func relay(t *testing.T, h *hub, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(relayBin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + h.dir, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent"}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

func TestHubCLI(t *testing.T) {
	nas := newMember(t, "nas", memberOpts{})
	web := newMember(t, "web", memberOpts{})
	shell := newMember(t, "shell", memberOpts{keyLine: "%s"})
	h := newHub(t, "groups:\n  two: [nas, web]", nas, web, shell)

	code, out, errOut := relay(t, h, "exec", "--config", h.cfgPath, "--host", "nas", "hello", "world")
	if code != 0 || out != "world\n" || !strings.HasPrefix(errOut, "exit 0, ") {
		t.Errorf("exec --host nas: got %d %q %q", code, out, errOut)
	}
	code, out, _ = relay(t, h, "exec", "--config", h.cfgPath, "--host", "two", "hello", "hi")
	if code != 0 || !strings.Contains(out, "nas: hi\n") || !strings.Contains(out, "web: hi\n") {
		t.Errorf("exec --host two: got %d %q", code, out)
	}
	code, _, errOut = relay(t, h, "exec", "--config", h.cfgPath, "--host", "nas", "hello", "Nope")
	if code != 2 || !strings.Contains(errOut, "relay: error: nas: /hello: argument") {
		t.Errorf("a refused argument: got %d %q", code, errOut)
	}
	code, _, errOut = relay(t, h, "exec", "--config", h.cfgPath, "--host", "nsa", "hello", "x")
	if code != 2 || !strings.Contains(errOut, "did you mean nas?") {
		t.Errorf("a mistyped host: got %d %q", code, errOut)
	}
	code, _, errOut = relay(t, h, "exec", "--config", h.cfgPath, "--host", "nas", "fails")
	if code != 6 || !strings.Contains(errOut, "exit 3") {
		t.Errorf("a failing command: got %d %q", code, errOut)
	}

	// doctor: each host's lines; the shell key is reported.
	_, out, _ = relay(t, h, "doctor", "--config", h.cfgPath)
	for _, want := range []string{"ok    nas restricted", "ok    nas forwarding", "ok    web host key", "FAIL  shell restricted"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}

	// audit verify --host: the calls above are in nas's log.
	code, out, errOut = relay(t, h, "audit", "verify", "--config", h.cfgPath, "--key", hex.EncodeToString(h.k0), "--host", "nas", "--member-key", hex.EncodeToString(nas.k0), nas.auditDir)
	if code != 0 || !strings.Contains(out, "nas: 4 remote calls in the hub's log: 3 found in the member's log as recorded, 1 refused there") {
		t.Errorf("audit verify --host nas: got %d %q %q", code, out, errOut)
	}
	code, out, _ = relay(t, h, "audit", "verify", "--config", h.cfgPath, "--key", hex.EncodeToString(h.k0), "--host", "nas", web.auditDir)
	if code != 4 || !strings.Contains(out, "MISSING OR DIFFERENT") {
		t.Errorf("audit verify --host nas against web's log: got %d %q", code, out)
	}
}
