package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit are set at link time from the release tag:
//
//	go build -ldflags "-X github.com/relaychat/relay/internal/cli.Version=$(git describe --tags --always --dirty)
//	  -X github.com/relaychat/relay/internal/cli.Commit=$(git rev-parse HEAD)" ./cmd/relay
//
// When they are empty, the build info stands in: the module version (a
// tag or pseudo-version under go install) and the VCS stamp that go build
// records in a git checkout.
var (
	Version = ""
	Commit  = ""
)

const versionUsage = `Usage:
    relay version
    relay --version

Prints one line: the version, the commit it was built from ("-dirty" when
the tree had changes) and the Go toolchain, e.g.

    relay v1.2.0 (commit 1a2b3c4d5e6f, go1.26.8 linux/amd64)
`

func init() {
	register(&command{
		name:  "version",
		short: "print the version, commit and Go version",
		usage: versionUsage,
		run: func(ctx context.Context, env *Env, args []string) error {
			fs := newFlags("version")
			if err := parseFlags(fs, args); err != nil {
				return err
			}
			if err := noArgs(fs); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, versionLine())
			return nil
		},
	})
}

// version is the bare version, for the daemon's log and /status.
func version() string {
	v, _ := buildVersion(Version, Commit, debug.ReadBuildInfo)
	return v
}

func versionLine() string {
	v, c := buildVersion(Version, Commit, debug.ReadBuildInfo)
	return fmt.Sprintf("relay %s (commit %s, %s %s/%s)", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildVersion picks the version and commit: the link-time values first,
// then the build info's module version and VCS stamp.
func buildVersion(linkVersion, linkCommit string, read func() (*debug.BuildInfo, bool)) (ver, commit string) {
	ver, commit = linkVersion, linkCommit
	bi, ok := read()
	if ver == "" && ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		ver = bi.Main.Version
	}
	if commit == "" && ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			commit = rev
			if modified == "true" {
				commit += "-dirty"
			}
		}
	}
	if ver == "" {
		ver = "devel"
	}
	if commit == "" {
		commit = "unknown"
	}
	// A short hash is enough to find the commit and keeps the line short.
	if len(commit) >= 40 && isHex(commit[:40]) {
		commit = commit[:12] + commit[40:]
	}
	return ver, commit
}

func isHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}
