package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/render"
	"github.com/relaychat/relay/internal/sandbox"
	"github.com/relaychat/relay/policy"
)

const execUsage = `Usage:
    relay exec [--config FILE] NAME [ARGS...]
    relay exec [--config FILE] --host TARGET NAME [ARGS...]

Runs the allowlisted command NAME once, locally, through exactly the path
the bot uses: the same argument binding and validation, the same argv,
environment, working directory, limits and sandbox. ARGS are taken as they
come from your shell, one argument each (they are not split again). Use it
to try a policy before trusting it from a phone.

The command's output (stdout and stderr interleaved, capped at its
max_output) goes to stdout as it arrives; a status line such as
"exit 0, 1.2s, 345 bytes" goes to stderr. Interrupting relay exec kills the
command's whole process group. A command with a format (format.jq,
format.table) that exits 0 is shown in the chat through it: that text
follows the status line on stderr, indented, or the chat's note when the
format fails on this output ("format failed (…); raw output shown").

With --host, NAME runs on a member instead, through exactly the path the
chat's /on uses: the hub's ssh option set, the member's own policy,
sandbox and audit log, and a remote_request and remote_end record in this
hub's audit log. TARGET is a host, a group, all, or several joined by
commas; with more than one host each line of output is prefixed with the
host's name, and a status line per host goes to stderr.

Options:
    --config FILE   the config file (default: as relay run)
    --host TARGET   run on members (see hosts: in the config)

Exit status: relay's own codes never carry the command's status, so a
command that exits 2 cannot pass for a usage error:
    0  the command ran and exited 0
    1  relay could not run it (start failure, output not writable)
    2  unknown command NAME, or arguments the policy refuses (with
       --host: the member's policy)
    3  invalid config
    5  no config
    6  the command ran and exited non-zero: its status is on the status
       line ("exit 7, 1.2s, 345 bytes")
    7  the command was killed: by its timeout, a signal, or because relay
       exec was interrupted (the status line says which)
With --host and several hosts, the worst outcome decides; a member that
is unreachable, has another host key, or cannot run the command (its
sandbox, its audit log) is 1.
`

func init() {
	register(&command{name: "exec", short: "run one allowlisted command locally", usage: execUsage, run: execCmd})
}

func execCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("exec")
	cfgFlag := fs.String("config", "", "")
	hostFlag := fs.String("host", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErr("exec: missing command NAME")
	}
	path, cfg, err := configFromFlag(*cfgFlag, env)
	if err != nil {
		return err
	}
	if *hostFlag != "" {
		return execRemote(ctx, env, path, cfg, *hostFlag, fs.Arg(0), fs.Args()[1:])
	}
	name := fs.Arg(0)
	cmd := cfg.Lookup(name)
	if cmd == nil {
		names := make([]string, len(cfg.Commands))
		for i, c := range cfg.Commands {
			names[i] = c.Name
		}
		if len(names) == 0 {
			return usageErr("exec: no command %q: %s allows no commands", name, path)
		}
		if dym := didYouMean(name, names); dym != "" {
			return usageErr("exec: no command %q in %s%s", name, path, dym)
		}
		return usageErr("exec: no command %q in %s (it allows %s)", name, path, orList(names))
	}
	inv, err := cmd.Bind(fs.Args()[1:])
	if err != nil {
		// The error already carries what to fix, and the usage line is the
		// command's own: exec's usage would bury it.
		var ue *policy.UsageError
		if errors.As(err, &ue) {
			return withCode(ExitUsage, withHint(fmt.Errorf("/%s: %s", name, ue.Reason), "usage: "+ue.Usage))
		}
		return withCode(ExitUsage, withHint(fmt.Errorf("/%s: %w", name, err), "usage: "+cmd.Usage()))
	}
	spec, done, err := launch.Spec(cfg, inv, launchEnv(path, env))
	if err != nil {
		return withHint(fmt.Errorf("/%s: %w", name, err), "see 'relay sandbox check'")
	}
	defer done()
	return runSpec(ctx, env, cfg, cmd, spec)
}

// runSpec runs spec through a Runner, as the daemon does, and maps the
// command's outcome to ExitCommandFailed or ExitCommandKilled.
func runSpec(ctx context.Context, env *Env, cfg *policy.Config, cmd *policy.Command, spec exec.Spec) error {
	r := exec.NewRunner(cfg.Limits.MaxConcurrent)
	job, err := r.Start(ctx, cmd.Name, cmd.Concurrency, spec)
	if err != nil {
		return fmt.Errorf("/%s: %w", cmd.Name, err)
	}
	// Output is shown as it arrives, read back from the spool, so what is
	// printed is exactly what the bot would send, cap included.
	printed, err := streamOutput(env.Stdout, job)
	res := job.Wait()
	defer res.Output.Close()
	if err == nil {
		var out io.ReadCloser
		if out, err = res.Output.Open(); err == nil {
			// The rest, and the truncation marker if any.
			if _, err = io.CopyN(io.Discard, out, printed); err == nil {
				_, err = io.Copy(env.Stdout, out)
			}
			out.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("/%s: write output: %w", cmd.Name, err)
	}
	st := status(res)
	if p, ok := spec.Sandbox.(*sandbox.Profile); ok {
		// Who the command ran as is part of what it could do.
		id := p.Identity()
		st += fmt.Sprintf(", sandboxed as uid %d gid %d", id.UID, id.GID)
	} else {
		st += ", unsandboxed (sandbox: none)"
	}
	fmt.Fprintln(env.Stderr, st)
	if commandExit(res) == ExitOK {
		showFormatted(ctx, env, cmd, res)
	}
	return errSilentOrNil(commandExit(res))
}

// showFormatted prints what the chat shows for a command with a format
// that exited 0: the output through the format, as the daemon renders it,
// or the note the chat gives when the format fails on it. The text is the
// command's, so control characters are dropped on the way to a terminal.
func showFormatted(ctx context.Context, env *Env, cmd *policy.Command, res *exec.Result) {
	prog, err := cmd.Renderer()
	if err != nil || prog == nil {
		return
	}
	r, err := res.Output.Open()
	var text string
	if err == nil {
		text, err = prog.Render(ctx, r, render.Limits{Input: min(cmd.MaxOutput, render.MaxInput)})
		r.Close()
	}
	if err != nil {
		env.say(kindNote, "%s", render.Note(err))
		return
	}
	env.say(kindNote, "the chat shows it through its format:")
	text = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || (r >= 0x20 && r != 0x7f && (r < 0x80 || r >= 0xa0)) {
			return r
		}
		return -1
	}, strings.TrimRight(text, "\n"))
	for _, line := range strings.Split(text, "\n") {
		fmt.Fprintln(env.Stderr, "  "+line)
	}
}

// commandExit is relay exec's exit code for a command's result.
func commandExit(res *exec.Result) int {
	switch res.Ending() {
	case exec.EndTimeout, exec.EndKilled, exec.EndSignal:
		return ExitCommandKilled
	case exec.EndFailed:
		return ExitCommandFailed
	}
	return ExitOK
}

func errSilentOrNil(code int) error {
	if code == ExitOK {
		return nil
	}
	return errSilent{code: code}
}

// streamOutput copies job's output to w as it is written, until the job
// ends, and returns how many bytes it copied. If w fails (a closed pipe,
// say), the command is cancelled rather than left running unseen.
func streamOutput(w io.Writer, job *exec.Job) (int64, error) {
	var off int64
	buf := make([]byte, 32<<10)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for {
			n, err := job.ReadOutputAt(buf, off)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					job.Cancel()
					<-job.Done()
					return off, werr
				}
				off += int64(n)
			}
			if err != nil || n == 0 {
				break // io.EOF: everything kept so far is shown
			}
		}
		select {
		case <-job.Done():
			return off, nil
		case <-tick.C:
		}
	}
}

func status(res *exec.Result) string {
	s := res.Status()
	if res.Signal != "" && (res.TimedOut || res.Canceled) {
		s += " (" + res.Signal + ")"
	}
	s += fmt.Sprintf(", %s, %d bytes", res.Duration.Round(time.Millisecond), res.OutputBytes)
	if res.Dropped > 0 {
		s += fmt.Sprintf(", %d dropped", res.Dropped)
	}
	return s
}
