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
	"sync"

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
	// Host is a running relay's set-up for all its commands (NewHost);
	// nil for a one-off command: no job cgroups (the per-process rlimits
	// still hold) and no trampolines started ahead.
	Host *Host
}

// Host is what a running relay sets up once for every command it
// launches: job cgroups, for which the relay moves itself into a leaf of
// its delegated cgroup v2 subtree (the kernel takes milliseconds to move a
// process), and sandbox trampolines started ahead of their jobs. The
// set-up runs in the background from Begin, which the relay calls once it
// is polling, so that it competes with nothing on the way to the first
// getUpdates; a command that comes first begins it and waits for it.
type Host struct {
	// Launcher keeps the trampolines started ahead.
	Launcher *sandbox.Launcher
	begin    sync.Once
	ready    chan struct{}
	cgroups  *cgroup.Tree
	setUp    func()
}

// NewHost prepares the set-up of a relay serving cfg. report is called
// once, from another goroutine, with the job cgroups' subtree or why there
// are none. Close the Host when the relay stops.
func NewHost(cfg *policy.Config, e Env, report func(*cgroup.Tree, error)) *Host {
	h := &Host{Launcher: sandbox.NewLauncher(), ready: make(chan struct{})}
	e.Host = h
	h.setUp = func() {
		// Decided once, before any job starts.
		tree, err := cgroup.Delegated()
		h.cgroups = tree
		close(h.ready)
		report(tree, err)
		Prewarm(cfg, e)
	}
	return h
}

// Begin starts the set-up in the background, once.
func (h *Host) Begin() { h.begin.Do(func() { go h.setUp() }) }

// Cgroups begins the set-up if need be, waits for it and returns the job
// cgroups' subtree, or nil when there are none.
func (h *Host) Cgroups() *cgroup.Tree {
	h.Begin()
	<-h.ready
	return h.cgroups
}

// Close waits for a set-up in progress, then kills the trampolines still
// waiting. A Host never begun begins nothing after it.
func (h *Host) Close() {
	h.begin.Do(func() { close(h.ready) })
	<-h.ready
	h.Launcher.Close()
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

// Prewarm has e's launcher start a trampoline, in the background, for
// each kind of sandbox cfg's commands use, so that the first command of
// each kind runs as fast as the next. A command whose profile cannot be
// built is skipped: it is refused, with the reason, when it runs.
func Prewarm(cfg *policy.Config, e Env) {
	if e.Host == nil {
		return
	}
	for _, c := range cfg.Commands {
		if c.Sandbox.Disabled {
			continue
		}
		if p, err := Profile(cfg, e, c); err == nil {
			p.Prewarm()
			_ = p.Close()
		}
	}
}

func options(cfg *policy.Config, e Env, c *policy.Command, workdir string) (sandbox.Options, error) {
	o := sandbox.Options{
		Protected: Protected(cfg, e),
		Workdir:   workdir,
		Timeout:   c.Timeout,
	}
	if e.Host != nil {
		o.Cgroups, o.Launcher = e.Host.Cgroups(), e.Host.Launcher
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
