// Package fleet is the hub's side of fleet control: it reaches the members
// named in the config's hosts: only by running the system's OpenSSH client
// with a fixed, audited option set (through internal/exec, with an empty
// environment, a timeout and bounded output), sends one request, reads the
// member's framed answer, and turns every way a call can end into a typed
// result whose reason is safe to show: ran (with the member's status,
// digest and audit head), refused by the member (with the member's
// reason), unreachable, host key mismatch (with the fingerprint seen),
// sandbox or audit log unavailable on the member, timed out. It fans a
// command out to many members within a per-fan-out limit, builds the hub's
// audit records of each call, checks each host for relay doctor, and
// cross-checks the hub's log against a member's.
//
// It must never trust a host key on first use, never retry a call
// silently, never let a chat message reach ssh other than as the encoded
// request (one argument after the destination), never start a call whose
// request the caller could not audit, and never render for a chat: its
// results are plain data (internal/chatfmt renders them).
package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/suggest"
	"github.com/relaychat/relay/policy"
)

// Options adjust New.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Fleet is the hub's view of its members, built from one loaded config.
// A reloaded config needs a new Fleet (Close the old one).
type Fleet struct {
	cfg    *policy.Config
	dir    string // state_dir/fleet, 0700
	logDir string
	spool  string
	runner *exec.Runner
	conns  map[string]*conn
	now    func() time.Time
}

// Dir is where a hub keeps its fleet state inside the state directory:
// the relay-managed known_hosts files, ssh's control sockets and its
// per-call logs.
func Dir(cfg *policy.Config) string { return filepath.Join(cfg.StateDir, "fleet") }

// New prepares the hub's state for cfg's hosts: it writes the pinned host
// keys into relay-managed known_hosts files and checks that ssh's control
// sockets fit their path limit.
func New(cfg *policy.Config, o Options) (*Fleet, error) {
	f := &Fleet{cfg: cfg, dir: Dir(cfg), runner: exec.NewRunner(cfg.Fleet.MaxCalls), conns: map[string]*conn{}, now: o.Now}
	if f.now == nil {
		f.now = time.Now
	}
	f.logDir = filepath.Join(f.dir, "log")
	f.spool = launch.SpoolDir(cfg)
	// The control sockets' directory has a short name: a socket's path
	// is limited to about 90 bytes.
	khDir, cmDir := filepath.Join(f.dir, "known_hosts"), filepath.Join(f.dir, "c")
	for _, d := range []string{cfg.StateDir, f.dir, khDir, cmDir, f.logDir, f.spool} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
	}
	for _, h := range cfg.Hosts {
		c := &conn{host: h, knownHosts: h.KnownHosts}
		if h.HostKey != "" {
			var err error
			if c.knownHosts, err = PinKnownHosts(filepath.Join(khDir, h.Name), h); err != nil {
				return nil, fmt.Errorf("fleet: %w", err)
			}
		}
		c.build(&cfg.Fleet)
		if cfg.Fleet.Persist > 0 {
			c.controlPath = controlPath(cmDir, h, c.opts, pins(h))
			if len(c.controlPath) > maxControlPath {
				return nil, fmt.Errorf("fleet: state_dir %s is too long for ssh's control sockets (%d bytes, at most %d); set a shorter state_dir, or fleet.persist: 0s to open a connection per call", cfg.StateDir, len(c.controlPath), maxControlPath)
			}
		}
		f.conns[h.Name] = c
	}
	return f, nil
}

// Config is the config the fleet was built from.
func (f *Fleet) Config() *policy.Config { return f.cfg }

// Hosts names every host, in config order.
func (f *Fleet) Hosts() []string {
	names := make([]string, len(f.cfg.Hosts))
	for i, h := range f.cfg.Hosts {
		names[i] = h.Name
	}
	return names
}

// TargetError is a target that names no host or group; its message is
// safe to show in the chat.
type TargetError struct{ Msg string }

func (e *TargetError) Error() string { return e.Msg }

// SafeToShow is the message.
func (e *TargetError) SafeToShow() string { return e.Msg }

// Resolve expands a target, as typed after /on: a host, a group, "all",
// or several of them joined by commas ("web,nas"). Case is ignored (a
// phone capitalises the first word). It returns host names in config
// order, each once.
func (f *Fleet) Resolve(target string) ([]string, error) {
	if len(f.cfg.Hosts) == 0 {
		return nil, &TargetError{Msg: "this relay has no hosts (add hosts: to its config)"}
	}
	want := map[string]bool{}
	for _, t := range strings.Split(strings.ToLower(target), ",") {
		switch {
		case t == policy.AllHosts:
			for _, h := range f.cfg.Hosts {
				want[h.Name] = true
			}
		case f.cfg.Host(t) != nil:
			want[t] = true
		case f.cfg.Group(t) != nil:
			for _, n := range f.cfg.Group(t).Hosts {
				want[n] = true
			}
		default:
			return nil, &TargetError{Msg: f.unknown(t)}
		}
	}
	var out []string
	for _, h := range f.cfg.Hosts {
		if want[h.Name] {
			out = append(out, h.Name)
		}
	}
	return out, nil
}

// unknown says that t names no host or group, quoting it only when it is
// short, printable ASCII: it came from the chat.
func (f *Fleet) unknown(t string) string {
	names := append(f.Hosts(), policy.AllHosts)
	for _, g := range f.cfg.Groups {
		names = append(names, g.Name)
	}
	if t == "" {
		return "no host given; hosts: " + strings.Join(names, ", ")
	}
	shown := "that"
	if len(t) <= 32 && !strings.ContainsFunc(t, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		shown = fmt.Sprintf("%q", t)
	}
	if s := suggest.Closest(t, names); s != "" {
		return fmt.Sprintf("no host or group %s (did you mean %s?)", shown, s)
	}
	slices.Sort(names)
	return fmt.Sprintf("no host or group %s; hosts and groups: %s", shown, strings.Join(names, ", "))
}

// Close ends the connections kept for reuse once their calls are done:
// ssh's master stops taking new sessions ("-O stop", not "exit", which
// would cut the calls in flight, this process's or another's sharing the
// socket) and exits with its last one.
func (f *Fleet) Close() {
	for _, c := range f.conns {
		if c.controlPath == "" {
			continue
		}
		if _, err := os.Stat(c.controlPath); err != nil {
			continue
		}
		spec := exec.Spec{Argv: []string{f.cfg.Fleet.SSH, "-F", "none", "-o", "ControlPath=" + c.controlPath, "-O", "stop", "relay-host"},
			Dir: "/", Timeout: 5 * time.Second, MaxOutput: 4096, SpoolDir: f.spool}
		if job, err := f.runner.Start(context.Background(), "close", f.cfg.Fleet.MaxCalls, spec); err == nil {
			res := job.Wait()
			res.Output.Close()
		}
	}
}
