package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/atomicfile"
	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/control"
	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/fleet"
	"github.com/relaychat/relay/internal/remote"
	"github.com/relaychat/relay/policy"
)

const auditWitnessUsage = `Usage:
    relay audit witness --store DIR --init --public-key KEY|FILE --address USER@HOST
                        [--port N] --host-key 'KEY LINE' --identity FILE
    relay audit witness --store DIR [--notify-socket PATH | --notify-config FILE]
                        [--alert-after DURATION] [--timeout DURATION]

A witness outside the host. Run on another machine, from a timer or
cron, it asks the host's relay serve-ssh --witness (the forced command of
the witness's own key) for the audit log's head, signed now, and for the
records since the last checkpoint it witnessed; replays them; and keeps
the new checkpoint only if the log extends what it witnessed before. A
restored backup, a cut tail, a rewritten record or a swapped checkpoint
key is caught at the first record that differs, kept as evidence in
DIR/rejected.jsonl, and notified. After a round that stored a checkpoint
it tells the host (audit-witnessed), whose relay audit archive then goes
up to that seq without --force-unwitnessed; a failure to tell is a
warning on stderr and undoes nothing (the host archives less until a
later round tells it).

--init creates the store in DIR (0700), pinned to the log's public
checkpoint key (as relay audit init printed it) and to the host: its
address, its ssh host key (a .pub or known_hosts line; never trusted on
first use) and the witness's private key. The first round takes the
host's head on trust: a log rewritten before it is not caught.

Each round prints one line. On a problem it notifies a relay (another
one, whose chat you read): --notify-socket is its control socket (or its
notify.group socket), --notify-config its config. --alert-after also
notifies when no round has succeeded for that long (the host unreachable,
or a witness kept from it).

One round is one ssh connection: its calls share it (a ControlMaster
socket in a fresh 0700 directory, ended with the round). ssh runs with
the fleet's option set: no ssh_config, the pinned key only
(StrictHostKeyChecking, a known_hosts file of the store's), BatchMode,
IdentitiesOnly, no agent, X11 or port forwarding, no tty.

Options:
    --store DIR            the witness's store for this log
    --init                 create the store (with the options below)
    --public-key KEY|FILE  the log's public checkpoint key
    --address USER@HOST    the host's relay account and address
    --port N               its sshd port (default 22)
    --host-key LINE        its pinned ssh host key
    --identity FILE        the witness's private ssh key
    --notify-socket PATH   a relay's control socket to notify
    --notify-config FILE   a relay's config, whose control socket to notify
    --alert-after DURATION notify when no round succeeded for this long
    --timeout DURATION     the most one ssh call may take (default 5m)

Exit status:
    0  the log extends what was witnessed (or nothing is new)
    1  the log failed the witness: it went back, forked, lost records, or
       its checkpoint is not signed by the pinned key; the first bad seq
       is printed, and notified
    2  usage error
    3  no round: the host could not be reached or refused, or the store
       is unusable (nothing was witnessed; the store is as it was)
    4  as 3, and no round has succeeded for --alert-after: notified
    5  a problem was found (1 or 4) but the notification failed
`

// Exit codes of relay audit witness, beyond the CLI's 0 and 2.
const (
	witnessExitProblem    = 1
	witnessExitNoRound    = 3
	witnessExitOverdue    = 4
	witnessExitUnnotified = 5
)

// Files the CLI keeps in the store, beside audit.WitnessStore's.
const (
	witnessRemoteFile = "remote.json" // where the log lives, pinned at --init
	witnessKnownHosts = "known_hosts"
	witnessLastOK     = "last-ok" // the time of the last successful round
	witnessSpool      = "spool"
	// witnessMaxAnswer bounds what one audit-since may bring back: a
	// witness far behind catches up in several rounds only if a host
	// serves less, so it is large.
	witnessMaxAnswer = 4 << 30
)

// witnessRemote is the host a store watches, as --init pinned it.
type witnessRemote struct {
	Address  string `json:"address"`
	Port     int    `json:"port"`
	HostKey  string `json:"host_key"`
	Identity string `json:"identity"`
}

func auditWitness(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("audit witness")
	store := fs.String("store", "", "")
	initStore := fs.Bool("init", false, "")
	pubArg := fs.String("public-key", "", "")
	address := fs.String("address", "", "")
	port := fs.Int("port", 22, "")
	hostKey := fs.String("host-key", "", "")
	identity := fs.String("identity", "", "")
	notifySocket := fs.String("notify-socket", "", "")
	notifyConfig := fs.String("notify-config", "", "")
	alertAfter := fs.Duration("alert-after", 0, "")
	timeout := fs.Duration("timeout", 5*time.Minute, "")
	if err := parseFlags(fs, args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, auditWitnessUsage)
		return nil
	} else if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *store == "" {
		return usageErr("audit witness: --store DIR is required")
	}
	if *initStore {
		return witnessInit(env, *store, *pubArg, *address, *port, *hostKey, *identity)
	}
	for name, v := range map[string]string{"public-key": *pubArg, "address": *address, "host-key": *hostKey, "identity": *identity} {
		if v != "" {
			return usageErr("audit witness: --%s goes with --init (the store pins it)", name)
		}
	}
	if *notifySocket != "" && *notifyConfig != "" {
		return usageErr("audit witness: --notify-socket and --notify-config exclude each other")
	}
	if *alertAfter < 0 || *timeout <= 0 {
		return usageErr("audit witness: --alert-after and --timeout must be positive")
	}
	n := witnessNotifier{socket: *notifySocket, config: *notifyConfig}
	return witnessRound(ctx, env, *store, *timeout, *alertAfter, n)
}

func witnessInit(env *Env, dir, pubArg, address string, port int, hostKey, identity string) error {
	if pubArg == "" || address == "" || hostKey == "" || identity == "" {
		return usageErr("audit witness --init: --public-key, --address, --host-key and --identity are required")
	}
	pub, err := readPublicKey(pubArg, "audit witness")
	if err != nil {
		return err
	}
	if _, _, ferr := policy.ParseAddress(address); ferr != nil {
		return withHint(withCode(ExitUsage, fmt.Errorf("audit witness: --address: %s", ferr.Msg)), ferr.Hint)
	}
	if port < 1 || port > 65535 {
		return usageErr("audit witness: --port %d is not a port", port)
	}
	key, ferr := policy.ParseHostKey(hostKey)
	if ferr != nil {
		return withHint(withCode(ExitUsage, fmt.Errorf("audit witness: --host-key: %s", ferr.Msg)), ferr.Hint)
	}
	id, err := filepath.Abs(identity)
	if err != nil {
		return usageErr("audit witness: --identity: %v", err)
	}
	if _, err := os.Stat(id); err != nil {
		return usageErr("audit witness: --identity: %v", err)
	}
	s, err := audit.CreateWitnessStore(dir, pub)
	if err != nil {
		return failf(witnessExitNoRound, "", "audit witness: %v", err)
	}
	defer s.Close()
	b, _ := json.MarshalIndent(witnessRemote{Address: address, Port: port, HostKey: key, Identity: id}, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, witnessRemoteFile), append(b, '\n'), 0o600); err != nil {
		return failf(witnessExitNoRound, "", "audit witness: %v", err)
	}
	// --alert-after counts from here until the first round succeeds.
	if err := markRound(dir, time.Now()); err != nil {
		return failf(witnessExitNoRound, "", "audit witness: %v", err)
	}
	fmt.Fprintf(env.Stdout, "witness store %s created for %s at %s; run relay audit witness --store %s for the first round\n", dir, strings.SplitN(pub, "+", 2)[0], address, dir)
	return nil
}

func readRemote(dir string) (witnessRemote, error) {
	var r witnessRemote
	b, err := os.ReadFile(filepath.Join(dir, witnessRemoteFile))
	if err != nil {
		return r, fmt.Errorf("read the store's host: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("%s is corrupt: %v", witnessRemoteFile, err)
	}
	return r, nil
}

func markRound(dir string, t time.Time) error {
	return atomicfile.WriteFile(filepath.Join(dir, witnessLastOK), []byte(t.UTC().Format(time.RFC3339)+"\n"), 0o600)
}

func lastRound(dir string) (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(dir, witnessLastOK))
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	return t, err == nil
}

// witnessRound runs one round and maps its outcome to the exit codes.
func witnessRound(ctx context.Context, env *Env, dir string, timeout, alertAfter time.Duration, n witnessNotifier) error {
	line, told, err := witnessOnce(ctx, dir, timeout)
	if err == nil {
		if merr := markRound(dir, time.Now()); merr != nil {
			env.say(kindWarning, "audit witness: %v", merr)
		}
		fmt.Fprintln(env.Stdout, line)
		if told != nil {
			// The round stands: the store holds the checkpoint. The host
			// only archives less until a later round tells it.
			env.say(kindWarning, "audit witness: the host was not told what was witnessed (its relay audit archive stops at the checkpoint it was told before): %s", oneLine(told.Error()))
		}
		return nil
	}
	var we *audit.WitnessError
	if errors.As(err, &we) {
		msg := fmt.Sprintf("audit witness: %s", oneLine(we.Error()))
		hint := fmt.Sprintf("the host's log no longer holds what was witnessed: investigate the host before you trust its log; the evidence is in %s", filepath.Join(dir, "rejected.jsonl"))
		if we.Kind == audit.WitnessBadSignature {
			hint = "the checkpoint is not signed by the key this store pinned: a replaced checkpoint key, or another log; if the owner replaced it, make a new store with --init"
		}
		if nerr := n.send(ctx, witnessAlert(dir, we)); nerr != nil {
			env.say(kindError, "%s", msg)
			return failf(witnessExitUnnotified, hint, "audit witness: the notification failed: %v", nerr)
		}
		return failf(witnessExitProblem, hint, "%s (notified)", msg)
	}
	msg := fmt.Sprintf("audit witness: no round: %s", oneLine(err.Error()))
	if last, ok := lastRound(dir); ok && alertAfter > 0 && time.Since(last) > alertAfter {
		text := fmt.Sprintf("relay witness: no successful round for %s since %s (store %s): %s", time.Since(last).Round(time.Minute), last.Format(time.RFC3339), dir, cut(oneLine(err.Error()), 1500))
		if nerr := n.send(ctx, text); nerr != nil {
			env.say(kindError, "%s", msg)
			return failf(witnessExitUnnotified, "", "audit witness: overdue, and the notification failed: %v", nerr)
		}
		return failf(witnessExitOverdue, "", "%s; none has succeeded since %s (notified)", msg, last.Format(time.RFC3339))
	}
	return failf(witnessExitNoRound, "nothing was witnessed and the store is as it was; the next round tries again", "%s", msg)
}

// witnessOnce opens the store, asks the host and witnesses what it says.
// After a round that stored a checkpoint it tells the host so
// (audit-witnessed); told is why that failed, which undoes nothing.
func witnessOnce(ctx context.Context, dir string, timeout time.Duration) (line string, told, err error) {
	rem, err := readRemote(dir)
	if err != nil {
		return "", nil, fmt.Errorf("store %s: %w", dir, err)
	}
	s, err := audit.OpenWitnessStore(dir)
	if err != nil {
		return "", nil, err
	}
	defer s.Close()
	t, err := newWitnessTransport(dir, rem, timeout)
	if err != nil {
		return "", nil, err
	}
	defer t.close()
	note, err := t.head(ctx)
	if err != nil {
		return "", nil, err
	}
	res, err := s.Witness(note, func(since uint64) (io.ReadCloser, error) { return t.since(ctx, since) })
	if err != nil {
		return "", nil, err
	}
	cp := res.Checkpoint
	if !res.First && cp.Seq == res.Previous.Seq {
		return fmt.Sprintf("witness: %s unchanged at seq %d", cp.Origin, cp.Seq), nil, nil
	}
	told = t.witnessed(ctx, cp.Note)
	if res.First {
		return fmt.Sprintf("witness: first contact with %s: seq %d taken on trust (nothing before it is checked)", cp.Origin, cp.Seq), told, nil
	}
	return fmt.Sprintf("witness: %s extends from seq %d to seq %d (%d new record(s) checked)", cp.Origin, res.Previous.Seq, cp.Seq, res.Records), told, nil
}

// witnessAlert is the notification of a log that failed the witness: one
// message, without anything shaped like a checkpoint (the notify path
// refuses those).
func witnessAlert(dir string, we *audit.WitnessError) string {
	return fmt.Sprintf("relay witness ALERT (store %s): the audit log failed the witness: %s at seq %d. %s", dir, we.Kind, we.FirstBad, cut(oneLine(we.Reason), 2000))
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// witnessNotifier hands an alert to a relay's control socket.
type witnessNotifier struct{ socket, config string }

func (n witnessNotifier) send(ctx context.Context, text string) error {
	path := n.socket
	if n.config != "" {
		cfg, err := policy.Load(n.config)
		if err != nil {
			return fmt.Errorf("--notify-config: %v", err)
		}
		path = control.Path(cfg.StateDir)
	}
	if path == "" {
		return errors.New("no --notify-socket or --notify-config given")
	}
	msg := control.Notification{Text: text}
	if msg.Check() != nil {
		// A reason the notify path refuses (too long, or quoting
		// something shaped like a checkpoint): the alert goes without it.
		msg.Text = "relay witness ALERT: the audit log failed the witness; see relay audit witness's output and the store's rejected.jsonl"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return control.SendTo(ctx, path, msg, nil)
}

// witnessTransport is ssh to the host's serve-ssh --witness: one
// connection per round, which its calls share (a handshake costs more
// than a call's whole answer), closed by close.
type witnessTransport struct {
	fl      policy.Fleet
	host    *policy.Host
	known   string
	spool   string
	timeout time.Duration
	runner  *exec.Runner
	// muxDir holds the round's control socket, mux; both "" when no
	// short enough path was found (each call then connects alone).
	muxDir, mux string
}

func newWitnessTransport(dir string, rem witnessRemote, timeout time.Duration) (*witnessTransport, error) {
	user, addr, ferr := policy.ParseAddress(rem.Address)
	if ferr != nil {
		return nil, fmt.Errorf("store %s: address: %s", dir, ferr.Msg)
	}
	key, ferr := policy.ParseHostKey(rem.HostKey)
	if ferr != nil {
		return nil, fmt.Errorf("store %s: host key: %s", dir, ferr.Msg)
	}
	h := &policy.Host{Name: "witness", User: user, Address: addr, Port: rem.Port, HostKey: key, Identity: rem.Identity}
	known, err := fleet.PinKnownHosts(filepath.Join(dir, witnessKnownHosts), h)
	if err != nil {
		return nil, err
	}
	spool := filepath.Join(dir, witnessSpool)
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	// Persist outlasts the replay between two calls of a round; close
	// ends the master sooner.
	fl := policy.Fleet{SSH: "/usr/bin/ssh", ConnectTimeout: 10 * time.Second, AliveInterval: 15 * time.Second, AliveCount: 3, Persist: time.Minute}
	t := &witnessTransport{fl: fl, host: h, known: known, spool: spool, timeout: timeout, runner: exec.NewRunner(2)}
	// A fresh 0700 directory per round, so that no master of another
	// round, or of anyone else, is ever reused; in the store when its path
	// is short enough for a socket, else in the temporary directory.
	for _, parent := range []string{spool, os.TempDir()} {
		d, err := os.MkdirTemp(parent, "mux")
		if err != nil {
			continue
		}
		if p := filepath.Join(d, "s"); fleet.ControlPathFits(p) {
			t.muxDir, t.mux = d, p
			break
		}
		os.Remove(d)
	}
	return t, nil
}

// close ends the round's master, if one was opened, and removes its
// directory.
func (t *witnessTransport) close() {
	if t.mux == "" {
		return
	}
	defer os.RemoveAll(t.muxDir)
	if _, err := os.Stat(t.mux); err != nil {
		return
	}
	job, err := t.runner.Start(context.Background(), "witness", 2, exec.Spec{
		Argv: fleet.SSHStopArgv(&t.fl, t.mux), Dir: "/", Timeout: 10 * time.Second, MaxOutput: 4096, SpoolDir: t.spool,
	})
	if err == nil {
		job.Wait().Output.Close()
	}
}

// argv is the ssh command for one call.
func (t *witnessTransport) argv(remoteCmd, logFile string) []string {
	if t.mux == "" {
		return fleet.SSHArgv(&t.fl, t.host, t.known, remoteCmd, logFile)
	}
	return fleet.SSHArgvShared(&t.fl, t.host, t.known, t.mux, remoteCmd, logFile)
}

// call runs one request and returns its answer, whole; an error says why
// there is none.
func (t *witnessTransport) call(ctx context.Context, req *remote.Request) (*exec.Result, error) {
	enc, err := req.Encode()
	if err != nil {
		return nil, err
	}
	logFile := filepath.Join(t.spool, req.Call.String()+".log")
	defer os.Remove(logFile)
	job, err := t.runner.Start(ctx, "witness", 2, exec.Spec{
		Argv:      t.argv(enc, logFile),
		Dir:       "/",
		Timeout:   t.timeout,
		MaxOutput: witnessMaxAnswer,
		SpoolDir:  t.spool,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot run ssh: %w", err)
	}
	res := job.Wait()
	fail := func(format string, a ...any) (*exec.Result, error) {
		res.Output.Close()
		return nil, fmt.Errorf("%s of %s: %s", req.Op, t.host.Destination(), fmt.Sprintf(format, a...))
	}
	switch {
	case res.TimedOut:
		return fail("no answer within %s", t.timeout)
	case res.Canceled:
		return fail("cancelled")
	case res.Signal != "":
		return fail("ssh died of %s", res.Signal)
	case res.ExitCode == 255:
		b, _ := os.ReadFile(logFile)
		return fail("%s", fleet.SSHFailureReason(string(b)))
	case remote.IsRefusal(res.ExitCode):
		return fail("the host refused (exit %d): %s", res.ExitCode, fleet.RefusalLine(res.Output))
	case res.ExitCode != 0:
		return fail("not relay serve-ssh --witness (exit %d): %s", res.ExitCode, fleet.RefusalLine(res.Output))
	case res.Dropped > 0:
		return fail("the answer exceeded %d bytes", int64(witnessMaxAnswer))
	}
	return res, nil
}

// head asks audit-head: the host's newest checkpoint, signed now. It is
// not verified here: the store does that.
func (t *witnessTransport) head(ctx context.Context) ([]byte, error) {
	res, err := t.call(ctx, &remote.Request{Op: remote.OpAuditHead, Call: remote.NewCallID()})
	if err != nil {
		return nil, err
	}
	defer res.Output.Close()
	var note []byte
	dec := remote.NewDecoder(remote.Handler{Checkpoint: func(n []byte) error { note = n; return nil }})
	if err := feed(dec, res.Output); err != nil {
		return nil, fmt.Errorf("audit-head of %s: %w", t.host.Destination(), err)
	}
	if note == nil {
		return nil, fmt.Errorf("audit-head of %s: no checkpoint in the answer", t.host.Destination())
	}
	return note, nil
}

// witnessed tells the host, with audit-witnessed, that the store holds
// note, so that the host's relay audit archive may go up to it. The host
// checks the note itself; its answer is the checkpoint it now holds.
func (t *witnessTransport) witnessed(ctx context.Context, note []byte) error {
	res, err := t.call(ctx, &remote.Request{Op: remote.OpAuditWitnessed, Call: remote.NewCallID(), Note: note})
	if err != nil {
		return err
	}
	defer res.Output.Close()
	var held []byte
	dec := remote.NewDecoder(remote.Handler{Checkpoint: func(n []byte) error { held = n; return nil }})
	if err := feed(dec, res.Output); err != nil {
		return fmt.Errorf("audit-witnessed of %s: %w", t.host.Destination(), err)
	}
	if !bytes.Equal(held, note) {
		return fmt.Errorf("audit-witnessed of %s: the host holds another checkpoint than the one sent", t.host.Destination())
	}
	return nil
}

// since asks audit-since: the record lines after seq, read back from the
// spool as the store consumes them. A stream without its end frame, or
// whose end frame counts other lines than came, is an error, never the
// log's end: a cut connection must not look like lost records.
func (t *witnessTransport) since(ctx context.Context, seq uint64) (io.ReadCloser, error) {
	res, err := t.call(ctx, &remote.Request{Op: remote.OpAuditSince, Call: remote.NewCallID(), Since: seq})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer res.Output.Close()
		var lines uint64
		ended := false
		dec := remote.NewDecoder(remote.Handler{
			Audit: func(p []byte) error {
				lines += uint64(bytes.Count(p, []byte("\n")))
				_, err := pw.Write(p)
				return err
			},
			End: func(n uint64) error {
				if n != lines {
					return fmt.Errorf("the host said it sent %d record lines, %d came", n, lines)
				}
				ended = true
				return nil
			},
		})
		err := feed(dec, res.Output)
		if err == nil && !ended {
			err = errors.New("no end frame")
		}
		if err != nil {
			pw.CloseWithError(fmt.Errorf("audit-since %d of %s: %w", seq, t.host.Destination(), err))
			return
		}
		pw.Close()
	}()
	return pr, nil
}

// feed decodes a spooled answer whole.
func feed(dec *remote.Decoder, s *exec.Spool) error {
	buf := make([]byte, 256<<10)
	var off int64
	for {
		n, err := s.ReadAt(buf, off)
		if n > 0 {
			if _, werr := dec.Write(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err == io.EOF || (err == nil && n == 0) {
			return dec.Close()
		}
		if err != nil {
			return err
		}
	}
}
