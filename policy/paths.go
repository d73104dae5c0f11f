package policy

import (
	"path/filepath"
	"strings"
)

// Paths are the default locations of the relay's private state and its
// audit log, used when the config does not name them.
type Paths struct {
	StateDir string // "" when the environment gives no clue
	AuditDir string
}

// DefaultPaths derives the default state and audit directories from the
// environment: under systemd, $STATE_DIRECTORY and $LOGS_DIRECTORY (the
// first entry when a list); otherwise $XDG_STATE_HOME/relay and
// $XDG_STATE_HOME/relay/audit, with $XDG_STATE_HOME defaulting to
// $HOME/.local/state. A relative value is ignored, as the XDG spec asks.
func DefaultPaths(getenv func(string) string) Paths {
	first := func(k string) string {
		v, _, _ := strings.Cut(getenv(k), ":")
		if !filepath.IsAbs(v) {
			return ""
		}
		return filepath.Clean(v)
	}
	xdg := first("XDG_STATE_HOME")
	if xdg == "" {
		if h := first("HOME"); h != "" {
			xdg = filepath.Join(h, ".local", "state")
		}
	}
	var p Paths
	if xdg != "" {
		p.StateDir = filepath.Join(xdg, "relay")
		p.AuditDir = filepath.Join(xdg, "relay", "audit")
	}
	if s := first("STATE_DIRECTORY"); s != "" {
		p.StateDir = s
		p.AuditDir = filepath.Join(s, "audit")
	}
	if l := first("LOGS_DIRECTORY"); l != "" {
		p.AuditDir = l
	}
	return p
}
