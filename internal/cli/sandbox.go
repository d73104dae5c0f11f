package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/sandbox"
	"github.com/relaychat/relay/policy"
)

const sandboxUsage = `Usage:
    relay sandbox check [--config FILE]

Reports what this kernel can enforce (Landlock ABI and its filesystem,
network and scope rules, user, mount, pid and net namespaces, rlimits), then
checks every command's sandbox profile against it and runs true(1) inside
each profile through the real trampoline. One line per check.

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
	if len(args) == 0 {
		return usageErr("missing subcommand (want check)")
	}
	if args[0] == "-h" || args[0] == "--help" {
		return parseFlags(newFlags("sandbox"), args)
	}
	if args[0] != "check" {
		return usageErr("unknown subcommand %q (want check)", args[0])
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
	for _, c := range sandbox.Probe().Report() {
		status := "ok"
		if !c.OK {
			status = "no"
		}
		line(status, c.Name, c.Detail)
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
