// Package launch turns a bound policy invocation into an exec.Spec with its
// sandbox, so that `relay exec` and the bot run a command through exactly the
// same path.
//
// It must never return a Spec without a sandbox for a command whose policy
// does not say "sandbox: none": when the sandbox cannot be built, nothing runs.
package launch

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/sandbox"
	"github.com/relaychat/relay/policy"
)

// Env is what the host contributes to every launch.
type Env struct {
	// ConfigPath is the config file, protected from commands ("" if embedded).
	ConfigPath string
	// CredentialsDir is $CREDENTIALS_DIRECTORY, protected from commands.
	CredentialsDir string
}

// Protected lists the paths no sandboxed command may read or write: the
// relay's state, audit log, credentials, token file and config.
func Protected(cfg *policy.Config, e Env) []string {
	var ps []string
	for _, p := range []string{cfg.StateDir, cfg.Audit.Dir, e.CredentialsDir, cfg.Telegram.TokenFile, e.ConfigPath} {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			ps = append(ps, abs)
		}
	}
	return ps
}

// SpoolDir is where job output spills to disk: inside the state directory,
// which is 0700 and protected from every command.
func SpoolDir(cfg *policy.Config) string { return filepath.Join(cfg.StateDir, "spool") }

// Spec builds the exec.Spec for inv. done releases what the sandbox made
// for the command (its private temp dir); call it once the job has ended,
// or when the job never starts.
func Spec(cfg *policy.Config, inv *policy.Invocation, e Env) (spec exec.Spec, done func(), err error) {
	dir := SpoolDir(cfg)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return exec.Spec{}, nil, fmt.Errorf("create spool directory: %w", err)
	}
	if inv.Command.Sandbox.Disabled {
		return exec.SpecFor(inv, dir, nil), func() {}, nil
	}
	p, err := sandbox.New(inv.Command.Sandbox, sandbox.Options{
		Protected: Protected(cfg, e),
		TempDir:   os.TempDir(),
		Timeout:   inv.Command.Timeout,
	})
	if err != nil {
		return exec.Spec{}, nil, fmt.Errorf("sandbox unavailable, command refused: %w", err)
	}
	return exec.SpecFor(inv, dir, p), func() { _ = p.Close() }, nil
}

// ProfileName describes the sandbox profile of c for audit records and
// confirmations.
func ProfileName(c *policy.Command) string {
	s := c.Sandbox
	if s.Disabled {
		return "none"
	}
	name := "landlock+rlimits"
	if s.Namespaces {
		name += "+namespaces"
	}
	switch {
	case s.Network:
		name += ",net"
	case len(s.ConnectPorts) > 0:
		name += fmt.Sprintf(",tcp%v", s.ConnectPorts)
	default:
		name += ",nonet"
	}
	return name
}
