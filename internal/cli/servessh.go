package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"strings"
	"sync"

	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/member"
	"github.com/relaychat/relay/internal/recorder"
	"github.com/relaychat/relay/internal/remote"
	"github.com/relaychat/relay/policy"
)

var serveSSHUsage = `Usage:
    relay serve-ssh --config FILE [--peer LABEL]
    relay serve-ssh --config FILE --list
    relay serve-ssh --witness --config FILE [--peer LABEL]

The member side of fleet control. sshd runs it as the forced command of
the hub's key (authorized_keys: restrict,command="relay serve-ssh
--config /etc/relay/relay.yaml",from="HUB" ssh-ed25519 …), once per
call. It reads the hub's request from SSH_ORIGINAL_COMMAND only, binds the
arguments against this member's policy as the bot does, runs the command
in this member's sandbox, records request, start and end in this
member's audit log (through the running daemon if there is one), and
streams the output back, then a trailer. If the connection drops, the
command is killed. The config must say member: (see docs/reference.md).

--list prints the allowlist the hub is offered (commands without
hub: false), as the JSON document the hub receives, with its digest.

--witness serves a witness (relay audit witness, on another machine)
instead of a hub, as the forced command of the witness's own key
(authorized_keys: restrict,command="relay serve-ssh --witness --config
/etc/relay/relay.yaml",from="WITNESS" ssh-ed25519 …). It answers only
audit-head (a checkpoint of the audit log's head, signed now: by the
running daemon through its control socket, or by serve-ssh holding the
log's lock), audit-since SEQ (the record lines after SEQ, archived
and live, as they are on disk) and audit-witnessed (a checkpoint the
witness stored, noted beside the log once it verifies with the log's
checkpoint key and names a record in it, so that relay audit archive may
go up to it; anything else is refused, exit 78, and nothing is noted); it
runs nothing and lists nothing. The config need not say member:. Without
--witness, audit requests are refused: a hub's key never reads the audit
log, nor says what was witnessed.

Options:
    --config FILE   the member's config
    --peer LABEL    a name for the hub key in this member's records (its
                    comment, say); the key's fingerprint is recorded too
                    when sshd has ExposeAuthInfo yes
    --list          print the offered allowlist and exit
    --witness       serve the witness's key: audit requests only

Exit status: 2 for a bad flag, as every relay command; otherwise read by
the hub, not a person, so each refusal has its own code (nothing runs,
and one line goes to stderr):
` + serveSSHCodes

var serveSSHCodes = func() string {
	var b strings.Builder
	for _, c := range remote.ExitCodes {
		fmt.Fprintf(&b, "    %-3d %s\n", c.Code, c.Meaning)
	}
	return b.String()
}()

func init() {
	register(&command{name: "serve-ssh", short: "serve a hub's request (the forced command of its ssh key)", usage: serveSSHUsage, run: serveSSHCmd})
}

// serveSSHExit is an exit code that serve-ssh has already explained on
// stderr in its own format.
func serveSSHExit(code int) error { return errSilent{code: code} }

func serveSSHCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("serve-ssh")
	cfgFlag := fs.String("config", "", "")
	peer := fs.String("peer", "", "")
	list := fs.Bool("list", false, "")
	witness := fs.Bool("witness", false, "")
	// A flag error is the member admin's, while writing the forced
	// command: it gets the CLI's usual manners (exit 2). What the hub
	// sends gets serve-ssh's own codes.
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("serve-ssh: unexpected argument %q (the request comes from SSH_ORIGINAL_COMMAND only)", fs.Arg(0))
	}
	path, err := configFlag(*cfgFlag, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "relay serve-ssh: %v\n", oneLine(err.Error()))
		return serveSSHExit(remote.ExitConfig)
	}
	cfg, err := policy.Load(path)
	if err != nil {
		what := "invalid config"
		if errors.Is(err, iofs.ErrNotExist) {
			what = "no config"
		}
		fmt.Fprintf(env.Stderr, "relay serve-ssh: %s: %s\n", what, oneLine(err.Error()))
		return serveSSHExit(remote.ExitConfig)
	}
	if *witness && *list {
		return usageErr("serve-ssh: --witness and --list do not go together (the witness is offered no commands)")
	}
	if cfg.Member == nil && !*witness {
		fmt.Fprintf(env.Stderr, "relay serve-ssh: %s is not a member's config (add member: {} to serve a hub)\n", path)
		return serveSSHExit(remote.ExitConfig)
	}
	if *list {
		b, err := json.MarshalIndent(member.Offer(cfg, versionLine()), "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s\n", b)
		return nil
	}
	out, done := channel(env.Stdout)
	defer done()
	rec := &recorder.Recorder{Dir: cfg.Audit.Dir, StateDir: cfg.StateDir, RotateBytes: cfg.Audit.RotateBytes}
	code := member.Serve(ctx, member.Options{
		Config:  cfg,
		Launch:  launch.Env{ConfigPath: absPath(path), CredentialsDir: env.Getenv("CREDENTIALS_DIRECTORY")},
		Lookup:  func(k string) (string, bool) { v := env.Getenv(k); return v, v != "" },
		Stdout:  out,
		Stderr:  env.Stderr,
		Peer:    *peer,
		Version: versionLine(),
		Audit:   rec,
		// The witness's key is served the log and nothing else; the
		// hub's key never the log.
		Witness:    *witness,
		Checkpoint: rec,
	})
	if code == remote.ExitRan {
		return nil
	}
	return serveSSHExit(code)
}

// channel is stdout as a file, whose hangup serve-ssh watches; a writer
// that is not one (a test's buffer) gets a pipe copied into it.
func channel(w io.Writer) (*os.File, func()) {
	if f, ok := w.(*os.File); ok {
		return f, func() {}
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return os.Stdout, func() {}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); io.Copy(w, r); r.Close() }()
	return pw, func() { pw.Close(); wg.Wait() }
}

// oneLine keeps a message to one line.
func oneLine(s string) string { return lineBreaks.Replace(strings.TrimRight(s, "\r\n")) }
