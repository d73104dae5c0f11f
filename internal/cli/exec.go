package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/policy"
)

const execUsage = `Usage:
    relay exec [--config FILE] NAME [ARGS...]

Runs the allowlisted command NAME once, locally, through exactly the path
the bot uses: the same argument binding and validation, the same argv,
environment, working directory, limits and sandbox. ARGS are taken as they
come from your shell, one argument each (they are not split again). Use it
to try a policy before trusting it from a phone.

The command's output (stdout and stderr interleaved, capped at its
max_output) goes to stdout as it arrives; a status line such as
"exit 0, 1.2s, 345 bytes" goes to stderr. Interrupting relay exec kills the
command's whole process group.

Options:
    --config FILE   the config file (default: as relay run)

Exit status: the command's own exit status; 1 when it was killed, timed out
or could not start; 2 for unknown commands or bad arguments; 3 for an
invalid config.
`

func init() {
	register(&command{name: "exec", short: "run one allowlisted command locally", usage: execUsage, run: execCmd})
}

func execCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("exec")
	cfgFlag := fs.String("config", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErr("missing command NAME")
	}
	path, cfg, err := configFromFlag(*cfgFlag, env)
	if err != nil {
		return err
	}
	name := fs.Arg(0)
	cmd := cfg.Lookup(name)
	if cmd == nil {
		names := make([]string, len(cfg.Commands))
		for i, c := range cfg.Commands {
			names[i] = c.Name
		}
		msg := fmt.Errorf("no command %q in %s", name, path)
		if len(names) == 0 {
			msg = fmt.Errorf("no command %q: %s allows no commands", name, path)
		} else if s := closest(name, names); s != "" {
			msg = fmt.Errorf("no command %q in %s (did you mean %q?)", name, path, s)
		}
		fmt.Fprintf(env.Stderr, "relay: %v\n", msg)
		return errSilent{code: ExitUsage}
	}
	inv, err := cmd.Bind(fs.Args()[1:])
	if err != nil {
		// The error already carries what to fix (and a usage error the
		// command's usage line); exec's own usage text would bury it.
		fmt.Fprintf(env.Stderr, "relay: /%s: %v\n", name, err)
		var ue *policy.UsageError
		if !errors.As(err, &ue) {
			fmt.Fprintf(env.Stderr, "usage: %s\n", cmd.Usage())
		}
		return errSilent{code: ExitUsage}
	}
	spec, done, err := launch.Spec(cfg, inv, launch.Env{ConfigPath: absPath(path), CredentialsDir: env.Getenv("CREDENTIALS_DIRECTORY")})
	if err != nil {
		return fmt.Errorf("/%s: %w (see relay sandbox check)", name, err)
	}
	defer done()
	return runSpec(ctx, env, cfg, cmd, spec)
}

// runSpec runs spec through a Runner, as the daemon does, and mirrors the
// command's exit status.
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
	fmt.Fprintln(env.Stderr, status(res))
	switch {
	case res.ExitCode == 0 && !res.TimedOut && !res.Canceled:
		return nil
	case res.ExitCode > 0 && res.ExitCode < 256:
		return errSilent{code: res.ExitCode}
	}
	return errSilent{code: ExitFailure}
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

// closest suggests the command the owner probably meant.
func closest(name string, names []string) string {
	best, bestD := "", len(name)/3+1
	for _, n := range names {
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
