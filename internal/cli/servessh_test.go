package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/remote"
)

func memberPolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "relay.yaml")
	src := `member: {}
state_dir: ` + filepath.Join(dir, "state") + `
audit: {dir: ` + filepath.Join(dir, "audit") + `}
commands:
  hi:
    description: say hi
    argv: [/usr/bin/printf, "hi %s\n", "{who}"]
    params:
      - {name: who, type: enum, values: [you, me]}
    sandbox: none
  local:
    argv: [/usr/bin/true]
    hub: false
    sandbox: none
`
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Init(filepath.Join(dir, "audit"), nil); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeSSHList(t *testing.T) {
	cfg := memberPolicy(t)
	code, out, errOut := cliRun(t, nil, "", "serve-ssh", "--config", cfg, "--list")
	if code != 0 || errOut != "" {
		t.Fatalf("got %d %q", code, errOut)
	}
	var l remote.List
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Commands) != 1 || l.Commands[0].Name != "hi" || l.Commands[0].Usage != "/hi <who: you|me>" || len(l.Digest) != 64 {
		t.Errorf("got %+v, want /hi only", l)
	}
}

func TestServeSSHRuns(t *testing.T) {
	cfg := memberPolicy(t)
	req, _ := (&remote.Request{Op: remote.OpRun, Call: remote.NewCallID(), Command: "hi", Args: []string{"you"}, MaxOutput: 100}).Encode()
	code, out, errOut := cliRun(t, map[string]string{"SSH_ORIGINAL_COMMAND": req}, "", "serve-ssh", "--config", cfg)
	if code != 0 || errOut != "" || !strings.Contains(out, "hi you\n") || !strings.Contains(out, remote.TrailerPrefix) {
		t.Errorf("got %d %q %q", code, out, errOut)
	}
	code, out, errOut = cliRun(t, nil, "", "serve-ssh", "--config", cfg)
	if code != remote.ExitUsage || out != "" || !strings.HasPrefix(errOut, "relay serve-ssh: no request") {
		t.Errorf("no request: got %d %q %q", code, out, errOut)
	}
}

func TestServeSSHNeedsAMemberConfig(t *testing.T) {
	cfg := execPolicy(t) // a bot's config: no member:
	code, out, errOut := cliRun(t, map[string]string{"SSH_ORIGINAL_COMMAND": "x"}, "", "serve-ssh", "--config", cfg)
	if code != remote.ExitConfig || out != "" || !strings.Contains(errOut, "is not a member's config") {
		t.Errorf("got %d %q %q", code, out, errOut)
	}
	code, _, errOut = cliRun(t, nil, "", "serve-ssh", "--config", filepath.Join(t.TempDir(), "none.yaml"))
	if code != remote.ExitConfig || !strings.Contains(errOut, "relay serve-ssh: no config") {
		t.Errorf("missing config: got %d %q", code, errOut)
	}
}

func TestRunRefusesAMemberConfig(t *testing.T) {
	noKeyring(t)
	cfg := memberPolicy(t)
	code, _, errOut := cliRun(t, nil, "", "run", "--config", cfg)
	if code != ExitConfig || !strings.Contains(errOut, "no auth.owner_id: it is a fleet member's config") {
		t.Errorf("got %d %q", code, errOut)
	}
}

// TestServeSSHExitCodesDocumented keeps docs/reference.md to serve-ssh's
// codes, and the codes in their own range: above what a shell or a
// command uses for itself, below ssh's 255.
func TestServeSSHExitCodesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range remote.ExitCodes {
		row := fmt.Sprintf("| `%d` | %s |", c.Code, c.Meaning)
		if !strings.Contains(string(b), row) {
			t.Errorf("docs/reference.md lacks the row %s", row)
		}
		if c.Code != remote.ExitRan && (c.Code < 64 || c.Code > 125) {
			t.Errorf("serve-ssh code %d is outside 64-125", c.Code)
		}
	}
	if !strings.Contains(serveSSHUsage, "75  the hub's key is not in member.hub_keys") {
		t.Error("relay serve-ssh -h lacks the codes")
	}
}

// TestServeSSHWitness: --witness serves a bot's config as well as a
// member's (any relay host has a log to witness), answers audit-head,
// and refuses a run; without --witness the same audit request is refused.
func TestServeSSHWitness(t *testing.T) {
	cfg := execPolicy(t) // a bot's config: no member:
	if _, err := audit.Init(filepath.Join(filepath.Dir(cfg), "audit"), nil); err != nil {
		t.Fatal(err)
	}
	head, _ := (&remote.Request{Op: remote.OpAuditHead, Call: remote.NewCallID()}).Encode()
	code, out, errOut := cliRun(t, map[string]string{"SSH_ORIGINAL_COMMAND": head}, "", "serve-ssh", "--witness", "--config", cfg)
	if code != 0 || !strings.Contains(out, "relay-audit/") {
		t.Errorf("audit-head: got %d %q %q", code, out, errOut)
	}
	member := memberPolicy(t)
	code, out, errOut = cliRun(t, map[string]string{"SSH_ORIGINAL_COMMAND": head}, "", "serve-ssh", "--config", member)
	if code != remote.ExitNotWitness || out != "" || !strings.HasPrefix(errOut, "relay serve-ssh: audit-head refused") {
		t.Errorf("hub key asking audit-head: got %d %q %q", code, out, errOut)
	}
	run, _ := (&remote.Request{Op: remote.OpRun, Call: remote.NewCallID(), Command: "hi", Args: []string{"you"}, MaxOutput: 100}).Encode()
	code, out, errOut = cliRun(t, map[string]string{"SSH_ORIGINAL_COMMAND": run}, "", "serve-ssh", "--witness", "--config", member)
	if code != remote.ExitWitnessOnly || out != "" || !strings.HasPrefix(errOut, "relay serve-ssh: run refused") {
		t.Errorf("witness key asking to run: got %d %q %q", code, out, errOut)
	}
	if code, _, _ := cliRun(t, nil, "", "serve-ssh", "--witness", "--list", "--config", member); code != 2 {
		t.Errorf("--witness --list: got %d, want 2", code)
	}
}
