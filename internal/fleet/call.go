package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/remote"
)

// Kind says how a call ended. Its value is also the outcome of the hub's
// remote_end record.
type Kind string

const (
	// The command ran on the member and ended with a trailer.
	KindOK     Kind = "ok"     // exit 0
	KindFailed Kind = "failed" // a non-zero exit
	KindKilled Kind = "killed" // killed on the member: its timeout, a signal
	// The command did not run to its end.
	KindTimeout     Kind = "timeout"     // the hub's deadline for the host passed; the call was cut and the member's job dies with it
	KindCanceled    Kind = "cancelled"   // the hub cancelled the call
	KindRefused     Kind = "refused"     // the member refused: unknown command, arguments, hub: false, busy, version
	KindSandbox     Kind = "sandbox"     // the member's sandbox cannot enforce the command's profile
	KindAudit       Kind = "audit"       // the member's audit log is unavailable
	KindUnreachable Kind = "unreachable" // no connection, or the connection was lost
	KindHostKey     Kind = "host_key"    // the member's host key is not the pinned one
	KindAuth        Kind = "auth"        // the member refused the hub's key
	KindProtocol    Kind = "protocol"    // not a relay member's answer: a shell, a broken stream
	KindHub         Kind = "hub"         // the hub could not make the call: its audit log, its limit, ssh
)

// Kinds lists every Kind, for the audit vocabulary and the docs.
var Kinds = []Kind{KindOK, KindFailed, KindKilled, KindTimeout, KindCanceled, KindRefused, KindSandbox, KindAudit,
	KindUnreachable, KindHostKey, KindAuth, KindProtocol, KindHub}

// Result is one host's answer to one call: plain data, for a chat summary,
// a CLI line and an audit record alike.
type Result struct {
	Host    string
	Command string
	Args    []string
	// Call is the call's ID, in the hub's and the member's records.
	Call string
	Kind Kind
	// Reason says, in one line safe to show, why the call did not end in
	// KindOK: the hub's own words, with the member's refusal (cleaned of
	// control characters and cut short) where the member gave one.
	Reason string
	// Fingerprint is the host key the member offered, for KindHostKey
	// when ssh said.
	Fingerprint string
	// Version is the member's relay version, from its hello.
	Version string
	// Trailer is the member's report of how the command ended; nil when
	// it did not end with one.
	Trailer *remote.Trailer
	// Duration is the call's time as the hub saw it.
	Duration time.Duration
	// Output is what the member sent, nil if nothing; Close releases it.
	Output *Output
	// Truncated is set when the member produced more than it sent (its
	// cap, or the one the hub asked for).
	Truncated bool
	// List is a list call's answer.
	List *remote.List
	// AuditErr is set when the hub's end record could not be written.
	AuditErr error
}

// Ran reports whether the command ran on the member and its end is known.
func (r *Result) Ran() bool { return r.Trailer != nil }

// Close releases the output.
func (r *Result) Close() {
	if r.Output != nil {
		r.Output.Close()
	}
}

// Status is the result in a few words: "exit 0", "exit 3", "timed out on
// the member", "unreachable: connection refused".
func (r *Result) Status() string {
	switch r.Kind {
	case KindOK, KindFailed:
		return fmt.Sprintf("exit %d", r.Trailer.Exit)
	case KindKilled:
		switch t := r.Trailer; {
		case t.TimedOut:
			return "timed out on the member"
		case t.Signal != "":
			return "signal " + t.Signal
		}
		return "killed on the member"
	}
	if r.Reason == "" {
		return string(r.Kind)
	}
	return r.Reason
}

// CallOptions adjust a call.
type CallOptions struct {
	// Audit writes one record to the hub's audit log. The call is made
	// only once its request record is written; its end record follows.
	// nil makes an unaudited call (doctor's probes and lists only).
	Audit func(audit.Record) error
	// UserID and ChatID go into the records.
	UserID, ChatID int64
	// Output receives the output as it arrives.
	Output func(host string, p []byte)
}

// pollEvery is how often a running call's output is read back.
const pollEvery = 20 * time.Millisecond

// Call runs command with args on host and waits for its end. It never
// retries: a refusal is the answer.
func (f *Fleet) Call(ctx context.Context, host, command string, args []string, o CallOptions) *Result {
	start := f.now()
	r := &Result{Host: host, Command: command, Args: args}
	c := f.conns[host]
	if c == nil {
		r.Kind, r.Reason = KindHub, f.unknown(host)
		return r
	}
	req := &remote.Request{Op: remote.OpRun, Call: remote.NewCallID(), Command: command, Args: args, MaxOutput: c.host.MaxOutput}
	r.Call = req.Call.String()
	enc, err := req.Encode()
	if err != nil {
		// The member would refuse it the same way; say so without a call.
		r.Kind, r.Reason = KindRefused, "not sent: "+err.Error()
		return r
	}
	if o.Audit != nil {
		if err := o.Audit(RequestRecord(r, o.UserID, o.ChatID)); err != nil {
			r.Kind, r.Reason = KindHub, "audit log unavailable; call not made"
			return r
		}
	}
	var live func([]byte)
	if o.Output != nil {
		live = func(p []byte) { o.Output(host, p) }
	}
	f.exchange(ctx, c, enc, true, r, live)
	r.Duration = f.now().Sub(start)
	if o.Audit != nil {
		r.AuditErr = o.Audit(EndRecord(r, o.UserID, o.ChatID))
	}
	return r
}

// List asks host for its allowlist. It is not audited: it runs nothing.
func (f *Fleet) List(ctx context.Context, host string) *Result {
	r := &Result{Host: host}
	c := f.conns[host]
	if c == nil {
		r.Kind, r.Reason = KindHub, f.unknown(host)
		return r
	}
	req := &remote.Request{Op: remote.OpList, Call: remote.NewCallID()}
	r.Call = req.Call.String()
	enc, _ := req.Encode()
	f.exchange(ctx, c, enc, true, r, nil)
	return r
}

// streamCap is the hub's cap on the framed stream of a call whose output
// may reach max: the output, its frame headers, the hello and trailer, a
// keepalive every 10 ms for the whole timeout (a member sends one every
// few seconds), and room for the member's one-line refusal.
func streamCap(max int64, timeout time.Duration) int64 {
	return max + remote.FrameOverhead(max) + remote.MaxFixedBytes + int64(timeout/(10*time.Millisecond))*remote.KeepaliveBytes + 64<<10
}

// exchange runs ssh with one remote command and fills r from what came
// back. mux false opens a connection of its own.
func (f *Fleet) exchange(ctx context.Context, c *conn, remoteCmd string, mux bool, r *Result, live func([]byte)) {
	logFile := filepath.Join(f.logDir, r.Call+".log")
	defer os.Remove(logFile)
	spec := exec.Spec{
		Argv:      c.argv(&f.cfg.Fleet, remoteCmd, logFile, mux),
		Dir:       "/",
		Timeout:   c.host.Timeout,
		MaxOutput: streamCap(c.host.MaxOutput, c.host.Timeout),
		SpoolDir:  f.spool,
		// The hub's own ssh client runs unsandboxed, with an empty
		// environment, like every other process relay starts.
	}
	job, err := f.runner.Start(ctx, c.host.Name, f.cfg.Fleet.MaxCalls, spec)
	if err != nil {
		var le *exec.LimitError
		if errors.As(err, &le) {
			r.Kind, r.Reason = KindHub, fmt.Sprintf("too many remote calls at once (fleet.max_calls %d); try again when one finishes", f.cfg.Fleet.MaxCalls)
		} else {
			r.Kind, r.Reason = KindHub, "cannot run ssh: "+err.Error()
		}
		return
	}
	d := &decoded{sum: sha256.New(), live: live}
	dec := remote.NewDecoder(remote.Handler{
		Hello: func(v string) error { d.hello, r.Version = true, v; return nil },
		Output: func(p []byte, off int64) error {
			d.add(off, p)
			return nil
		},
		Trailer: func(t *remote.Trailer) error { r.Trailer = t; return nil },
		List: func(doc []byte) error {
			l, err := remote.ParseList(doc)
			if err != nil {
				return &remote.ProtocolError{Reason: err.Error()}
			}
			r.List = l
			return nil
		},
	})
	var decErr error
	var off int64
	buf := make([]byte, 64<<10)
	feed := func() {
		for {
			n, err := job.ReadOutputAt(buf, off)
			if n > 0 {
				if decErr == nil {
					_, decErr = dec.Write(buf[:n])
				}
				off += int64(n)
			}
			if err != nil || n == 0 {
				return
			}
		}
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
wait:
	for {
		feed()
		select {
		case <-job.Done():
			break wait
		case <-tick.C:
		}
	}
	res := job.Wait()
	feed()
	if decErr == nil {
		decErr = dec.Close()
	}
	logText := readLog(logFile)
	if d.n > 0 {
		r.Output = &Output{spool: res.Output, pieces: d.pieces, size: d.n}
	} else {
		defer res.Output.Close()
	}
	f.classify(c, r, res, d, decErr, logText)
	if r.Kind != KindOK && r.Kind != KindFailed && r.Kind != KindKilled && r.Output != nil && !d.hello {
		// Whatever came back is a refusal's text, not output.
		r.Output.Close()
		r.Output = nil
	}
}

// decoded is what the stream carried so far.
type decoded struct {
	hello  bool
	pieces []piece
	n      int64
	sum    hash.Hash
	live   func([]byte)
}

func (d *decoded) add(off int64, p []byte) {
	if k := len(d.pieces); k > 0 && d.pieces[k-1].off+d.pieces[k-1].n == off {
		d.pieces[k-1].n += int64(len(p))
	} else {
		d.pieces = append(d.pieces, piece{off: off, n: int64(len(p))})
	}
	d.n += int64(len(p))
	d.sum.Write(p)
	if d.live != nil {
		d.live(p)
	}
}

// classify turns ssh's exit, the member's stream and ssh's log into r's
// Kind and Reason.
func (f *Fleet) classify(c *conn, r *Result, res *exec.Result, d *decoded, decErr error, logText string) {
	h := c.host
	code := res.ExitCode
	switch {
	case res.TimedOut:
		r.Kind, r.Reason = KindTimeout, fmt.Sprintf("no end within %s (the hub's timeout for %s); the call was cut, which kills the member's job", h.Timeout, h.Name)
		return
	case res.Canceled:
		r.Kind, r.Reason = KindCanceled, "cancelled by the hub; the call was cut, which kills the member's job"
		return
	case res.Signal != "":
		r.Kind, r.Reason = KindHub, "ssh died of "+res.Signal
		return
	case code == 255:
		sshFailure(r, logText, d.hello)
		return
	case code == remote.ExitRan:
	case remote.IsRefusal(code):
		line := memberLine(res.Output)
		switch code {
		case remote.ExitSandbox:
			r.Kind = KindSandbox
		case remote.ExitAudit:
			r.Kind = KindAudit
		default:
			r.Kind = KindRefused
		}
		if d.hello && code == remote.ExitAudit {
			line = "the command ran, but the member could not record its end: " + line
		} else if d.hello {
			line = "the member failed mid-run: " + line
			r.Kind = KindProtocol
		}
		r.Reason = line
		return
	default:
		text := memberLine(res.Output)
		r.Kind = KindProtocol
		r.Reason = fmt.Sprintf("the member did not answer as relay serve-ssh (exit %d: %s)", code, text)
		if code == 127 && strings.Contains(text, remote.RequestPrefix) {
			r.Reason = fmt.Sprintf("the member ran the request as a shell command (exit 127): its key is not restricted to relay serve-ssh (%s)", text)
		}
		return
	}
	// Exit 0: a whole, valid stream, or nothing is believed.
	switch {
	case res.Dropped > 0:
		r.Kind, r.Reason = KindProtocol, fmt.Sprintf("the member's answer exceeded the hub's cap of %d bytes", streamCap(h.MaxOutput, h.Timeout))
		return
	case decErr != nil:
		r.Kind, r.Reason = KindProtocol, fmt.Sprintf("not a relay member's answer: %v", decErr)
		if !d.hello {
			r.Reason = fmt.Sprintf("not a relay member's answer: %s", memberLine(res.Output))
		}
		r.Trailer, r.List = nil, nil
		return
	case r.List != nil:
		r.Kind = KindOK
		return
	}
	t := r.Trailer
	if d.n != t.Sent {
		r.Kind, r.Reason, r.Trailer = KindProtocol, fmt.Sprintf("the member said it sent %d bytes, the hub received %d", t.Sent, d.n), nil
		return
	}
	if t.Sent == t.Bytes {
		if got := hex.EncodeToString(d.sum.Sum(nil)); got != t.SHA256 {
			r.Kind, r.Reason, r.Trailer = KindProtocol, "the output's SHA-256 does not match the member's trailer", nil
			return
		}
	} else {
		r.Truncated = true
	}
	switch {
	case t.TimedOut || t.Canceled || t.Signal != "":
		r.Kind = KindKilled
	case t.Exit != 0:
		r.Kind = KindFailed
	default:
		r.Kind = KindOK
	}
}

// readLog reads the head of ssh's log file: its error lines.
func readLog(path string) string {
	fh, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer fh.Close()
	b, _ := io.ReadAll(io.LimitReader(fh, 64<<10))
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// memberLine is the member's one-line refusal from the end of what came
// back: the text after the last "relay serve-ssh: ", or its last line.
func memberLine(s *exec.Spool) string {
	if s == nil {
		return "no answer"
	}
	size := s.Size()
	n := min(size, 2048)
	b := make([]byte, n)
	got, _ := s.ReadAt(b, max(0, size-n))
	text := string(b[:got])
	const marker = "relay serve-ssh: "
	if i := strings.LastIndex(text, marker); i >= 0 {
		text = text[i+len(marker):]
		if j := strings.IndexByte(text, '\n'); j >= 0 {
			text = text[:j]
		}
	} else {
		lines := strings.Split(strings.TrimSpace(text), "\n")
		text = lines[len(lines)-1]
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return "no answer"
	}
	return cleanText(text, 300)
}

// cleanText keeps untrusted text to one printable line of at most n
// runes, so that a member cannot reshape the hub's messages.
func cleanText(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if count == n {
			b.WriteString("…")
			break
		}
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			r = ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffd || (r >= 0x2028 && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c:
			continue
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}
