package exec

import "github.com/relaychat/relay/policy"

// SpecFor builds the Spec for a bound invocation, the one construction
// both the bot and "relay exec" use. sb is the command's sandbox; for a
// command whose policy does not say "sandbox: none" the Spec requires one,
// so passing nil makes Start refuse instead of running unsandboxed.
func SpecFor(inv *policy.Invocation, spoolDir string, sb Wrapper) Spec {
	c := inv.Command
	return Spec{
		Argv:           append([]string(nil), inv.Argv...),
		Dir:            inv.Dir,
		Env:            append([]string{}, inv.Env...),
		Timeout:        c.Timeout,
		Grace:          DefaultGrace,
		MaxOutput:      c.MaxOutput,
		SpoolDir:       spoolDir,
		Sandbox:        sb,
		RequireSandbox: !c.Sandbox.Disabled,
	}
}
