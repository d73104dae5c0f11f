package daemon

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/picker"
	"github.com/relaychat/relay/internal/render"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

// progressEvery is how often a long job's progress is shown: often enough
// to feel live and to keep a draft (which Telegram drops about 30 s after
// its last update) on screen, rare enough to stay far below flood limits.
const progressEvery = 2 * time.Second

// jobInfo is what the daemon knows about a running job.
type jobInfo struct {
	job     *exec.Job
	command string
	chatID  int64
	// draft is the ID of the draft that shows the job's progress, whose
	// stop button cancels it. A stop that is refused has ended that draft
	// on the phone, so the job moves to a new one.
	draft atomic.Int64
}

// pendingRun is a confirm command waiting for its Run/Cancel press. auth
// holds it (it is an auth.Held) with the token in the buttons, and hands
// it back on the press, or releases it when the confirmation dies. It is
// a local command with its sandbox built, or a fan-out with its fleet.
type pendingRun struct {
	d       *Daemon
	command string // as the records name it: "danger", "on"
	// run starts what was confirmed; it owns what done would release.
	run    func()
	done   func() // releases what the run holds: a sandbox, a fleet
	chatID int64
	userID int64

	mu sync.Mutex
	// msgID is the prompt's message, once Telegram has it; 0 before.
	msgID int
	// voided is why auth released the run, nil while it may still run.
	// A release can come before the prompt's send has returned; whichever
	// of the two comes second disables the buttons.
	voided error
}

// voidLabels are what a prompt's keyboard turns into when its
// confirmation dies unpressed.
var voidLabels = map[error]string{
	auth.ErrConfirmExpired:   "✗ expired",
	auth.ErrConfirmNoSession: "✗ void: the session ended",
	auth.ErrConfirmVoided:    "✗ void",
	auth.ErrConfirmEvicted:   "✗ void: too many pending",
}

// Release frees the sandbox built for the run and disables the prompt's
// buttons, saying why.
func (p *pendingRun) Release(why error) {
	p.done()
	p.mu.Lock()
	p.voided = why
	id := p.msgID
	p.mu.Unlock()
	if id != 0 {
		p.d.markPressed(p.chatID, id, voidLabel(why))
	}
}

// sent records the prompt's message ID, disabling its buttons if the run
// was released while the prompt was on its way.
func (p *pendingRun) sent(id int) {
	p.mu.Lock()
	p.msgID = id
	why := p.voided
	p.mu.Unlock()
	if why != nil {
		p.d.markPressed(p.chatID, id, voidLabel(why))
	}
}

func voidLabel(why error) string {
	if label := voidLabels[why]; label != "" {
		return label
	}
	return "✗ void"
}

func (d *Daemon) markPressed(chatID int64, msgID int, label string) {
	d.out.post(chatID, func(ctx context.Context) {
		if err := d.tg.MarkPressed(ctx, chatID, msgID, label, ""); err != nil {
			d.o.Log.Debug().Err(err).Msg("could not disable a prompt's buttons")
		}
	})
}

func (d *Daemon) askConfirm(u telegram.Update, inv *policy.Invocation, spec exec.Spec, done func()) {
	html, whole := chatfmt.ConfirmPrompt(chatfmt.Prompt{Command: inv.Command.Name, Argv: inv.Argv, Workdir: inv.Dir,
		Timeout: inv.Command.Timeout, Sandbox: inv.Command.Sandbox.String(), TTL: auth.ConfirmTTL})
	base := audit.Record{Type: audit.KindRequest, UserID: u.UserID, ChatID: u.ChatID, Command: inv.Command.Name}
	if !whole {
		done()
		base.Outcome, base.Reason = audit.OutcomeDenied, "argv too long to show for confirmation"
		_ = d.record(base)
		d.reply(u.ChatID, chatfmt.Say("the command line is too long to show for confirmation; command not run"))
		return
	}
	chat, user := u.ChatID, u.UserID
	p := &pendingRun{d: d, command: inv.Command.Name, done: done, chatID: chat, userID: user,
		run: func() { d.start(chat, user, inv, spec, done) }}
	r := base
	r.Outcome, r.Params, r.Argv, r.Workdir, r.Sandbox = audit.OutcomeConfirmPending, paramsOf(inv), inv.Argv, inv.Dir, inv.Command.Sandbox.String()
	d.prompt(p, html, r)
}

// prompt registers p with auth, records r (its confirm_pending record)
// and sends the Run/Cancel prompt html. Until the record is durable the
// buttons do not exist.
func (d *Daemon) prompt(p *pendingRun, html string, r audit.Record) {
	done := p.done
	token := d.auth.NewConfirm(p.chatID, p)
	if token == "" {
		done()
		d.reply(p.chatID, chatfmt.Say("not logged in: send /login CODE"))
		return
	}
	if err := d.record(r); err != nil {
		d.auth.Void(token)
		d.reply(p.chatID, chatfmt.Say("audit log unavailable; command not run"))
		return
	}
	chat := p.chatID
	d.out.post(chat, func(ctx context.Context) {
		msgID, err := d.tg.SendText(ctx, chat, html, telegram.Buttons([]telegram.Button{
			{Text: "Run", Data: "r:" + token, Style: telegram.StyleDanger},
			{Text: "Cancel", Data: "x:" + token},
		}))
		if err != nil {
			d.o.Log.Warn().Err(err).Msg("confirmation prompt not delivered")
			d.auth.Void(token)
			return
		}
		p.sent(msgID)
	})
}

// callback handles a Run/Cancel press. Every press is answered, so the
// owner's client stops its spinner, and a press on a prompt that can no
// longer run disables its buttons.
func (d *Daemon) callback(u telegram.Update) {
	qid, chat := u.CallbackID, u.ChatID
	answer := func(r chatfmt.Reply) {
		d.out.post(chat, func(ctx context.Context) {
			if err := d.tg.AnswerCallback(ctx, qid, r.String()); err != nil {
				d.o.Log.Warn().Err(err).Msg("answerCallbackQuery failed")
			}
		})
	}
	base := audit.Record{Type: audit.KindConfirm, UserID: u.UserID, ChatID: u.ChatID}
	deny := func(reason string, text chatfmt.Reply) {
		r := base
		r.Outcome, r.Reason = audit.OutcomeDenied, reason
		_ = d.record(r)
		answer(text)
	}
	if strings.HasPrefix(u.CallbackData, picker.Prefix) {
		d.pickPressed(u)
		return
	}
	action, token, ok := strings.Cut(u.CallbackData, ":")
	if !ok || (action != "r" && action != "x") {
		deny("malformed button data", chatfmt.Say("unknown button"))
		return
	}
	if text, ok := d.gate(u, base); !ok {
		answer(text)
		if u.MessageID != 0 {
			d.markPressed(chat, u.MessageID, voidLabels[auth.ErrConfirmNoSession])
		}
		return
	}
	h, err := d.auth.Confirm(u.UserID, u.ChatID, token)
	if err != nil {
		deny(err.Error(), chatfmt.Refusal(err, refused))
		if u.MessageID != 0 {
			d.markPressed(chat, u.MessageID, "✗ "+chatfmt.Refusal(err, "void").String())
		}
		return
	}
	p := h.(*pendingRun)
	base.Command = p.command
	if action == "x" {
		p.done()
		base.Outcome = audit.OutcomeCancelled
		_ = d.record(base)
		answer(chatfmt.Say("cancelled"))
		d.markPressed(chat, u.MessageID, "✗ Cancelled")
		return
	}
	if d.draining.Load() {
		p.done()
		deny("shutting down", chatfmt.Say("relay is shutting down; command not run"))
		return
	}
	base.Outcome = audit.OutcomeConfirmed
	if err := d.record(base); err != nil {
		p.done()
		answer(chatfmt.Say("audit log unavailable; command not run"))
		return
	}
	answer(chatfmt.Say("running"))
	d.markPressed(chat, u.MessageID, "✓ Run")
	p.run()
}

// stopPressed handles a draft's stop button: exactly /kill of the job the
// draft shows, behind the same session gate.
func (d *Daemon) stopPressed(u telegram.Update) {
	var info *jobInfo
	var fo *fanout
	d.mu.Lock()
	for _, ji := range d.running {
		if ji.draft.Load() == u.DraftID && ji.chatID == u.ChatID {
			info = ji
		}
	}
	for _, f := range d.fanouts {
		if f.draft.Load() == u.DraftID && f.chatID == u.ChatID {
			fo = f
		}
	}
	d.mu.Unlock()
	base := audit.Record{Type: audit.KindKill, Detail: "stop button"}
	if answer, ok := d.gate(u, base); !ok {
		// The phone has stopped showing that draft; the job goes on, so
		// its progress goes on in a new one.
		if info != nil {
			info.draft.Store(draftID())
		}
		if fo != nil {
			fo.draft.Store(draftID())
		}
		d.reply(u.ChatID, answer)
		return
	}
	if fo != nil {
		d.killFanout(u, fo, "stop button")
		return
	}
	if info == nil {
		r := base
		r.Outcome, r.Reason, r.UserID, r.ChatID = audit.OutcomeDenied, "no running job shows that draft", u.UserID, u.ChatID
		_ = d.record(r)
		return
	}
	d.killJob(u, info.job, "stop button")
}

// start writes the request record and, only once it is durable, starts the
// job.
func (d *Daemon) start(chatID, userID int64, inv *policy.Invocation, spec exec.Spec, done func()) {
	cmd := inv.Command
	r := audit.Record{Type: audit.KindRequest, Outcome: audit.OutcomeAllowed, UserID: userID, ChatID: chatID, Command: cmd.Name,
		Params: paramsOf(inv), Argv: inv.Argv, Workdir: inv.Dir, Sandbox: cmd.Sandbox.String()}
	d.mu.Lock()
	if d.draining.Load() {
		d.mu.Unlock()
		done()
		d.reply(chatID, chatfmt.Say("relay is shutting down; command not run"))
		return
	}
	d.jobs.Add(1)
	d.procs.Add(1)
	d.mu.Unlock()
	if err := d.record(r); err != nil {
		d.procs.Done()
		d.jobs.Done()
		done()
		d.reply(chatID, chatfmt.Say("audit log unavailable; command not run"))
		return
	}
	job, err := d.runner.Start(context.Background(), cmd.Name, cmd.Concurrency, spec)
	if err != nil {
		d.procs.Done()
		d.jobs.Done()
		done()
		answer := chatfmt.Say("could not start /%s", chatfmt.Name(cmd.Name))
		var le *exec.LimitError
		if errors.As(err, &le) {
			answer = chatfmt.Refusal(le, "")
		}
		d.o.Log.Warn().Err(err).Str("command", cmd.Name).Msg("job not started")
		_ = d.record(audit.Record{Type: audit.KindExecStart, Outcome: audit.OutcomeFailed, Reason: err.Error(), Command: cmd.Name, UserID: userID, ChatID: chatID})
		d.reply(chatID, answer)
		return
	}
	info := &jobInfo{job: job, command: cmd.Name, chatID: chatID}
	info.draft.Store(draftID())
	d.mu.Lock()
	d.running[job.ID()] = info
	d.mu.Unlock()
	go d.follow(info, inv, done)
}

// draftID is a random positive draft ID: a stop press is matched to a job
// by it, and a counter would match a press on an earlier run's draft to
// this run's job.
func draftID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:])>>1) | 1
}

// progress shows a running job's progress: as a message draft with a stop
// button where the server shows drafts, else as a message edited in place.
type progress struct {
	d       *Daemon
	chatID  int64
	draft   *atomic.Int64 // the draft's ID, which a refused stop renews
	name    string
	useEdit bool // drafts are unsupported here
	// msgID is the edited message, once sent; it is set from the chat's
	// lane.
	msgID atomic.Int64
	skip  time.Time // after a 429, drafts are skipped until then
	last  string
}

func (p *progress) update(job *exec.Job) {
	p.show("/" + chatfmt.Escape(p.name) + " " + chatfmt.Progress(p.d.now().Sub(job.Started()), job.Tail(2048)))
}

// show puts text (HTML) on the phone as the job's progress.
func (p *progress) show(text string) {
	d := p.d
	if text == p.last {
		return
	}
	p.last = text
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chat := p.chatID
	if !p.useEdit {
		if time.Now().Before(p.skip) {
			return
		}
		// A draft is superseded by the next one: it is sent directly, one
		// attempt, never queued behind replies.
		err := d.tg.SendDraft(ctx, telegram.Draft{ChatID: chat, ID: p.draft.Load(), HTML: text, CanStop: true})
		var e *telegram.Error
		switch {
		case err == nil:
			return
		case errors.Is(err, telegram.ErrDraftsUnsupported):
			p.useEdit = true
		case errors.As(err, &e) && e.RetryAfter > 0:
			p.skip = time.Now().Add(e.RetryAfter)
			return
		default:
			d.o.Log.Debug().Err(err).Msg("progress draft failed")
			return
		}
	}
	_ = d.out.call(ctx, chat, func(ctx context.Context) error {
		id := int(p.msgID.Load())
		if id == 0 {
			id, err := d.tg.SendText(ctx, chat, text, telegram.Silent())
			if err == nil {
				p.msgID.Store(int64(id))
			}
			return err
		}
		if err := d.tg.EditText(ctx, chat, id, text); err != nil {
			d.o.Log.Debug().Err(err).Msg("progress edit failed")
		}
		return nil
	})
}

// follow shows live progress for a long job, records its end and delivers
// its output. It uses its own context: a job started before shutdown still
// reports its result to the owner.
func (d *Daemon) follow(info *jobInfo, inv *policy.Invocation, done func()) {
	job := info.job
	defer d.jobs.Done()
	// Release the sandbox's temp dir before shutdown can see the job gone.
	defer done()
	defer func() {
		d.mu.Lock()
		delete(d.running, job.ID())
		d.mu.Unlock()
	}()
	p := &progress{d: d, chatID: info.chatID, draft: &info.draft, name: inv.Command.Name}
	t := time.NewTicker(progressEvery)
	defer t.Stop()
wait:
	for {
		select {
		case <-job.Done():
			break wait
		case <-t.C:
			p.update(job)
		}
	}
	d.procs.Done()
	res := job.Wait()
	defer res.Output.Close()
	end := audit.Record{Type: audit.KindExecEnd, Outcome: endOutcomes[res.Ending()], Command: inv.Command.Name, Job: job.ID(), ChatID: info.chatID,
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
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A format runs here, bounded, not in the chat's lane.
	view := d.format(inv.Command, res)
	err := d.out.call(dctx, info.chatID, func(ctx context.Context) error {
		return d.deliver(ctx, info.chatID, int(p.msgID.Load()), inv, res, view)
	})
	auditErr := <-recorded
	d.recordDelivery("result of /"+inv.Command.Name, job.ID(), err)
	if auditErr != nil {
		d.reply(info.chatID, chatfmt.Say("⚠️ audit log unavailable: the result above is not recorded; new commands are refused until the log is healthy"))
	}
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

// view is how a result is shown: its footer, and the output through the
// command's format when it has one and it worked.
type view struct {
	foot     string
	rendered *string // nil: the raw output
}

// format renders res through cmd's format, when cmd has one and exited 0
// (a failed command's output is what the owner needs to see as it is).
// A failure shows the raw output with a one-line note in the footer.
func (d *Daemon) format(cmd *policy.Command, res *exec.Result) view {
	v := view{foot: footer(cmd.Name, res)}
	if res.Ending() != exec.EndOK {
		return v
	}
	prog, err := cmd.Renderer()
	if err != nil || prog == nil {
		// A loaded command's format compiled at load; nil has none.
		return v
	}
	r, err := res.Output.Open()
	if err == nil {
		var text string
		text, err = prog.Render(context.Background(), r, render.Limits{Input: min(cmd.MaxOutput, render.MaxInput), Units: chatfmt.TextBudget(v.foot)})
		r.Close()
		if err == nil {
			v.rendered = &text
			return v
		}
	}
	v.foot += " · " + render.Note(err)
	return v
}

// deliver sends the result: a message when it fits, else a document
// streamed from the spool. A message to the chat also ends the job's
// draft; an edited progress message becomes the result.
func (d *Daemon) deliver(ctx context.Context, chatID int64, progressID int, inv *policy.Invocation, res *exec.Result, v view) error {
	cfg := d.config()
	foot := v.foot
	sendText := func(text string) error {
		if progressID != 0 {
			if err := d.tg.EditText(ctx, chatID, progressID, text); err == nil {
				return nil
			}
		}
		_, err := d.tg.SendText(ctx, chatID, text)
		return err
	}
	name := fmt.Sprintf("%s-%s.txt", inv.Command.Name, d.now().UTC().Format("20060102-150405"))
	if v.rendered != nil {
		out := []byte(*v.rendered)
		if chatfmt.FitsMessage(out, foot) {
			return sendText(chatfmt.Pre(out, foot))
		}
		// Formatted text longer than a message: a document of it.
		open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(*v.rendered)), nil }
		err := d.tg.SendDocument(ctx, chatID, name, open, chatfmt.Escape(foot+fmt.Sprintf(" · formatted, %d bytes", len(out))))
		if progressID != 0 {
			_ = d.tg.DeleteMessage(ctx, chatID, progressID)
		}
		return err
	}
	if res.Output.Size() <= smallOutput {
		out, err := readAll(res.Output)
		if err != nil {
			return err
		}
		if chatfmt.FitsMessage(out, foot) {
			return sendText(chatfmt.Pre(out, foot))
		}
	}
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

// endOutcomes are the exec_end outcomes for how a job ended.
var endOutcomes = map[exec.Ending]audit.Outcome{
	exec.EndOK: audit.OutcomeOK, exec.EndFailed: audit.OutcomeFailed, exec.EndSignal: audit.OutcomeSignal,
	exec.EndTimeout: audit.OutcomeTimeout, exec.EndKilled: audit.OutcomeKilled,
}
