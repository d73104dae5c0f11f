package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

// progressEvery is how often a long job's progress message is edited:
// often enough to feel live, rare enough to stay far below flood limits.
const progressEvery = 2 * time.Second

// pendingRun is a command waiting for its Run/Cancel press.
type pendingRun struct {
	inv    *policy.Invocation
	spec   exec.Spec
	done   func() // releases the sandbox's resources
	chatID int64
	userID int64
	msgID  int
	asked  time.Time
}

// confirmTTL bounds how long a pending confirmation is kept; auth refuses
// a press after 60 s anyway, this only frees the memory.
const confirmTTL = 2 * time.Minute

type jobInfo struct {
	command string
	chatID  int64
}

func (d *Daemon) clearPending() {
	d.mu.Lock()
	for k, p := range d.pending {
		p.done()
		delete(d.pending, k)
	}
	d.mu.Unlock()
}

func (d *Daemon) askConfirm(ctx context.Context, u telegram.Update, inv *policy.Invocation, spec exec.Spec, done func()) {
	key := randomID()
	token := d.auth.NewConfirm(u.ChatID, key)
	r := audit.Record{Type: "request", Outcome: "confirm_pending", UserID: u.UserID, ChatID: u.ChatID,
		Command: inv.Command.Name, Params: paramsOf(inv), Argv: inv.Argv, Workdir: inv.Dir, Sandbox: inv.Command.Sandbox.String()}
	if err := d.record(r); err != nil {
		done()
		d.reply(ctx, u, "audit log unavailable; command not run")
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<b>Run /%s?</b>\n<pre>", chatfmt.Escape(inv.Command.Name))
	for i, a := range inv.Argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(chatfmt.Escape(quoteArg(a)))
	}
	fmt.Fprintf(&b, "</pre>workdir %s · timeout %s · sandbox %s\nThe buttons work once, for 60 s.",
		chatfmt.Escape(inv.Dir), inv.Command.Timeout, chatfmt.Escape(inv.Command.Sandbox.String()))
	msgID, err := d.tg.SendText(ctx, u.ChatID, b.String(), telegram.Buttons([]telegram.Button{
		{Text: "Run", Data: "r:" + token},
		{Text: "Cancel", Data: "x:" + token},
	}))
	if err != nil {
		done()
		d.o.Log.Warn().Err(err).Msg("confirmation prompt not delivered")
		return
	}
	d.mu.Lock()
	for k, p := range d.pending {
		if d.now().Sub(p.asked) > confirmTTL {
			p.done()
			delete(d.pending, k)
		}
	}
	d.pending[key] = &pendingRun{inv: inv, spec: spec, done: done, chatID: u.ChatID, userID: u.UserID, msgID: msgID, asked: d.now()}
	d.mu.Unlock()
}

// callback handles a Run/Cancel press. Every callback is answered, so the
// owner's client stops its spinner.
func (d *Daemon) callback(ctx context.Context, u telegram.Update) {
	action, token, ok := strings.Cut(u.CallbackData, ":")
	answer := func(text string) {
		if err := d.tg.AnswerCallback(ctx, u.CallbackID, text); err != nil {
			d.o.Log.Warn().Err(err).Msg("answerCallbackQuery failed")
		}
	}
	base := audit.Record{Type: "confirm", UserID: u.UserID, ChatID: u.ChatID}
	if !ok || (action != "r" && action != "x") {
		base.Outcome, base.Reason = "denied", "malformed button data"
		_ = d.record(base)
		answer("unknown button")
		return
	}
	key, err := d.auth.Confirm(u.UserID, u.ChatID, token)
	var p *pendingRun
	if err == nil {
		d.mu.Lock()
		p = d.pending[key]
		delete(d.pending, key)
		d.mu.Unlock()
		if p == nil {
			err = errors.New("confirmation expired")
		}
	}
	if err != nil {
		base.Outcome, base.Reason = "denied", err.Error()
		_ = d.record(base)
		answer(err.Error())
		return
	}
	base.Command = p.inv.Command.Name
	_ = d.tg.RemoveButtons(ctx, p.chatID, p.msgID)
	if action == "x" {
		p.done()
		base.Outcome = "cancelled"
		_ = d.record(base)
		answer("cancelled")
		return
	}
	if _, ok := d.auth.Session(u.ChatID); !ok {
		p.done()
		base.Outcome, base.Reason = "denied", "no session"
		_ = d.record(base)
		answer("not logged in")
		return
	}
	base.Outcome = "confirmed"
	if err := d.record(base); err != nil {
		p.done()
		answer("audit log unavailable; command not run")
		return
	}
	answer("running")
	d.start(ctx, p.chatID, p.userID, p.inv, p.spec, p.done)
}

// start writes the request record and, only once it is durable, starts the
// job.
func (d *Daemon) start(ctx context.Context, chatID, userID int64, inv *policy.Invocation, spec exec.Spec, done func()) {
	cmd := inv.Command
	r := audit.Record{Type: "request", Outcome: "allowed", UserID: userID, ChatID: chatID, Command: cmd.Name,
		Params: paramsOf(inv), Argv: inv.Argv, Workdir: inv.Dir, Sandbox: cmd.Sandbox.String()}
	d.mu.Lock()
	if d.draining.Load() {
		d.mu.Unlock()
		done()
		d.notifyOwnerChat(ctx, chatID, chatfmt.Line("relay is shutting down; command not run"))
		return
	}
	d.jobs.Add(1)
	d.mu.Unlock()
	if err := d.record(r); err != nil {
		d.jobs.Done()
		done()
		d.notifyOwnerChat(ctx, chatID, chatfmt.Line("audit log unavailable; command not run"))
		return
	}
	job, err := d.runner.Start(context.Background(), cmd.Name, cmd.Concurrency, spec)
	if err != nil {
		d.jobs.Done()
		done()
		answer := "could not start /" + cmd.Name
		var le *exec.LimitError
		if errors.As(err, &le) {
			answer = le.Error()
		}
		d.o.Log.Warn().Err(err).Str("command", cmd.Name).Msg("job not started")
		_ = d.record(audit.Record{Type: "exec_start", Outcome: "failed", Reason: err.Error(), Command: cmd.Name, UserID: userID, ChatID: chatID})
		d.notifyOwnerChat(ctx, chatID, chatfmt.Line(answer))
		return
	}
	d.mu.Lock()
	d.running[job.ID()] = &jobInfo{command: cmd.Name, chatID: chatID}
	d.mu.Unlock()
	go d.follow(job, inv, chatID, done)
}

// follow shows live progress for a long job, records its end and delivers
// its output. It uses its own context: a job started before shutdown still
// reports its result to the owner.
func (d *Daemon) follow(job *exec.Job, inv *policy.Invocation, chatID int64, done func()) {
	defer d.jobs.Done()
	// Release the sandbox's temp dir before shutdown can see the job gone.
	defer done()
	defer func() {
		d.mu.Lock()
		delete(d.running, job.ID())
		d.mu.Unlock()
	}()
	ctx := context.Background()
	progressID := 0
	last := ""
	t := time.NewTicker(progressEvery)
	defer t.Stop()
wait:
	for {
		select {
		case <-job.Done():
			break wait
		case <-t.C:
			text := "/" + chatfmt.Escape(inv.Command.Name) + " " + chatfmt.Progress(d.now().Sub(job.Started()), job.Tail(2048))
			if text == last {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if progressID == 0 {
				id, err := d.tg.SendText(pctx, chatID, text, telegram.Silent())
				if err == nil {
					progressID = id
				}
			} else if err := d.tg.EditText(pctx, chatID, progressID, text); err != nil {
				d.o.Log.Debug().Err(err).Msg("progress edit failed")
			}
			cancel()
			last = text
		}
	}
	res := job.Wait()
	defer res.Output.Close()
	end := audit.Record{Type: "exec_end", Outcome: outcome(res), Command: inv.Command.Name, Job: job.ID(), ChatID: chatID,
		Signal: res.Signal, TimedOut: res.TimedOut, DurationMS: res.Duration.Milliseconds(),
		OutputBytes: res.OutputBytes, OutputSHA256: res.SHA256,
		CPUMS: res.CPU.Milliseconds(), MaxRSS: res.MaxRSS, MemoryPeak: max(res.MemoryPeak, 0), OOMKills: max(res.OOMKills, 0)}
	exit := res.ExitCode
	end.Exit = &exit
	// The completion record and the reply are independent: the command
	// has already ended, so its record does not gate anything but the
	// delivery record, which is written after both. Overlapping them saves
	// an fsync's latency on every command.
	recorded := make(chan error, 1)
	go func() { recorded <- d.record(end) }()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	err := d.deliver(dctx, chatID, progressID, inv, res)
	auditErr := <-recorded
	d.recordDelivery("result of /"+inv.Command.Name, job.ID(), err)
	if auditErr != nil {
		d.notifyOwnerChat(dctx, chatID, chatfmt.Line("⚠️ audit log unavailable: the result above is not recorded; new commands are refused until the log is healthy"))
	}
}

func outcome(res *exec.Result) string {
	switch {
	case res.TimedOut:
		return "timeout"
	case res.Canceled:
		return "killed"
	case res.Signal != "":
		return "signal"
	case res.ExitCode != 0:
		return "failed"
	}
	return "ok"
}

func footer(name string, res *exec.Result) string {
	f := fmt.Sprintf("/%s · %s · %s", name, res.Status(), res.Duration.Round(10*time.Millisecond))
	if res.Dropped > 0 {
		f += fmt.Sprintf(" · %d bytes dropped", res.Dropped)
	}
	return f
}

// smallOutput is the largest output read into memory to try a message.
const smallOutput = 16 << 10

// deliver sends the result: a message when it fits, else a document
// streamed from the spool.
func (d *Daemon) deliver(ctx context.Context, chatID int64, progressID int, inv *policy.Invocation, res *exec.Result) error {
	cfg := d.config()
	foot := footer(inv.Command.Name, res)
	if res.Output.Size() <= smallOutput {
		out, err := readAll(res.Output)
		if err != nil {
			return err
		}
		if chatfmt.FitsMessage(out, foot) {
			text := chatfmt.Pre(out, foot)
			if progressID != 0 {
				if err := d.tg.EditText(ctx, chatID, progressID, text); err == nil {
					return nil
				}
			}
			_, err := d.tg.SendText(ctx, chatID, text)
			return err
		}
	}
	name := fmt.Sprintf("%s-%s.txt", inv.Command.Name, d.now().UTC().Format("20060102-150405"))
	limit := cfg.Telegram.MaxDocumentBytes
	open := func() (io.ReadCloser, error) {
		r, err := res.Output.Open()
		if err != nil {
			return nil, err
		}
		if res.Output.Size() <= limit {
			return r, nil
		}
		notice := fmt.Sprintf("\n[relay: document truncated at %d bytes; the full output was %d bytes]\n", limit, res.OutputBytes)
		return struct {
			io.Reader
			io.Closer
		}{io.MultiReader(io.LimitReader(r, limit-int64(len(notice))), strings.NewReader(notice)), r}, nil
	}
	caption := chatfmt.Escape(foot + fmt.Sprintf(" · %d bytes", res.OutputBytes))
	err := d.tg.SendDocument(ctx, chatID, name, open, caption)
	if progressID != 0 {
		_ = d.tg.DeleteMessage(ctx, chatID, progressID)
	}
	return err
}

func readAll(s *exec.Spool) ([]byte, error) {
	r, err := s.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, smallOutput+1))
}

func quoteArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t'\"\\") {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// unauthLimiter rate-limits audit records for unauthorized updates, so a
// flood from strangers cannot fill the disk, while the count of what was
// not recorded individually still reaches the log.
type unauthLimiter struct {
	now     func() time.Time
	window  time.Time
	n       int
	dropped int
}

const unauthPerMinute = 10

func newUnauthLimiter(now func() time.Time) *unauthLimiter { return &unauthLimiter{now: now} }

// allow reports whether to record this update, and how many were dropped
// since the last recorded one. Updates are handled one at a time, so it
// needs no lock.
func (l *unauthLimiter) allow() (dropped int, ok bool) {
	now := l.now()
	if now.Sub(l.window) >= time.Minute {
		l.window, l.n = now, 0
	}
	if l.n >= unauthPerMinute {
		l.dropped++
		return 0, false
	}
	l.n++
	dropped, l.dropped = l.dropped, 0
	return dropped, true
}
