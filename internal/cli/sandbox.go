package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/relaychat/relay/internal/cgroup"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/sandbox"
	"github.com/relaychat/relay/policy"
)

const sandboxUsage = `Usage:
    relay sandbox check [--config FILE]

Reports what this host can enforce (Landlock ABI and its filesystem,
network and scope rules; the namespaces every command runs in; the seccomp
filter; who commands run as; job cgroups, or which limits then hold only
per process), then checks every command's sandbox profile against it and
runs true(1) inside each profile through the real trampoline. One line per
check.

Options:
    --config FILE   the config file (default: as relay run)

Exit status: 0 when every sandboxed command's profile can be enforced,
1 when at least one cannot (that command would be refused), 3 for an
invalid config.
`

func init() {
	register(&command{name: "sandbox", short: "check what the kernel's sandbox can enforce", usage: sandboxUsage, run: sandboxCmd})
}

func sandboxCmd(ctx context.Context, env *Env, args []string) error {
	if _, err := subcommand("sandbox", args, "check"); err != nil {
		return err
	}
	fs := newFlags("sandbox check")
	cfgFlag := fs.String("config", "", "")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	path, cfg, err := configFromFlag(*cfgFlag, env)
	if err != nil {
		return err
	}
	line := func(status, name, detail string) {
		fmt.Fprintf(env.Stdout, "%-5s %-18s %s\n", status, name, detail)
	}
	for _, c := range hostChecks(cfg) {
		line(c.status, c.name, c.detail)
	}
	le := launchEnv(path, env)
	failed := 0
	for _, c := range cfg.Commands {
		name := "/" + c.Name
		if c.Sandbox.Disabled {
			line("warn", name, "runs without a sandbox (sandbox: none)")
			continue
		}
		if err := checkProfile(cfg, c, le); err != nil {
			failed++
			line("FAIL", name, c.Sandbox.String()+": "+err.Error())
			continue
		}
		line("ok", name, c.Sandbox.String()+": enforced (self-test passed)")
	}
	if failed > 0 {
		fmt.Fprintf(env.Stdout, "%d of %d commands would be refused\n", failed, len(cfg.Commands))
		return errSilent{code: ExitFailure}
	}
	return nil
}

// hostCheck is one line of what this host gives the sandbox.
type hostCheck struct{ status, name, detail string } // status: ok, no or warn

// hostChecks is what relay sandbox check and relay doctor report about the
// host: the kernel's features, who commands run as, and job cgroups.
func hostChecks(cfg *policy.Config) []hostCheck {
	var out []hostCheck
	for _, c := range sandbox.Probe().Report() {
		st := "ok"
		if !c.OK {
			st = "no"
		}
		out = append(out, hostCheck{st, c.Name, c.Detail})
	}
	if os.Geteuid() == 0 {
		if id, err := launch.CommandUser(cfg.CommandUser); err != nil {
			out = append(out, hostCheck{"no", "command user", err.Error() + ": every sandboxed command is refused"})
		} else if others := processesOf(id.UID); others != "" {
			out = append(out, hostCheck{"warn", "command user", fmt.Sprintf("%s is uid %d, which other processes use too (%s): give commands an account of their own", cfg.CommandUser, id.UID, others)})
		} else {
			out = append(out, hostCheck{"ok", "command user", fmt.Sprintf("%s (uid %d, gid %d)", cfg.CommandUser, id.UID, id.GID)})
		}
	}
	if dir, err := cgroup.Locate(); err != nil {
		out = append(out, hostCheck{"no", "job cgroups", "memory, cpus and procs hold only per process (rlimits) for a relay started here: " + strings.TrimPrefix(err.Error(), cgroup.ErrUnavailable.Error()+": ")})
	} else if _, missing := cgroup.Offered(dir); len(missing) > 0 {
		out = append(out, hostCheck{"warn", "job cgroups", fmt.Sprintf("delegated cgroup %s lacks the %s controllers: those limits hold only per process", dir, strings.Join(controllerNames(missing), ", "))})
	} else {
		out = append(out, hostCheck{"ok", "job cgroups", "delegated cgroup " + dir + ": memory, pids and cpu limits per job"})
	}
	return out
}

func controllerNames(cs []cgroup.Controller) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// processesOf names a few of the processes running as uid, "" for none:
// the command user must be an account of its own.
func processesOf(uid int) string {
	ents, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] == strconv.Itoa(uid) {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				found = append(found, fmt.Sprintf("%d %s", pid, strings.TrimSpace(string(comm))))
			}
		}
		if len(found) == 3 {
			break
		}
	}
	return strings.Join(found, ", ")
}

func checkProfile(cfg *policy.Config, c *policy.Command, le launch.Env) error {
	p, err := launch.Profile(cfg, le, c)
	if err != nil {
		if errors.Is(err, sandbox.ErrUnenforceable) {
			return err
		}
		return fmt.Errorf("invalid profile: %w", err)
	}
	defer p.Close()
	if _, err := p.Wrap(c.Argv, nil); err != nil {
		return err
	}
	return p.SelfTest()
}
