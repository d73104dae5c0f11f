// Package member serves a hub's request on a fleet member: it is what
// `relay serve-ssh` runs, as the forced command of the hub's key, once per
// ssh session. It reads the request from SSH_ORIGINAL_COMMAND only, binds
// the arguments against this member's own policy exactly as the bot does
// (policy Bind, then launch.Spec), runs the command in this member's
// sandbox, records request, start and end in this member's audit log,
// streams the output back as it arrives and ends with a trailer.
//
// It must never run anything the member's policy would not run from its
// own chat, never run a command whose request is not durably recorded,
// never read a request from anywhere but SSH_ORIGINAL_COMMAND, and never
// leave a job running once the hub is gone: a hangup of the channel kills
// the job. The witness's key (serve-ssh --witness) is served the audit log's
// signed head and its record lines, and nothing else; a hub's key is
// served neither. Anything unexpected is one line on stderr and a distinct exit
// code (remote.Exit*), with no frame written and nothing run.
package member

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/remote"
	"github.com/relaychat/relay/internal/sandbox"
	"github.com/relaychat/relay/policy"
)

// DefaultKeepalive is how long a silent command goes before the member
// sends a keepalive frame: a write is the surest way to learn that the
// channel is gone, and the hub learns that the member is alive.
const DefaultKeepalive = 5 * time.Second

// pollEvery is how often running output is read back from the spool.
const pollEvery = 20 * time.Millisecond

// Options configure one Serve.
type Options struct {
	Config *policy.Config
	// Launch is what the host contributes to every launch.
	Launch launch.Env
	// Lookup reads the environment sshd gave the forced command.
	Lookup func(string) (string, bool)
	// Stdout is the channel to the hub: frames go there, and its hangup
	// kills the job.
	Stdout *os.File
	Stderr io.Writer
	// Peer is the forced command's --peer label for the hub key (its
	// comment, say); recorded with the fingerprint sshd exposes.
	Peer string
	// Version is this relay's version, told to the hub.
	Version string
	// Audit appends to this member's audit log (a *recorder.Recorder).
	Audit Auditor
	// Keepalive: 0 means DefaultKeepalive.
	Keepalive time.Duration
	// Witness serves the witness's key (serve-ssh --witness): audit-head
	// and audit-since, and nothing else. Without it those are refused.
	Witness bool
	// Checkpoint signs the log's head for audit-head, through whoever
	// holds the log (a *recorder.Recorder).
	Checkpoint Checkpointer
}

// Checkpointer signs the head of the member's audit log.
type Checkpointer interface {
	Checkpoint(ctx context.Context) (audit.Checkpoint, error)
}

// Auditor records to the member's audit log; *recorder.Recorder is one.
type Auditor interface {
	Record(ctx context.Context, r audit.Record) (audit.Head, error)
	// Batch appends several records under one hold of the log.
	Batch(ctx context.Context, fn func(add func(audit.Record) (audit.Head, error)) error) error
}

// Offer is the member's allowlist as the hub sees it: every command but
// the hub: false ones.
func Offer(cfg *policy.Config, version string) *remote.List {
	l := &remote.List{Version: version, Commands: []remote.ListCommand{}}
	for _, c := range cfg.Commands {
		if !c.Hub {
			continue
		}
		lc := remote.ListCommand{Name: c.Name, Description: c.Description, Usage: c.Usage(), Confirm: c.Confirm, Reauth: c.Reauth, Params: []remote.ListParam{}}
		for _, p := range c.Params {
			lc.Params = append(lc.Params, remote.ListParam{Name: p.Name, Type: string(p.Type), Optional: p.Optional, Default: p.Default})
		}
		l.Commands = append(l.Commands, lc)
	}
	l.Seal()
	return l
}

type server struct {
	o    Options
	peer string // who called, for every record
	fp   string // the hub key's fingerprint, when sshd exposed it
}

// Serve answers one request and returns serve-ssh's exit code.
func Serve(ctx context.Context, o Options) int {
	if o.Keepalive <= 0 {
		o.Keepalive = DefaultKeepalive
	}
	// A write to a closed channel must come back as EPIPE, so that the
	// job is killed and its end recorded, not kill this process first.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	s := &server{o: o}
	s.peer, s.fp = peerOf(o)
	return s.serve(ctx)
}

// refuse tells the hub why in one line, records the refusal when it can
// (a refusal stands whether or not its record is written), and returns
// the code.
func (s *server) refuse(ctx context.Context, code int, r audit.Record, format string, a ...any) int {
	msg := oneLine(fmt.Sprintf(format, a...))
	fmt.Fprintf(s.o.Stderr, "relay serve-ssh: %s\n", msg)
	if s.o.Audit != nil && r.Type != "" {
		r.Reason = msg
		r.Peer = s.peer
		_, _ = s.o.Audit.Record(ctx, r)
	}
	return code
}

func (s *server) serve(ctx context.Context) int {
	cfg := s.o.Config
	raw, ok := s.o.Lookup("SSH_ORIGINAL_COMMAND")
	denied := audit.Record{Type: audit.KindRequest, Outcome: audit.OutcomeDenied}
	if !ok {
		return s.refuse(ctx, remote.ExitUsage, audit.Record{}, "no request: serve-ssh answers only a hub's relay requests (SSH_ORIGINAL_COMMAND is not set: an interactive login, or a forced command run by hand)")
	}
	// member.hub_keys names the hub's keys; the witness's key is told
	// apart by its own forced command (--witness), which serves it
	// nothing a hub may ask for.
	if keys := cfg.Member; keys != nil && len(keys.HubKeys) > 0 && !s.o.Witness {
		if s.fp == "" {
			return s.refuse(ctx, remote.ExitPeer, denied, "member.hub_keys is set but sshd did not name the key (set ExposeAuthInfo yes for this account)")
		}
		if !slices.Contains(keys.HubKeys, s.fp) {
			return s.refuse(ctx, remote.ExitPeer, denied, "the hub key %s is not in member.hub_keys", s.fp)
		}
	}
	req, err := remote.ParseRequest(raw)
	if err != nil {
		var e *remote.Error
		code := remote.ExitMalformed
		if errors.As(err, &e) {
			code = e.Exit
		}
		return s.refuse(ctx, code, denied, "%v", err)
	}
	switch {
	case req.Op.IsAudit() && !s.o.Witness:
		denied.Call = req.Call.String()
		return s.refuse(ctx, remote.ExitNotWitness, denied, "%s refused: this key's forced command is not relay serve-ssh --witness, and a hub's key never reads the audit log", req.Op)
	case !req.Op.IsAudit() && s.o.Witness:
		denied.Call, denied.Command = req.Call.String(), req.Command
		return s.refuse(ctx, remote.ExitWitnessOnly, denied, "%s refused: this is the witness's key (relay serve-ssh --witness), which never runs or lists commands", req.Op)
	case req.Op.IsAudit():
		return s.witness(ctx, req)
	case req.Op == remote.OpList:
		return s.list()
	}
	denied.Call, denied.Command = req.Call.String(), req.Command
	cmd := cfg.Lookup(req.Command)
	if cmd == nil {
		return s.refuse(ctx, remote.ExitUnknown, denied, "unknown command %q on this member", req.Command)
	}
	if !cmd.Hub {
		return s.refuse(ctx, remote.ExitNotOffered, denied, "/%s is not offered to the hub here (hub: false)", cmd.Name)
	}
	inv, err := cmd.Bind(req.Args)
	if err != nil {
		// Bind's errors are built from the schema and a short, escaped
		// prefix of a value: safe to show the hub's owner.
		return s.refuse(ctx, remote.ExitArgs, denied, "/%s: %v", cmd.Name, err)
	}
	var sl slots
	defer sl.release()
	dir := filepath.Join(cfg.StateDir, "slots")
	if err := sl.take(dir, "all", cfg.Limits.MaxConcurrent, fmt.Sprintf("too many commands running on this member (limit %d); try again when one finishes", cfg.Limits.MaxConcurrent)); err != nil {
		return s.busy(ctx, denied, err)
	}
	if err := sl.take(dir, "cmd-"+cmd.Name, cmd.Concurrency, fmt.Sprintf("/%s is already running on this member (limit %d); try again when it finishes", cmd.Name, cmd.Concurrency)); err != nil {
		return s.busy(ctx, denied, err)
	}
	spec, done, err := launch.Spec(cfg, inv, s.o.Launch)
	if err != nil {
		return s.refuse(ctx, remote.ExitSandbox, denied, "/%s: %v", cmd.Name, err)
	}
	defer done()
	params := make(map[string]string, len(inv.Values))
	for _, v := range inv.Values {
		params[v.Name] = v.Value
	}
	call := req.Call.String()
	// The request and the start go to the log under one hold of it: the
	// job starts only once its request is durable, and its start is
	// recorded before anything streams.
	var job *exec.Job
	var startErr, endErr error
	var head *audit.Head // the head after the end record, once written
	err = s.o.Audit.Batch(ctx, func(add func(audit.Record) (audit.Head, error)) error {
		if _, err := add(audit.Record{Type: audit.KindRequest, Outcome: audit.OutcomeAllowed, Command: cmd.Name, Params: params, Argv: inv.Argv,
			Workdir: inv.Dir, Sandbox: cmd.Sandbox.String(), Call: call, Peer: s.peer}); err != nil {
			return err
		}
		runner := exec.NewRunner(cfg.Limits.MaxConcurrent)
		job, startErr = runner.Start(ctx, cmd.Name, cmd.Concurrency, spec)
		if startErr != nil {
			_, err := add(audit.Record{Type: audit.KindExecStart, Outcome: audit.OutcomeFailed, Reason: startErr.Error(), Command: cmd.Name, Call: call, Peer: s.peer})
			return err
		}
		if _, err := add(audit.Record{Type: audit.KindExecStart, Outcome: audit.OutcomeOK, Command: cmd.Name, Job: job.ID(), Call: call, Peer: s.peer}); err != nil {
			job.Cancel() // no record of the start, no run
			return err
		}
		// A quick command ends while the log is still held: its end
		// goes into the same hold, which spares a second open and key
		// state write. Other writers wait at most quickEnd for it.
		t := time.NewTimer(quickEnd)
		defer t.Stop()
		select {
		case <-job.Done():
			h, err := add(s.endRecord(cmd, call, job, job.Wait(), nil))
			if err != nil {
				endErr = err
				return err
			}
			head = &h
		case <-t.C:
		}
		return nil
	})
	switch {
	case job == nil && startErr == nil:
		return s.refuse(ctx, remote.ExitAudit, audit.Record{}, "audit log unavailable; command not run: %v", err)
	case startErr != nil:
		code := remote.ExitFailed
		if errors.Is(startErr, sandbox.ErrUnenforceable) {
			code = remote.ExitSandbox
		}
		fmt.Fprintf(s.o.Stderr, "relay serve-ssh: /%s could not start: %s\n", cmd.Name, oneLine(startErr.Error()))
		return code
	case endErr != nil:
		job.Wait().Output.Close()
		return s.refuse(ctx, remote.ExitAudit, audit.Record{}, "audit log unavailable: /%s ran, but its end is not recorded: %v", cmd.Name, endErr)
	case err != nil:
		job.Wait().Output.Close()
		return s.refuse(ctx, remote.ExitAudit, audit.Record{}, "audit log unavailable: /%s was killed, its start could not be recorded: %v", cmd.Name, err)
	}
	return s.run(ctx, cmd, call, req.MaxOutput, job, head)
}

// quickEnd is how long the first hold of the log waits for the command to
// end, so that a quick one costs one hold instead of two.
const quickEnd = 50 * time.Millisecond

func (s *server) busy(ctx context.Context, denied audit.Record, err error) int {
	var b *errBusy
	if errors.As(err, &b) {
		return s.refuse(ctx, remote.ExitBusy, denied, "%s", b.msg)
	}
	return s.refuse(ctx, remote.ExitFailed, denied, "%v", err)
}

// endRecord is the member's record of how a job ended.
func (s *server) endRecord(cmd *policy.Command, call string, job *exec.Job, res *exec.Result, gone error) audit.Record {
	outcome, reason := audit.OutcomeOK, ""
	switch {
	case gone != nil:
		outcome, reason = audit.OutcomeKilled, "the hub hung up: "+gone.Error()
	case res.TimedOut:
		outcome = audit.OutcomeTimeout
	case res.Canceled:
		outcome = audit.OutcomeKilled
	case res.Signal != "" || res.ExitCode == -1:
		outcome = audit.OutcomeSignal
	case res.ExitCode != 0:
		outcome = audit.OutcomeFailed
	}
	exit := res.ExitCode
	return audit.Record{Type: audit.KindExecEnd, Outcome: outcome, Reason: reason, Command: cmd.Name, Job: job.ID(), Call: call, Peer: s.peer,
		Exit: &exit, Signal: res.Signal, TimedOut: res.TimedOut, DurationMS: res.Duration.Milliseconds(),
		OutputBytes: res.OutputBytes, OutputSHA256: res.SHA256}
}

// run streams a started job to the hub, records its end (unless head says
// it is recorded already) and writes the trailer.
func (s *server) run(ctx context.Context, cmd *policy.Command, call string, limit int64, job *exec.Job, head *audit.Head) int {
	w := remote.NewWriter(s.o.Stdout)
	hung, stopWatch := watchHangup(s.o.Stdout)
	defer stopWatch()
	sent, gone := s.stream(job, w, limit, hung)
	res := job.Wait()
	defer res.Output.Close()
	if head != nil && gone != nil {
		fmt.Fprintf(s.o.Stderr, "relay serve-ssh: the hub hung up before /%s's output was sent\n", cmd.Name)
		return remote.ExitFailed
	}
	if head == nil {
		h, err := s.o.Audit.Record(ctx, s.endRecord(cmd, call, job, res, gone))
		if err != nil {
			return s.refuse(ctx, remote.ExitAudit, audit.Record{}, "audit log unavailable: /%s ran, but its end is not recorded: %v", cmd.Name, err)
		}
		head = &h
	}
	if gone != nil {
		// Nobody is listening; the end record says what happened.
		fmt.Fprintf(s.o.Stderr, "relay serve-ssh: the hub hung up; /%s killed\n", cmd.Name)
		return remote.ExitFailed
	}
	exit := res.ExitCode
	sig := res.Signal
	if exit == -1 && sig == "" {
		sig = "SIGUNKNOWN"
	}
	kept := res.OutputBytes - res.Dropped
	t := &remote.Trailer{Exit: exit, Signal: sig, TimedOut: res.TimedOut, Canceled: res.Canceled, DurationMS: res.Duration.Milliseconds(),
		Bytes: res.OutputBytes, Kept: kept, Sent: min(sent, kept), SHA256: res.SHA256, AuditSeq: head.Seq, AuditMAC: head.MAC[:min(len(head.MAC), remote.AuditMACHex)]}
	if err := w.Trailer(t); err != nil {
		fmt.Fprintf(s.o.Stderr, "relay serve-ssh: trailer not sent: %v\n", err)
		return remote.ExitFailed
	}
	return remote.ExitRan
}

// stream sends the job's output as it arrives, at most limit bytes, with a
// keepalive when it is silent. If the hub goes away (a failed write, or a
// hangup of the channel), it kills the job and says why.
func (s *server) stream(job *exec.Job, w *remote.Writer, limit int64, hung <-chan struct{}) (sent int64, gone error) {
	if err := w.Hello(s.o.Version); err != nil {
		job.Cancel()
		return 0, err
	}
	buf := make([]byte, remote.MaxChunkBytes)
	drain := func() error {
		for sent < limit {
			n, err := job.ReadOutputAt(buf[:min(int64(len(buf)), limit-sent)], sent)
			if n > 0 {
				if werr := w.Output(buf[:n]); werr != nil {
					return werr
				}
				sent += int64(n)
			}
			if err != nil || n == 0 {
				return nil
			}
		}
		return nil
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	last := time.Now()
	for {
		before := sent
		if err := drain(); err != nil {
			job.Cancel()
			return sent, err
		}
		if sent != before {
			last = time.Now()
		}
		select {
		case <-job.Done():
			if err := drain(); err != nil {
				return sent, err
			}
			return sent, nil
		case <-hung:
			job.Cancel()
			return sent, errors.New("the channel closed")
		case <-tick.C:
			if time.Since(last) >= s.o.Keepalive {
				if err := w.Keepalive(); err != nil {
					job.Cancel()
					return sent, err
				}
				last = time.Now()
			}
		}
	}
}

// list answers the allowlist.
func (s *server) list() int {
	doc, err := Offer(s.o.Config, s.o.Version).Marshal()
	if err != nil {
		fmt.Fprintf(s.o.Stderr, "relay serve-ssh: %v\n", err)
		return remote.ExitFailed
	}
	w := remote.NewWriter(s.o.Stdout)
	err = w.Hello(s.o.Version)
	if err == nil {
		err = w.List(doc)
	}
	if err != nil {
		fmt.Fprintf(s.o.Stderr, "relay serve-ssh: list not sent: %v\n", err)
		return remote.ExitFailed
	}
	return remote.ExitRan
}

// watchHangup reports when the reading end of f goes away: sshd closes the
// channel's pipe when the hub disconnects, and poll reports POLLERR (a
// pipe) or POLLHUP (a socket) on the writing end without a write.
func watchHangup(f *os.File) (<-chan struct{}, func()) {
	hung := make(chan struct{})
	r, w, err := os.Pipe()
	if err != nil {
		return hung, func() {}
	}
	raw, err := f.SyscallConn()
	var fd int = -1
	if err == nil {
		_ = raw.Control(func(p uintptr) { fd = int(p) })
	}
	if fd < 0 {
		r.Close()
		w.Close()
		return hung, func() {}
	}
	go func() {
		defer r.Close()
		fds := []unix.PollFd{{Fd: int32(fd)}, {Fd: int32(r.Fd()), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
				close(hung)
				return
			}
		}
	}()
	return hung, func() { w.Close() }
}

// peerOf describes who called: the hub key's fingerprint from the file
// sshd names in SSH_USER_AUTH (ExposeAuthInfo yes), the forced command's
// --peer label, and the client address from SSH_CONNECTION.
func peerOf(o Options) (peer, fp string) {
	var parts []string
	if p, ok := o.Lookup("SSH_USER_AUTH"); ok && filepath.IsAbs(p) {
		fp = authKeyFingerprint(p)
		if fp != "" {
			parts = append(parts, fp)
		}
	}
	if l := cleanLabel(o.Peer); l != "" {
		parts = append(parts, l)
	}
	if c, ok := o.Lookup("SSH_CONNECTION"); ok {
		if ip := net.ParseIP(strings.Fields(c + " x")[0]); ip != nil {
			parts = append(parts, "from "+ip.String())
		}
	}
	if len(parts) == 0 {
		return "unknown", ""
	}
	return strings.Join(parts, " "), fp
}

// authKeyFingerprint reads the first "publickey TYPE BASE64" line of an
// ExposeAuthInfo file.
func authKeyFingerprint(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == "publickey" {
			blob, err := base64.StdEncoding.DecodeString(fields[2])
			if err != nil {
				return ""
			}
			return policy.KeyFingerprint(blob)
		}
	}
	return ""
}

// cleanLabel keeps a --peer label to the characters a key comment
// usually has, so that a record's peer stays one short word.
func cleanLabel(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 64 {
			break
		}
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@._-:+", r)) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oneLine keeps a refusal to one line of printable text.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 512 {
		s = string(r[:512])
	}
	return s
}
