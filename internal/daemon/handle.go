package daemon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/fleet"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

// builtinHandlers answer policy.Builtins, by name. Dispatch looks a name
// up in policy.Builtins first, so only what that table lists is answered,
// with its Session flag enforced by the one gate; TestBuiltinsTable fails
// when a built-in has no handler here or a handler has no entry there.
var builtinHandlers = map[string]func(d *Daemon, u telegram.Update, args string){
	"login":  (*Daemon).login,
	"logout": func(d *Daemon, u telegram.Update, _ string) { d.logout(u) },
	"lock":   func(d *Daemon, u telegram.Update, _ string) { d.lock(u) },
	"status": func(d *Daemon, u telegram.Update, _ string) { d.status(u) },
	"ps":     func(d *Daemon, u telegram.Update, _ string) { d.ps(u) },
	"kill":   (*Daemon).kill,
	"audit":  (*Daemon).auditTail,
	"cancel": func(d *Daemon, u telegram.Update, _ string) { d.cancel(u) },
	"on":     (*Daemon).on,
	"hosts":  func(d *Daemon, u telegram.Update, _ string) { d.hostsList(u) },
	"help":   func(d *Daemon, u telegram.Update, _ string) { d.help(u) },
	"start":  func(d *Daemon, u telegram.Update, _ string) { d.help(u) },
}

// indirectReasons are the audit reasons for messages the owner's account
// sent but the owner did not type (telegram.Update.Indirect).
var indirectReasons = map[string]string{
	telegram.IndirectForwarded:  "forwarded message: not typed by the owner",
	telegram.IndirectViaBot:     "message sent through an inline bot (via_bot)",
	telegram.IndirectSenderChat: "message sent on behalf of a chat (sender_chat)",
	telegram.IndirectBusiness:   "business message",
	telegram.IndirectOffline:    "scheduled or automatic message (is_from_offline)",
}

// handle processes one update, one at a time, in update order. It decides
// and acts, and never sends: replies are posted to the outbox, and anything
// slow (a command, an audit read) runs elsewhere, so that /lock, /kill and
// /logout take effect at once whatever else is going on. The checks, in
// order:
//
//  1. a message that carries a code is deleted, whatever follows;
//  2. an update at or below the update_id floor was handled before;
//  3. anyone but the owner in their private chat, or an edit, is ignored;
//  4. the floor is made durable before anything of the owner's has an
//     effect (after it, for /lock and /logout, which are harmless twice
//     and must not wait for a disk);
//  5. a message the owner did not type is ignored;
//  6. a stale message is ignored;
//  7. a command for another bot is ignored;
//  8. a built-in runs, behind the session gate when it needs a session;
//  9. anything else is a policy command (command has its own order).
func (d *Daemon) handle(_ context.Context, u telegram.Update) {
	d.serial.Lock()
	defer d.serial.Unlock()
	defer func() {
		if r := recover(); r != nil {
			// The panic value may quote message text: log the update ID only.
			d.o.Log.Error().Int64("update", u.ID).Msg("recovered from a panic while handling an update")
		}
	}()
	cfg := d.config()
	d.deleteIfCode(cfg, u)
	if d.floor.seen(u.ID) {
		_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeIgnored, UserID: u.UserID, ChatID: u.ChatID, Detail: u.Kind,
			Reason: "already handled before a restart (update_id at or below the floor)"})
		return
	}
	d.floor.advance(u.ID)
	press := u.Kind == telegram.KindCallbackQuery || u.Kind == telegram.KindGenerationStopped
	verdict := d.auth.Admit(auth.Update{
		UserID: u.UserID, ChatID: u.ChatID, ChatType: u.ChatType, Date: u.Date,
		Edited: u.Kind == telegram.KindEditedMessage, Press: press,
	})
	if verdict == auth.Ignore {
		d.unauthorized(u)
		return
	}
	if protective(u) {
		// Handling /lock or /logout twice is harmless, and their effect
		// must not wait for a disk: the floor is saved after it.
		defer func() {
			if err := d.floor.save(); err != nil {
				d.o.Log.Error().Err(err).Msg("update_id floor not saved")
			}
		}()
	} else if err := d.floor.save(); err != nil {
		d.o.Log.Error().Err(err).Msg("update_id floor not saved")
		_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeDenied, UserID: u.UserID, ChatID: u.ChatID, Detail: u.Kind, Reason: "update_id floor not saved"})
		d.reply(u.ChatID, chatfmt.Say("relay cannot write its state directory; only /lock and /logout work until it can (see the relay log)"))
		return
	}
	if u.Indirect != "" {
		_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeIgnored, UserID: u.UserID, ChatID: u.ChatID, Detail: u.Kind, Reason: indirectReasons[u.Indirect]})
		return
	}
	if verdict == auth.Stale {
		d.stale(u)
		return
	}
	switch u.Kind {
	case telegram.KindCallbackQuery:
		d.callback(u)
		return
	case telegram.KindGenerationStopped:
		d.stopPressed(u)
		return
	case telegram.KindMessage:
	default:
		_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeIgnored, UserID: u.UserID, ChatID: u.ChatID, Detail: u.Kind})
		return
	}
	name, args, ok := telegram.ParseCommand(u.Text)
	if !ok {
		_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeIgnored, UserID: u.UserID, ChatID: u.ChatID, Detail: "message without a command"})
		d.reply(u.ChatID, chatfmt.Say("send /help for the commands"))
		return
	}
	if _, _, ours := telegram.ParseCommandFor(u.Text, d.name()); !ours {
		_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeIgnored, UserID: u.UserID, ChatID: u.ChatID, Command: name,
			Reason: "command addressed to another bot"})
		return
	}
	if b := policy.LookupBuiltin(name); b != nil {
		if b.Session {
			if answer, ok := d.gate(u, audit.Record{Type: audit.KindRequest, Command: name}); !ok {
				d.reply(u.ChatID, answer)
				return
			}
		}
		builtinHandlers[name](d, u, args)
		return
	}
	d.command(u, name, args)
}

// name is the bot's username, "" while unknown.
func (d *Daemon) name() string {
	if p := d.botName.Load(); p != nil {
		return *p
	}
	return ""
}

// protective reports whether u is /lock or /logout, which must work even
// when relay cannot write its state.
func protective(u telegram.Update) bool {
	name, _, ok := telegram.ParseCommand(u.Text)
	return u.Kind == telegram.KindMessage && ok && (name == "lock" || name == "logout")
}

// carriesCode reports whether u's text holds a TOTP or recovery code:
// /login CODE, a reauth command's step-up code, or a bare code sent by
// mistake. Whoever it is addressed to, and whether or not it will run.
func carriesCode(cfg *policy.Config, u telegram.Update) bool {
	if u.Text == "" {
		return false
	}
	if name, args, ok := telegram.ParseCommand(u.Text); ok {
		if args == "" {
			return false
		}
		if name == "login" {
			return true
		}
		if name == fleet.OnCommand {
			// /on TARGET COMMAND CODE …: whether the member's command
			// takes a code is known only from its list, later, so a
			// third word that looks like one is taken for one.
			words, err := policy.SplitArgs(args)
			return err == nil && len(words) >= 3 && auth.LooksLikeCode(words[2])
		}
		c := cfg.Lookup(name)
		return c != nil && c.Reauth
	}
	return auth.LooksLikeCode(u.Text)
}

// deleteIfCode deletes a message of the owner's that carries a code,
// before anything else looks at it: it must not stay in the chat, stale,
// forwarded, mistyped or refused alike. The deletion goes out at once, in
// its own lane, never behind a reply that Telegram is holding back.
// Messages in strangers' chats are not touched: the codes there are not
// the owner's, and a stranger must not be able to make relay call the
// Bot API.
func (d *Daemon) deleteIfCode(cfg *policy.Config, u telegram.Update) {
	if u.MessageID == 0 || (u.ChatID != d.owner && u.UserID != d.owner) || u.Kind == telegram.KindCallbackQuery || !carriesCode(cfg, u) {
		return
	}
	chat, msg := u.ChatID, u.MessageID
	d.out.urgent(chat, func(ctx context.Context) {
		if err := d.tg.DeleteMessage(ctx, chat, msg); err != nil {
			d.o.Log.Warn().Err(err).Int64("chat_id", chat).Int("message_id", msg).Msg("could not delete a message that carries a code; delete it by hand")
		}
	})
}

// gate is the one session check, for commands, button presses and
// built-ins alike: it lets u through in a live session, touching it. When
// there is none it records denied (with its Type, Command and Detail set
// by the caller) and returns the answer to give, which says once why a
// session that ran out by itself ended.
func (d *Daemon) gate(u telegram.Update, denied audit.Record) (answer chatfmt.Reply, ok bool) {
	if _, ok := d.auth.Session(u.ChatID); ok {
		d.auth.Touch(u.ChatID)
		return chatfmt.Reply{}, true
	}
	answer = chatfmt.Say("not logged in: send /login CODE")
	if e, ok := d.auth.TakeExpiry(u.ChatID); ok {
		d.picks.Forget()
		what := chatfmt.Say("idle for %s", chatfmt.Dur(e.Limit))
		if e.Reason == "lifetime" {
			what = chatfmt.Say("reached its lifetime of %s", chatfmt.Dur(e.Limit))
		}
		_ = d.record(audit.Record{Type: audit.KindSession, Outcome: audit.OutcomeExpired, Reason: e.Reason, UserID: u.UserID, ChatID: u.ChatID,
			Detail: "expired at " + e.At.UTC().Format(time.RFC3339)})
		answer = chatfmt.Say("session expired (%s): send /login CODE", what)
	}
	denied.Outcome, denied.Reason, denied.UserID, denied.ChatID = audit.OutcomeDenied, "no session", u.UserID, u.ChatID
	_ = d.record(denied)
	return answer, false
}

// reply sends a one-line answer. It takes a chatfmt.Reply, never a
// string: what reaches the chat is built from text that is safe to show,
// and a cause goes to the log (or the audit record) instead.
func (d *Daemon) reply(chatID int64, r chatfmt.Reply) { d.send(chatID, r.HTML()) }

func (d *Daemon) notifyOwner(r chatfmt.Reply) { d.reply(d.owner, r) }

// refused is the answer to a refusal whose cause is not safe to show.
const refused = "command refused; see the relay log"

// send posts an HTML message (rendered by chatfmt) to chatID's lane.
func (d *Daemon) send(chatID int64, html string, opts ...telegram.SendOpt) {
	d.out.post(chatID, func(ctx context.Context) {
		if _, err := d.tg.SendText(ctx, chatID, html, opts...); err != nil {
			d.o.Log.Warn().Err(err).Msg("reply failed")
		}
	})
}

func (d *Daemon) recordDelivery(what, job string, err error) {
	r := audit.Record{Type: audit.KindDelivery, Outcome: audit.OutcomeSent, Detail: what, Job: job, ChatID: d.owner}
	if err != nil {
		r.Outcome, r.Reason = audit.OutcomeFailed, err.Error()
	}
	_ = d.record(r)
}

func (d *Daemon) unauthorized(u telegram.Update) {
	if n, ok := d.unauth.allow(); ok {
		r := audit.Record{Type: audit.KindUnauthorized, Outcome: audit.OutcomeIgnored, UserID: u.UserID, ChatID: u.ChatID, Detail: u.Kind}
		if n > 0 {
			r.Count = n
			r.Reason = fmt.Sprintf("%d earlier unauthorized updates not recorded individually (rate limit)", n)
		}
		_ = d.record(r)
	}
}

func (d *Daemon) stale(u telegram.Update) {
	_ = d.record(audit.Record{Type: audit.KindStale, Outcome: audit.OutcomeIgnored, UserID: u.UserID, ChatID: u.ChatID, Detail: u.Kind})
	if d.auth.FirstStale() {
		age := d.config().Auth.MaxMessageAge
		d.reply(u.ChatID, chatfmt.Say("ignored messages sent before relay started or older than %s; send them again if you still want them", chatfmt.Dur(age)))
	}
}

func (d *Daemon) help(u telegram.Update) {
	_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeOK, UserID: u.UserID, ChatID: u.ChatID, Detail: "help"})
	var cmds, builtins []chatfmt.HelpEntry
	for _, c := range d.config().Commands {
		cmds = append(cmds, chatfmt.HelpEntry{Usage: c.Usage(), Description: c.Description})
	}
	for _, b := range policy.Builtins {
		if b.Listed(d.config()) {
			e := chatfmt.HelpEntry{Usage: b.Usage(), Description: b.Description}
			if desc, ok := d.onHelp(); ok && b.Name == fleet.OnCommand {
				e.Description = desc
			}
			builtins = append(builtins, e)
		}
	}
	for _, m := range chatfmt.Help(cmds, builtins) {
		d.send(u.ChatID, m)
	}
}

func (d *Daemon) login(u telegram.Update, args string) {
	code := strings.TrimSpace(args)
	if code == "" {
		d.reply(u.ChatID, chatfmt.Say("send /login CODE, with the code from your authenticator app"))
		return
	}
	res := d.auth.Login(u.ChatID, code)
	if res.Err != nil {
		d.o.Log.Error().Err(res.Err).Msg("login refused: auth state")
	}
	r := audit.Record{Type: audit.KindLogin, Outcome: res.Event, UserID: u.UserID, ChatID: u.ChatID}
	if !res.OK {
		r.Reason = res.Reason
	}
	if err := d.record(r); err != nil {
		if res.OK {
			// A session nobody can account for must not exist.
			d.auth.Logout(u.ChatID)
		}
		d.reply(u.ChatID, chatfmt.Say("audit log unavailable: not logged in"))
		return
	}
	if !res.OK {
		d.reply(u.ChatID, chatfmt.Say("login failed: %s", chatfmt.Shown(res)))
		return
	}
	d.picks.Forget()
	cfg := d.config()
	msg := chatfmt.Say("logged in; the session ends after %s idle or %s at most", chatfmt.Dur(cfg.Auth.SessionIdle), chatfmt.Dur(cfg.Auth.SessionMax))
	if res.UsedRecovery {
		msg = msg.Join("; ", chatfmt.Say("a recovery code was used and is now spent"))
	}
	d.reply(u.ChatID, msg)
}

func (d *Daemon) logout(u telegram.Update) {
	d.auth.Logout(u.ChatID)
	d.picks.Forget()
	_ = d.record(audit.Record{Type: audit.KindSession, Outcome: audit.OutcomeEnded, Reason: "logout", UserID: u.UserID, ChatID: u.ChatID})
	d.reply(u.ChatID, chatfmt.Say("logged out"))
}

// lock is the panic button. Its effect (the session ended, every
// confirmation void, every job killed) is complete before the update loop
// moves on; only the answer waits in the chat's lane.
func (d *Daemon) lock(u telegram.Update) {
	// The jobs first: ending the session writes the auth state.
	n := len(d.runner.Jobs())
	d.runner.CancelAll()
	n += d.cancelFanouts()
	lockErr := d.auth.Lock(u.ChatID)
	d.picks.Forget()
	if lockErr != nil {
		// The lock holds in memory; only a restart would lift it.
		d.o.Log.Error().Err(lockErr).Msg("/lock not persisted; it holds until relay restarts")
	}
	_ = d.record(audit.Record{Type: audit.KindSession, Outcome: audit.OutcomeLocked, Reason: fmt.Sprintf("lock: %d jobs killed", n), UserID: u.UserID, ChatID: u.ChatID})
	d.reply(u.ChatID, chatfmt.Say("locked: session ended, %d jobs killed; log in with a fresh code to unlock", chatfmt.Num(n)))
}

func (d *Daemon) cancel(u telegram.Update) {
	n := d.auth.VoidConfirms()
	_ = d.record(audit.Record{Type: audit.KindConfirm, Outcome: audit.OutcomeCancelled, UserID: u.UserID, ChatID: u.ChatID, Reason: fmt.Sprintf("/cancel: %d pending confirmations voided", n)})
	d.reply(u.ChatID, chatfmt.Say("%d pending confirmations voided", chatfmt.Num(n)))
}

func (d *Daemon) status(u telegram.Update) {
	_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeOK, UserID: u.UserID, ChatID: u.ChatID, Detail: "status"})
	st := d.auth.Status()
	now := d.now()
	info := chatfmt.StatusInfo{Session: st.Session, IdleLeft: st.IdleLeft, AbsoluteLeft: st.AbsoluteLeft,
		Failures: st.Failures, Locked: st.Locked, Jobs: len(d.runner.Jobs()) + len(d.runningFanouts()),
		AuditHealthy: d.audit.Healthy() == nil, AuditSeq: d.audit.Head().Seq,
		Version: d.o.Version, Uptime: now.Sub(d.started)}
	if st.LockedUntil.After(now) {
		info.LockoutLeft = st.LockedUntil.Sub(now)
	}
	d.send(u.ChatID, chatfmt.Status(info))
}

func (d *Daemon) ps(u telegram.Update) {
	_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeOK, UserID: u.UserID, ChatID: u.ChatID, Detail: "ps"})
	var jobs []chatfmt.Job
	for _, j := range d.runner.Jobs() {
		jobs = append(jobs, chatfmt.Job{ID: j.ID(), Command: j.Key(), Elapsed: d.now().Sub(j.Started())})
	}
	for _, fo := range d.runningFanouts() {
		jobs = append(jobs, chatfmt.Job{ID: fo.id, Command: fo.title, Elapsed: d.now().Sub(fo.started)})
	}
	d.send(u.ChatID, chatfmt.PS(jobs))
}

func (d *Daemon) kill(u telegram.Update, args string) {
	id := strings.TrimSpace(args)
	d.mu.Lock()
	fo := d.fanouts[id]
	d.mu.Unlock()
	if fo != nil {
		d.killFanout(u, fo, "/kill")
		return
	}
	j := d.runner.Get(id)
	if id == "" || j == nil {
		d.reply(u.ChatID, chatfmt.Say("no such job; /ps lists the running jobs"))
		return
	}
	d.killJob(u, j, "/kill")
}

// killJob is /kill and the stop button alike: the job is cancelled at
// once, then the kill recorded and answered.
func (d *Daemon) killJob(u telegram.Update, j *exec.Job, via string) {
	j.Cancel()
	_ = d.record(audit.Record{Type: audit.KindKill, Outcome: audit.OutcomeOK, UserID: u.UserID, ChatID: u.ChatID, Job: j.ID(), Command: j.Key(), Detail: via})
	d.reply(u.ChatID, chatfmt.Say("killing job %s", chatfmt.Name(j.ID())))
}

// auditTail answers /audit N. The read runs in the chat's lane, not here:
// it is I/O, and its answer keeps its place among the chat's replies.
func (d *Daemon) auditTail(u telegram.Update, args string) {
	n := 10
	if s := strings.TrimSpace(args); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			d.reply(u.ChatID, chatfmt.Say("usage: /audit [N], N from 1 to 50"))
			return
		}
		n = min(v, 50)
	}
	_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeOK, UserID: u.UserID, ChatID: u.ChatID, Detail: "audit"})
	dir, chat := d.fixed.Audit.Dir, u.ChatID
	d.out.post(chat, func(ctx context.Context) {
		lines, err := audit.Summarize(audit.Files(dir), audit.Filter{}, n)
		html := chatfmt.Line("could not read the audit log")
		if err != nil {
			d.o.Log.Error().Err(err).Msg("audit summary failed")
		} else {
			var b strings.Builder
			for _, l := range lines {
				b.WriteString(l.String())
				b.WriteByte('\n')
			}
			html = chatfmt.Pre([]byte(b.String()), fmt.Sprintf("last %d audit records", len(lines)))
		}
		if _, err := d.tg.SendText(ctx, chat, html); err != nil {
			d.o.Log.Warn().Err(err).Msg("reply failed")
		}
	})
}

// cutWord splits s into its first word and the rest.
func cutWord(s string) (word, rest string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// command handles an allowlisted command: the step-up code is taken off
// first, so that nothing below ever sees it; then session, shutdown,
// audit health, argument splitting, step-up, binding, the sandbox and
// confirmation, in that order, before anything runs.
func (d *Daemon) command(u telegram.Update, name, args string) {
	cfg := d.config()
	base := audit.Record{Type: audit.KindRequest, UserID: u.UserID, ChatID: u.ChatID, Command: name}
	deny := func(reason string, answer chatfmt.Reply) {
		r := base
		r.Outcome, r.Reason = audit.OutcomeDenied, reason
		_ = d.record(r)
		d.reply(u.ChatID, answer)
	}
	cmd := cfg.Lookup(name)
	if cmd == nil {
		deny("unknown command", chatfmt.Say("unknown command /%s; send /help", chatfmt.Name(name)))
		return
	}
	var code string
	if cmd.Reauth {
		code, args = cutWord(args)
	}
	if answer, ok := d.gate(u, base); !ok {
		if code != "" {
			// A code typed in the chat has been seen: spend it, so that
			// nobody who saw it can use it.
			res := d.auth.StepUp(u.ChatID, code)
			if res.Err != nil {
				d.o.Log.Error().Err(res.Err).Msg("step-up code spent without a session: auth state")
			}
			_ = d.record(audit.Record{Type: audit.KindLogin, Outcome: res.Event, UserID: u.UserID, ChatID: u.ChatID, Command: name,
				Reason: "step-up code sent without a session: spent, nothing run"})
		}
		d.reply(u.ChatID, answer)
		return
	}
	if d.draining.Load() {
		deny("shutting down", chatfmt.Say("relay is shutting down; command not run"))
		return
	}
	// Heal, not Healthy: it retries a failed log (recording the failure)
	// instead of waiting for some other record to clear it.
	if err := d.audit.Heal(); err != nil {
		d.reply(u.ChatID, chatfmt.Say("audit log unavailable; command not run"))
		return
	}
	words, err := policy.SplitArgs(args)
	if err != nil {
		deny(err.Error(), chatfmt.Refusal(err, refused))
		return
	}
	if cmd.Reauth {
		if code == "" {
			deny("missing step-up code", chatfmt.Say("/%s needs a fresh TOTP code first: /%[1]s CODE …", chatfmt.Name(name)))
			return
		}
		res := d.auth.StepUp(u.ChatID, code)
		if res.Err != nil {
			d.o.Log.Error().Err(res.Err).Msg("step-up refused: auth state")
		}
		if !res.OK {
			deny("step-up failed: "+string(res.Event), chatfmt.Say("step-up failed: %s", chatfmt.Shown(res)))
			return
		}
	}
	d.proceed(u, cmd, words, cmd.Reauth, 0, deny)
}

// proceedResult is how proceed went.
type proceedResult int

const (
	proceedRefused proceedResult = iota // denied, and answered
	proceedPicked                       // a keyboard asks for the next parameter
	proceedRan                          // bound: running, or waiting for its Run button
)

// proceed is a command's path once its words are known and its step-up
// done, typed and picked alike: a keyboard for the next parameter when
// the words stop short of one that offers choices; else binding, the
// sandbox and confirmation, then the run. msgID is the picker's message a
// press came from, which the next keyboard replaces; 0 when typed.
func (d *Daemon) proceed(u telegram.Update, cmd *policy.Command, words []string, steppedUp bool, msgID int, deny func(reason string, answer chatfmt.Reply)) proceedResult {
	p, choices, complete, err := cmd.Next(words)
	switch {
	case err != nil:
		// A refused word first, then the count: Bind's own errors.
		deny(err.Error(), chatfmt.Refusal(err, refused))
		return proceedRefused
	case !complete:
		if d.askPick(u, msgID, cmd, words, p, choices, steppedUp) {
			return proceedPicked
		}
		return proceedRefused
	}
	inv, err := cmd.Bind(words)
	if err != nil {
		deny(err.Error(), chatfmt.Refusal(err, refused))
		return proceedRefused
	}
	spec, done, err := launch.Spec(d.launchConfig(), inv, d.o.Launch)
	if err != nil {
		d.o.Log.Error().Err(err).Str("command", cmd.Name).Msg("command refused")
		deny(err.Error(), chatfmt.SandboxUnavailable)
		return proceedRefused
	}
	if cmd.Confirm {
		d.askConfirm(u, inv, spec, done)
		return proceedRan
	}
	d.start(u.ChatID, u.UserID, inv, spec, done)
	return proceedRan
}

func paramsOf(inv *policy.Invocation) map[string]string {
	m := make(map[string]string, len(inv.Values))
	for _, v := range inv.Values {
		m[v.Name] = v.Value
	}
	return m
}

// unauthLimiter rate-limits audit records for unauthorized updates, so a
// flood from strangers cannot fill the disk, while the count of what was
// not recorded individually still reaches the log: in the next record, or
// at shutdown (flush).
type unauthLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	window  time.Time
	n       int
	dropped int
}

const unauthPerMinute = 10

func newUnauthLimiter(now func() time.Time) *unauthLimiter { return &unauthLimiter{now: now} }

// allow reports whether to record this update, and how many were dropped
// since the last recorded one.
func (l *unauthLimiter) allow() (dropped int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
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

// flush returns the count not yet recorded, and forgets it.
func (l *unauthLimiter) flush() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.dropped
	l.dropped = 0
	return n
}
