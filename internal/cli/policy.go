package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/relaychat/relay/policy"
)

const policyUsage = `Usage:
    relay policy check FILE

Validates the config file FILE exactly as relay run would load it. A valid
file prints a summary (each command with its usage line, argv template,
parameters and limits) and any warnings about risky but legal choices
(a command without a sandbox, an interpreter as argv[0], unrestricted
network, a writable directory shared between commands, ...).

An invalid file prints every error found, one per line as FILE:LINE:COL.

Exit status: 0 when the file is valid (warnings or not), 3 when it is not.
`

func init() {
	register(&command{name: "policy", short: "validate a policy file", usage: policyUsage, run: policyCmd})
}

func policyCmd(ctx context.Context, env *Env, args []string) error {
	if _, err := subcommand("policy", args, "check"); err != nil {
		return err
	}
	fs := newFlags("policy check")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("policy check: want exactly one FILE, got %d arguments", fs.NArg())
	}
	return policyCheck(env, fs.Arg(0))
}

func policyCheck(env *Env, path string) error {
	cfg, err := policy.Load(path)
	var list *policy.ErrorList
	if errors.As(err, &list) {
		for _, e := range *list {
			fmt.Fprintln(env.Stderr, e)
		}
		env.say(kindError, "%s is invalid: %d error(s)", path, len(*list))
		return errSilent{code: ExitConfig}
	}
	if err != nil {
		return withCode(ExitConfig, err)
	}
	cfg.Summary(env.Stdout)
	ws := policy.Warnings(cfg)
	if len(ws) > 0 {
		fmt.Fprintln(env.Stdout)
	}
	for _, w := range ws {
		fmt.Fprintln(env.Stdout, w)
	}
	fmt.Fprintf(env.Stdout, "\n%s is valid: %d command(s), %d warning(s)\n", path, len(cfg.Commands), len(ws))
	return nil
}
