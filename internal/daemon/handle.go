package daemon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

// builtins are the chat commands relay answers itself. A policy may not
// define a command with one of these names.
var builtins = []telegram.Command{
	{Name: "login", Description: "log in with a TOTP or recovery code"},
	{Name: "logout", Description: "end the session"},
	{Name: "lock", Description: "panic button: end the session, kill jobs"},
	{Name: "status", Description: "session, jobs, lockout and audit health"},
	{Name: "ps", Description: "list running jobs"},
	{Name: "kill", Description: "kill a running job"},
	{Name: "audit", Description: "show the last audit records"},
	{Name: "help", Description: "list the commands"},
}

func menu(cfg *policy.Config) []telegram.Command {
	cmds := make([]telegram.Command, 0, len(cfg.Commands)+len(builtins))
	for _, c := range cfg.Commands {
		cmds = append(cmds, telegram.Command{Name: c.Name, Description: c.Description})
	}
	return append(cmds, builtins...)
}

// handle processes one update. Updates arrive one at a time, in order;
// anything slow (a command) is handed to a job so that /ps, /kill, /logout
// and /lock still answer while it runs.
func (d *Daemon) handle(ctx context.Context, u telegram.Update) {
	defer func() {
		if r := recover(); r != nil {
			// The panic value may quote message text: log the update ID only.
			d.o.Log.Error().Int64("update", u.ID).Msg("recovered from a panic while handling an update")
		}
	}()
	date := u.Date
	if u.Kind == "callback_query" && date.IsZero() {
		// Button presses carry no date; their freshness is checked by the
		// confirmation's own 60 s lifetime.
		date = d.now()
	}
	verdict := d.auth.Admit(auth.Update{
		UserID: u.UserID, ChatID: u.ChatID, ChatType: u.ChatType, Date: date,
		Edited: u.Kind == "edited_message", IsCallback: u.Kind == "callback_query",
	})
	switch verdict {
	case auth.Ignore:
		d.unauthorized(u)
		return
	case auth.Stale:
		d.stale(ctx, u)
		return
	}
	if u.Kind == "callback_query" {
		d.callback(ctx, u)
		return
	}
	if u.Kind != "message" {
		_ = d.record(audit.Record{Type: "update", Outcome: "ignored", UserID: u.UserID, ChatID: u.ChatID, Detail: u.Kind})
		return
	}
	name, args, ok := telegram.ParseCommand(u.Text)
	if !ok {
		_ = d.record(audit.Record{Type: "update", Outcome: "ignored", UserID: u.UserID, ChatID: u.ChatID, Detail: "message without a command"})
		d.reply(ctx, u, "send /help for the commands")
		return
	}
	switch name {
	case "start", "help":
		d.help(ctx, u)
	case "login":
		d.login(ctx, u, args)
	case "logout":
		d.logout(ctx, u)
	case "lock":
		d.lock(ctx, u)
	case "status":
		d.status(ctx, u)
	case "ps":
		d.withSession(ctx, u, name, func() { d.ps(ctx, u) })
	case "kill":
		d.withSession(ctx, u, name, func() { d.kill(ctx, u, args) })
	case "audit":
		d.withSession(ctx, u, name, func() { d.auditTail(ctx, u, args) })
	default:
		d.command(ctx, u, name, args)
	}
}

// reply sends a one-line plain answer; its text must already be safe.
func (d *Daemon) reply(ctx context.Context, u telegram.Update, text string) {
	d.notifyOwnerChat(ctx, u.ChatID, chatfmt.Line(text))
}

func (d *Daemon) notifyOwner(ctx context.Context, text string) {
	d.notifyOwnerChat(ctx, d.owner, chatfmt.Line(text))
}

func (d *Daemon) notifyOwnerChat(ctx context.Context, chatID int64, html string) {
	if _, err := d.tg.SendText(ctx, chatID, html); err != nil {
		d.o.Log.Warn().Err(err).Msg("reply failed")
	}
}

func (d *Daemon) recordDelivery(what, job string, err error) {
	r := audit.Record{Type: "delivery", Outcome: "sent", Detail: what, Job: job, ChatID: d.owner}
	if err != nil {
		r.Outcome, r.Reason = "failed", err.Error()
	}
	_ = d.record(r)
}

func (d *Daemon) unauthorized(u telegram.Update) {
	if n, ok := d.unauth.allow(); ok {
		r := audit.Record{Type: "unauthorized", Outcome: "ignored", UserID: u.UserID, ChatID: u.ChatID, Detail: u.Kind}
		if n > 0 {
			r.Count = n
			r.Reason = fmt.Sprintf("%d earlier unauthorized updates not recorded individually (rate limit)", n)
		}
		_ = d.record(r)
	}
}

func (d *Daemon) stale(ctx context.Context, u telegram.Update) {
	_ = d.record(audit.Record{Type: "stale", Outcome: "ignored", UserID: u.UserID, ChatID: u.ChatID, Detail: u.Kind})
	if name, _, ok := telegram.ParseCommand(u.Text); ok && name == "login" {
		// An old code is useless, but still should not sit in the chat.
		_ = d.tg.DeleteMessage(ctx, u.ChatID, u.MessageID)
	}
	if d.staleTold.CompareAndSwap(false, true) {
		age := d.config().Auth.MaxMessageAge
		d.reply(ctx, u, fmt.Sprintf("ignored messages sent before relay started or older than %s; send them again if you still want them", age))
	}
}

func (d *Daemon) help(ctx context.Context, u telegram.Update) {
	_ = d.record(audit.Record{Type: "update", Outcome: "ok", UserID: u.UserID, ChatID: u.ChatID, Detail: "help"})
	var b strings.Builder
	b.WriteString("<b>Commands</b>\n")
	for _, c := range d.config().Commands {
		fmt.Fprintf(&b, "%s\n    %s\n", chatfmt.Escape(c.Usage()), chatfmt.Escape(c.Description))
	}
	b.WriteString("\n<b>Built in</b>\n")
	for _, c := range builtins {
		fmt.Fprintf(&b, "/%s — %s\n", c.Name, chatfmt.Escape(c.Description))
	}
	d.notifyOwnerChat(ctx, u.ChatID, b.String())
}

// withSession runs f only inside a live session, touching it.
func (d *Daemon) withSession(ctx context.Context, u telegram.Update, what string, f func()) {
	if _, ok := d.auth.Session(u.ChatID); !ok {
		answer := d.noSession(u)
		_ = d.record(audit.Record{Type: "request", Outcome: "denied", Reason: "no session", UserID: u.UserID, ChatID: u.ChatID, Command: what})
		d.reply(ctx, u, answer)
		return
	}
	d.auth.Touch(u.ChatID)
	f()
}

// noSession is the answer to a request that needs a session when there is
// none. A session that ran out by itself is recorded as ended, and the
// owner is told why, once: otherwise a timeout looks like a lost login.
func (d *Daemon) noSession(u telegram.Update) string {
	e, ok := d.auth.TakeExpiry(u.ChatID)
	if !ok {
		return "not logged in: send /login CODE"
	}
	what := "idle for " + e.Limit.String()
	if e.Reason == "lifetime" {
		what = "reached its lifetime of " + e.Limit.String()
	}
	_ = d.record(audit.Record{Type: "session", Outcome: "expired", Reason: e.Reason, UserID: u.UserID, ChatID: u.ChatID,
		Detail: "expired at " + e.At.UTC().Format(time.RFC3339)})
	return "session expired (" + what + "): send /login CODE"
}

func (d *Daemon) login(ctx context.Context, u telegram.Update, args string) {
	// The code must not stay in the chat, whatever the outcome.
	if err := d.tg.DeleteMessage(ctx, u.ChatID, u.MessageID); err != nil {
		d.o.Log.Warn().Err(err).Msg("could not delete the /login message")
	}
	res := d.auth.Login(u.ChatID, strings.TrimSpace(args))
	r := audit.Record{Type: "login", Outcome: res.Event, UserID: u.UserID, ChatID: u.ChatID}
	if !res.OK {
		r.Reason = res.Reason
	}
	if err := d.record(r); err != nil {
		if res.OK {
			// A session nobody can account for must not exist.
			d.auth.Logout(u.ChatID)
		}
		d.reply(ctx, u, "audit log unavailable: not logged in")
		return
	}
	if !res.OK {
		d.reply(ctx, u, "login failed: "+res.Reason)
		return
	}
	cfg := d.config()
	msg := fmt.Sprintf("logged in; the session ends after %s idle or %s at most", cfg.Auth.SessionIdle, cfg.Auth.SessionMax)
	if res.UsedRecovery {
		msg += "; a recovery code was used and is now spent"
	}
	d.reply(ctx, u, msg)
}

func (d *Daemon) logout(ctx context.Context, u telegram.Update) {
	d.auth.Logout(u.ChatID)
	d.clearPending()
	_ = d.record(audit.Record{Type: "session", Outcome: "ended", Reason: "logout", UserID: u.UserID, ChatID: u.ChatID})
	d.reply(ctx, u, "logged out")
}

func (d *Daemon) lock(ctx context.Context, u telegram.Update) {
	d.auth.Lock(u.ChatID)
	d.clearPending()
	n := len(d.runner.Jobs())
	d.runner.CancelAll()
	_ = d.record(audit.Record{Type: "session", Outcome: "locked", Reason: fmt.Sprintf("lock: %d jobs killed", n), UserID: u.UserID, ChatID: u.ChatID})
	d.reply(ctx, u, fmt.Sprintf("locked: session ended, %d jobs killed; log in with a fresh code to unlock", n))
}

func (d *Daemon) status(ctx context.Context, u telegram.Update) {
	_ = d.record(audit.Record{Type: "update", Outcome: "ok", UserID: u.UserID, ChatID: u.ChatID, Detail: "status"})
	var b strings.Builder
	st := d.auth.Status()
	if info, ok := d.auth.Session(u.ChatID); ok {
		fmt.Fprintf(&b, "session: %s idle left, %s at most\n", info.IdleLeft.Round(time.Second), info.AbsoluteLeft.Round(time.Second))
	} else {
		b.WriteString("session: none\n")
	}
	if !st.LockedUntil.IsZero() && st.LockedUntil.After(d.now()) {
		fmt.Fprintf(&b, "login lockout: %s left (%d failures)\n", st.LockedUntil.Sub(d.now()).Round(time.Second), st.Failures)
	}
	if st.Locked {
		b.WriteString("locked: a fresh login is required\n")
	}
	fmt.Fprintf(&b, "jobs: %d running\n", len(d.runner.Jobs()))
	if err := d.audit.Healthy(); err != nil {
		b.WriteString("audit: UNHEALTHY, commands refused\n")
	} else {
		h := d.audit.Head()
		fmt.Fprintf(&b, "audit: ok, seq %d\n", h.Seq)
	}
	fmt.Fprintf(&b, "version: %s\nuptime: %s\n", d.o.Version, d.now().Sub(d.started).Round(time.Second))
	d.notifyOwnerChat(ctx, u.ChatID, "<pre>"+chatfmt.Escape(b.String())+"</pre>")
}

func (d *Daemon) ps(ctx context.Context, u telegram.Update) {
	_ = d.record(audit.Record{Type: "update", Outcome: "ok", UserID: u.UserID, ChatID: u.ChatID, Detail: "ps"})
	jobs := d.runner.Jobs()
	if len(jobs) == 0 {
		d.reply(ctx, u, "no jobs running")
		return
	}
	var b strings.Builder
	for _, j := range jobs {
		fmt.Fprintf(&b, "%-5s %-20s %s\n", j.ID(), j.Key(), d.now().Sub(j.Started()).Round(time.Second))
	}
	d.notifyOwnerChat(ctx, u.ChatID, "<pre>"+chatfmt.Escape(b.String())+"</pre>")
}

func (d *Daemon) kill(ctx context.Context, u telegram.Update, args string) {
	id := strings.TrimSpace(args)
	j := d.runner.Get(id)
	if id == "" || j == nil {
		d.reply(ctx, u, "no such job; /ps lists the running jobs")
		return
	}
	_ = d.record(audit.Record{Type: "kill", Outcome: "ok", UserID: u.UserID, ChatID: u.ChatID, Job: j.ID(), Command: j.Key()})
	j.Cancel()
	d.reply(ctx, u, "killing job "+j.ID())
}

func (d *Daemon) auditTail(ctx context.Context, u telegram.Update, args string) {
	n := 10
	if s := strings.TrimSpace(args); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			d.reply(ctx, u, "usage: /audit [N], N from 1 to 50")
			return
		}
		n = min(v, 50)
	}
	_ = d.record(audit.Record{Type: "update", Outcome: "ok", UserID: u.UserID, ChatID: u.ChatID, Detail: "audit"})
	lines, err := audit.Summarize(audit.Files(d.config().Audit.Dir), audit.Filter{}, n)
	if err != nil {
		d.o.Log.Error().Err(err).Msg("audit summary failed")
		d.reply(ctx, u, "could not read the audit log")
		return
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	d.notifyOwnerChat(ctx, u.ChatID, chatfmt.Pre([]byte(b.String()), fmt.Sprintf("last %d audit records", len(lines))))
}

// command handles an allowlisted command: session, audit health, argument
// binding, step-up and confirmation, in that order, before anything runs.
func (d *Daemon) command(ctx context.Context, u telegram.Update, name, args string) {
	cfg := d.config()
	base := audit.Record{Type: "request", UserID: u.UserID, ChatID: u.ChatID, Command: name}
	deny := func(reason, answer string) {
		r := base
		r.Outcome, r.Reason = "denied", reason
		_ = d.record(r)
		d.reply(ctx, u, answer)
	}
	cmd := cfg.Lookup(name)
	if cmd == nil {
		deny("unknown command", "unknown command /"+name+"; send /help")
		return
	}
	if _, ok := d.auth.Session(u.ChatID); !ok {
		deny("no session", d.noSession(u))
		return
	}
	d.auth.Touch(u.ChatID)
	if d.draining.Load() {
		deny("shutting down", "relay is shutting down; command not run")
		return
	}
	// Heal, not Healthy: it retries a failed log (recording the failure)
	// instead of waiting for some other record to clear it.
	if err := d.audit.Heal(); err != nil {
		d.reply(ctx, u, "audit log unavailable; command not run")
		return
	}
	words, err := policy.SplitArgs(args)
	if err != nil {
		deny(err.Error(), err.Error())
		return
	}
	if cmd.Reauth {
		// The code must not stay in the chat, whatever the outcome.
		_ = d.tg.DeleteMessage(ctx, u.ChatID, u.MessageID)
		if len(words) == 0 {
			deny("missing step-up code", fmt.Sprintf("/%s needs a fresh TOTP code first: /%s CODE …", name, name))
			return
		}
		res := d.auth.StepUp(u.ChatID, words[0])
		words = words[1:]
		if !res.OK {
			deny("step-up failed: "+res.Event, "step-up failed: "+res.Reason)
			return
		}
	}
	inv, err := cmd.Bind(words)
	if err != nil {
		deny(err.Error(), err.Error())
		return
	}
	spec, done, err := launch.Spec(cfg, inv, d.o.Launch)
	if err != nil {
		d.o.Log.Error().Err(err).Str("command", name).Msg("command refused")
		deny(err.Error(), "sandbox unavailable on this host; command refused (see relay sandbox check)")
		return
	}
	if cmd.Confirm {
		d.askConfirm(ctx, u, inv, spec, done)
		return
	}
	d.start(ctx, u.ChatID, u.UserID, inv, spec, done)
}

func paramsOf(inv *policy.Invocation) map[string]string {
	m := make(map[string]string, len(inv.Values))
	for _, v := range inv.Values {
		m[v.Name] = v.Value
	}
	return m
}
