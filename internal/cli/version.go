package cli

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Version is set at link time (-ldflags "-X ...cli.Version=v1.2.3"); when
// empty the module version from the build info is used.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func init() {
	register(&command{
		name:  "version",
		short: "print the version",
		usage: "Usage:\n    relay version\n",
		run: func(ctx context.Context, env *Env, args []string) error {
			fs := newFlags("version")
			if err := parseFlags(fs, args); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "relay %s\n", version())
			return nil
		},
	})
}
