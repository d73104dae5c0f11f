package policy

import (
	_ "embed"
	"fmt"
	"os"
)

//go:embed default.yaml
var defaultYAML []byte

// Default returns the built-in policy of safe, sandboxed, read-only
// diagnostics (uptime, disk, memory, load, failed) with default settings,
// for running without a config file. Paths default as in DefaultPaths.
//
// Its Auth.OwnerID is 0: the caller must set it before use. This is the one
// path that skips the owner_id requirement; every loaded file must name its
// owner. A diagnostic whose program does not exist on this host (systemctl
// in a container, say) is dropped instead of failing.
func Default(getenv func(string) string) (*Config, error) {
	cfg, err := parseWith(parseOptions{name: "default policy", data: defaultYAML, getenv: getenv, dropMissing: true})
	if err != nil {
		return nil, fmt.Errorf("built-in default policy: %w", err)
	}
	cfg.Source = ""
	return cfg, nil
}

// Lookup returns the allowlisted command called name, or nil: anything
// not in the policy does not run.
func (c *Config) Lookup(name string) *Command {
	for _, cmd := range c.Commands {
		if cmd.Name == name {
			return cmd
		}
	}
	return nil
}

// exists reports whether p names something on this host.
func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
