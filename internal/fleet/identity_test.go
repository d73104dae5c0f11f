package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKnownHostsFile: a host pinned by a known_hosts file of the owner's
// instead of host_key, matched by address and port as OpenSSH does.
func TestKnownHostsFile(t *testing.T) {
	m := newMember(t, "nas", memberOpts{})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	must(t, os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", m.port, readPub(t, m.hostKey))), 0o600))
	entry := strings.Replace(m.hubEntry(), fmt.Sprintf("    host_key: %q\n", readPub(t, m.hostKey)), "    known_hosts: "+kh+"\n", 1)
	h := newHubWith(t, "", entry)
	if r := h.call(t, "nas", "hello", "kh"); r.Kind != KindOK || output(r) != "kh\n" {
		t.Fatalf("got %s %q", r.Kind, r.Reason)
	}
	// The same file with another key for that address: refused.
	other := filepath.Join(t.TempDir(), "other")
	must(t, keygen(other, "x"))
	must(t, os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", m.port, readPub(t, other))), 0o600))
	h.f.Close()
	if r := h.call(t, "nas", "hello", "kh"); r.Kind != KindHostKey {
		t.Errorf("got %s %q, want a host key mismatch", r.Kind, r.Reason)
	}
}

// TestIdentityInAnAgent: the hub's key is held by a real ssh-agent and
// never read from a file; identity names its public half.
func TestIdentityInAnAgent(t *testing.T) {
	needHarness(t)
	agentBin, err := exec.LookPath("ssh-agent")
	if err != nil {
		t.Skip("no ssh-agent")
	}
	m := newMember(t, "nas", memberOpts{})
	dir, err := os.MkdirTemp(base, "ag")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "a.sock")
	agent := exec.Command(agentBin, "-D", "-a", sock)
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, agent.Start())
	t.Cleanup(func() { syscall.Kill(-agent.Process.Pid, syscall.SIGKILL); agent.Wait() })
	waitFor(t, 10*time.Second, "ssh-agent's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	add := exec.Command("ssh-add", hubKey)
	add.Env = []string{"SSH_AUTH_SOCK=" + sock}
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	entry := strings.Replace(m.hubEntry(), "    identity: "+hubKey+"\n", "    identity: "+hubKey+".pub\n    agent: "+sock+"\n", 1)
	h := newHubWith(t, "", entry)
	if r := h.call(t, "nas", "hello", "agent"); r.Kind != KindOK || output(r) != "agent\n" {
		t.Fatalf("got %s %q", r.Kind, r.Reason)
	}
	// The key leaves the agent: the hub has nothing to sign with.
	del := exec.Command("ssh-add", "-D")
	del.Env = []string{"SSH_AUTH_SOCK=" + sock}
	if out, err := del.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add -D: %v %s", err, out)
	}
	h.f.Close()
	if r := h.call(t, "nas", "hello", "agent"); r.Kind != KindAuth {
		t.Errorf("without the key in the agent: got %s %q, want the member to refuse the hub", r.Kind, r.Reason)
	}
}
