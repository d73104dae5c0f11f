package cli

import (
	"os"
	"strings"
	"testing"
)

// TestSandboxCheckNamesWhoCommandsRunAs: as root, sandbox check says who
// commands run as, and refuses a command user that does not exist rather
// than letting the commands fall back to anyone else.
func TestSandboxCheckNamesWhoCommandsRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the command user applies to a relay running as root")
	}
	for _, tc := range []struct {
		user     string
		wantCode int
		wantLine string
	}{
		{"no-such-user-relay-test", ExitFailure, `no    command user       command_user "no-such-user-relay-test" does not exist`},
		{"64999:64999", ExitOK, "ok    command user       64999:64999 (uid 64999, gid 64999)"},
		{"root", ExitConfig, ""},
	} {
		cfg, _ := writeConfig(t, "command_user: \""+tc.user+"\"\n")
		b, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, append(b, "  df:\n    argv: [/usr/bin/df]\n"...), 0o600)
		code, out, _ := runCLI(t, "sandbox", "check", "--config", cfg)
		if tc.wantCode == ExitConfig {
			if code != tc.wantCode {
				t.Errorf("command_user %s: got exit %d, want %d (an invalid config)", tc.user, code, tc.wantCode)
			}
			continue
		}
		if code != tc.wantCode || !strings.Contains(out, tc.wantLine) {
			t.Errorf("command_user %s: got exit %d, output:\n%s\nwant exit %d and %q", tc.user, code, out, tc.wantCode, tc.wantLine)
		}
		if !strings.Contains(out, "job cgroups") {
			t.Errorf("no job cgroups line in:\n%s", out)
		}
	}
}

// TestExecSaysWhoTheCommandRanAs: relay exec's status line states the
// identity a command had, or that it had no sandbox.
func TestExecSaysWhoTheCommandRanAs(t *testing.T) {
	cfg := execPolicy(t)
	_, _, stderr := runCLI(t, "exec", "--config", cfg, "args", "x")
	if !strings.Contains(stderr, ", unsandboxed (sandbox: none)") {
		t.Errorf("stderr %q: want it to say the command ran unsandboxed", stderr)
	}
}
