// Package launch turns a bound policy invocation into an exec.Spec with its
// sandbox, so that `relay exec` and the bot run a command through exactly the
// same path.
//
// It must never return a Spec without a sandbox for a command whose policy
// does not say "sandbox: none": when the sandbox cannot be built, nothing runs.
package launch

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/relaychat/relay/internal/cgroup"
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
	// Cgroups is the relay's delegated cgroup v2 subtree for job
	// cgroups; nil leaves only the per-process rlimits.
	Cgroups *cgroup.Tree
	// Launcher keeps sandbox trampolines started ahead of their jobs; nil
	// starts each when its job does.
	Launcher *sandbox.Launcher
}

// Protected lists the paths no sandboxed command may read or write: the
// relay's state, audit log, credentials, token file and config, and the
// notify group's socket directory when notify.group is set (a command
// there could replace the socket, or reach it with the relay's uid).
func Protected(cfg *policy.Config, e Env) []string {
	var ps []string
	notify := ""
	if cfg.Notify.Group != "" {
		notify = cfg.Notify.Dir
	}
	for _, p := range []string{cfg.StateDir, cfg.Audit.Dir, e.CredentialsDir, cfg.Telegram.TokenFile, e.ConfigPath, notify} {
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
// for the command; call it once the job has ended, or when the job never
// starts.
func Spec(cfg *policy.Config, inv *policy.Invocation, e Env) (spec exec.Spec, done func(), err error) {
	dir := SpoolDir(cfg)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return exec.Spec{}, nil, fmt.Errorf("create spool directory: %w", err)
	}
	if inv.Command.Sandbox.Disabled {
		return exec.SpecFor(inv, dir, nil), func() {}, nil
	}
	o, err := options(cfg, e, inv.Command, inv.Dir)
	if err != nil {
		return exec.Spec{}, nil, fmt.Errorf("sandbox unavailable, command refused: %w", err)
	}
	p, err := sandbox.New(inv.Command.Sandbox, o)
	if err != nil {
		return exec.Spec{}, nil, fmt.Errorf("sandbox unavailable, command refused: %w", err)
	}
	return exec.SpecFor(inv, dir, p), func() { _ = p.Close() }, nil
}

// Profile builds the sandbox profile of c as Spec would, for the checks of
// `relay sandbox check` and `relay doctor`.
func Profile(cfg *policy.Config, e Env, c *policy.Command) (*sandbox.Profile, error) {
	o, err := options(cfg, e, c, c.Workdir)
	if err != nil {
		return nil, err
	}
	return sandbox.New(c.Sandbox, o)
}

func options(cfg *policy.Config, e Env, c *policy.Command, workdir string) (sandbox.Options, error) {
	o := sandbox.Options{
		Protected: Protected(cfg, e),
		Workdir:   workdir,
		Timeout:   c.Timeout,
		Cgroups:   e.Cgroups,
		Launcher:  e.Launcher,
	}
	if os.Geteuid() == 0 {
		id, err := CommandUser(cfg.CommandUser)
		if err != nil {
			return o, fmt.Errorf("%w: relay runs as root and commands run as command_user: %w (create it: useradd --system --no-create-home --shell /usr/sbin/nologin relay-cmd)", sandbox.ErrUnenforceable, err)
		}
		o.CommandUser = &id
	}
	return o, nil
}

// CommandUser resolves command_user, a user name or uid:gid, to the ids
// commands run as when the relay runs as root.
func CommandUser(s string) (sandbox.Identity, error) {
	if u, g, ok := strings.Cut(s, ":"); ok {
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return sandbox.Identity{}, fmt.Errorf("command_user %q: want a user name or uid:gid", s)
		}
		return sandbox.Identity{UID: uid, GID: gid}, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return sandbox.Identity{}, fmt.Errorf("command_user %q does not exist", s)
		}
		return sandbox.Identity{}, fmt.Errorf("command_user %q: %w", s, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return sandbox.Identity{UID: uid, GID: gid}, nil
}
