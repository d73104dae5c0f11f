package daemon

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/internal/fleet"
	"github.com/relaychat/relay/internal/remote"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

// The daemon's side of fleet control; internal/fleet makes the calls.
// A /on is a job of the chat like a local command: it is in /ps, and
// /kill, /lock, its draft's stop button and shutdown cancel it, which
// ends its ssh clients and so the members' jobs. The hub applies a
// member's confirm and reauth (the owner is in this chat; the member
// skips them), learning them from the member's offered list before
// anything runs.

var noHosts = chatfmt.Say("this relay has no hosts (add hosts: to its config)")

// fleetRef is one Fleet and the work using it. A reload that changes the
// fleet swaps in a new one; the old is closed once its users are done.
type fleetRef struct {
	f *fleet.Fleet
	// users counts the fan-outs, lists and pending confirmations holding
	// this fleet.
	users sync.WaitGroup
	// ready is closed once every fleet before this one is closed: ssh's
	// kept connections are named by the host's options, not its pinned
	// key, so a call of this fleet made earlier could ride a connection
	// made under the old config.
	ready chan struct{}
}

// buildFleet is the fleet for cfg, or nil when cfg names no hosts.
func (d *Daemon) buildFleet(cfg *policy.Config) (*fleetRef, error) {
	if len(cfg.Hosts) == 0 {
		return nil, nil
	}
	f, err := fleet.New(cfg, fleet.Options{Now: d.now})
	if err != nil {
		return nil, err
	}
	return &fleetRef{f: f, ready: make(chan struct{})}, nil
}

// fleetChanged reports whether next reaches its members otherwise than
// running does: another ssh option, host, key, identity or group.
func fleetChanged(running, next *policy.Config) bool {
	if running.Fleet != next.Fleet {
		return true
	}
	hosts := func(c *policy.Config) []policy.Host {
		out := make([]policy.Host, len(c.Hosts))
		for i, h := range c.Hosts {
			out[i] = *h
			out[i].Line = 0
		}
		return out
	}
	groups := func(c *policy.Config) []policy.Group {
		out := make([]policy.Group, len(c.Groups))
		for i, g := range c.Groups {
			out[i] = *g
			out[i].Line = 0
		}
		return out
	}
	return !reflect.DeepEqual(hosts(running), hosts(next)) || !reflect.DeepEqual(groups(running), groups(next))
}

// swapFleet makes next the fleet of every later /on. The one it replaces
// is closed (its kept connections ended) once its users are done, and
// next is ready only then.
func (d *Daemon) swapFleet(next *fleetRef) {
	d.fmu.Lock()
	old := d.fleet
	d.fleet = next
	d.fmu.Unlock()
	done := func() {
		if next != nil {
			close(next.ready)
		}
	}
	if old == nil {
		done()
		return
	}
	go func() {
		<-old.ready
		old.users.Wait()
		old.f.Close()
		done()
	}()
}

// acquireFleet returns the current fleet, held until its release; nil
// when there are no hosts.
func (d *Daemon) acquireFleet() (*fleetRef, func()) {
	d.fmu.Lock()
	defer d.fmu.Unlock()
	r := d.fleet
	if r == nil {
		return nil, func() {}
	}
	r.users.Add(1)
	return r, sync.OnceFunc(r.users.Done)
}

// closeFleet ends the fleet's kept connections at shutdown, once every
// fan-out has ended.
func (d *Daemon) closeFleet() {
	d.fmu.Lock()
	r := d.fleet
	d.fmu.Unlock()
	if r == nil {
		return
	}
	<-r.ready
	r.users.Wait()
	r.f.Close()
}

// fanout is a running /on.
type fanout struct {
	id      string
	title   string
	chatID  int64
	userID  int64
	started time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	draft   atomic.Int64
	ended   atomic.Int32 // hosts whose call has ended
	hosts   int
	// tail is a one-host fan-out's output, for its progress; nil with
	// several hosts.
	tail *tail
	// procs ends the fan-out's part in shutdown's grace period, once.
	procs func()
}

// tail keeps the last bytes of a stream.
type tail struct {
	mu sync.Mutex
	b  []byte
}

const tailBytes = 2048

func (t *tail) write(_ string, p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*tailBytes {
		t.b = append([]byte(nil), t.b[len(t.b)-tailBytes:]...)
	}
}

func (t *tail) bytes() []byte {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.b[max(0, len(t.b)-tailBytes):]...)
}

// startFanout registers a fan-out of hosts for chatID, or returns nil when
// the relay is shutting down. The caller runs it and ends it (endFanout).
func (d *Daemon) startFanout(chatID, userID int64, title string, hosts int) *fanout {
	ctx, cancel := context.WithCancel(context.Background())
	fo := &fanout{title: title, chatID: chatID, userID: userID, started: d.now(), ctx: ctx, cancel: cancel, hosts: hosts}
	if hosts == 1 {
		fo.tail = &tail{}
	}
	fo.draft.Store(draftID())
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining.Load() {
		cancel()
		return nil
	}
	d.fanSeq++
	fo.id = "f" + strconv.FormatUint(d.fanSeq, 10)
	d.fanouts[fo.id] = fo
	d.jobs.Add(1)
	d.procs.Add(1)
	fo.procs = sync.OnceFunc(d.procs.Done)
	return fo
}

// endFanout forgets fo; its calls have ended and what it had to say is
// said.
func (d *Daemon) endFanout(fo *fanout) {
	fo.procs()
	fo.cancel()
	d.mu.Lock()
	delete(d.fanouts, fo.id)
	d.mu.Unlock()
	d.jobs.Done()
}

// runningFanouts lists the fan-outs, oldest first.
func (d *Daemon) runningFanouts() []*fanout {
	d.mu.Lock()
	out := make([]*fanout, 0, len(d.fanouts))
	for _, fo := range d.fanouts {
		out = append(out, fo)
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b *fanout) int {
		na, _ := strconv.Atoi(a.id[1:])
		nb, _ := strconv.Atoi(b.id[1:])
		return na - nb
	})
	return out
}

// cancelFanouts cancels every fan-out and returns how many there were.
func (d *Daemon) cancelFanouts() int {
	fos := d.runningFanouts()
	for _, fo := range fos {
		fo.cancel()
	}
	return len(fos)
}

// killFanout is /kill and the stop button for a fan-out.
func (d *Daemon) killFanout(u telegram.Update, fo *fanout, via string) {
	fo.cancel()
	_ = d.record(audit.Record{Type: audit.KindKill, Outcome: audit.OutcomeOK, UserID: u.UserID, ChatID: u.ChatID, Job: fo.id, Command: fleet.OnCommand, Detail: via})
	d.reply(u.ChatID, chatfmt.Say("killing %s (%s)", chatfmt.Name(fo.id), chatfmt.Name(fo.title)))
}

// watch shows fo's progress every progressEvery until done is closed.
func (d *Daemon) watch(fo *fanout, p *progress, done <-chan struct{}) {
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			head := fmt.Sprintf("%s · %d/%d hosts", fo.title, fo.ended.Load(), fo.hosts)
			p.show(chatfmt.Escape(head) + " " + chatfmt.Progress(d.now().Sub(fo.started), fo.tail.bytes()))
		}
	}
}

// hostsList answers /hosts: every host with its address, and the groups.
func (d *Daemon) hostsList(u telegram.Update) {
	_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeOK, UserID: u.UserID, ChatID: u.ChatID, Detail: fleet.HostsCommand})
	cfg := d.config()
	if len(cfg.Hosts) == 0 {
		d.reply(u.ChatID, noHosts)
		return
	}
	w := 0
	for _, h := range cfg.Hosts {
		w = max(w, len(h.Name))
	}
	var b strings.Builder
	for _, h := range cfg.Hosts {
		fmt.Fprintf(&b, "%-*s  %s port %d\n", w, h.Name, h.Destination(), h.Port)
	}
	for _, g := range cfg.Groups {
		fmt.Fprintf(&b, "group %s: %s\n", g.Name, strings.Join(g.Hosts, ", "))
	}
	fmt.Fprintf(&b, "group %s: every host\n", policy.AllHosts)
	foot := fmt.Sprintf("%d hosts, %d groups · %s", len(cfg.Hosts), len(cfg.Groups), fleet.OnUsage)
	d.send(u.ChatID, chatfmt.Pre([]byte(b.String()), foot))
}

// on answers /on TARGET COMMAND [ARGS…], and /on TARGET alone with what
// the target's members offer. What needs the network (the members'
// lists, the calls) runs off the update loop, as a fan-out.
func (d *Daemon) on(u telegram.Update, args string) {
	base := audit.Record{Type: audit.KindRequest, UserID: u.UserID, ChatID: u.ChatID, Command: fleet.OnCommand}
	deny := func(reason string, answer chatfmt.Reply) {
		r := base
		r.Outcome, r.Reason = audit.OutcomeDenied, reason
		_ = d.record(r)
		d.reply(u.ChatID, answer)
	}
	words, err := policy.SplitArgs(args)
	if err != nil {
		deny(err.Error(), chatfmt.Refusal(err, refused))
		return
	}
	if d.draining.Load() {
		deny("shutting down", chatfmt.Say("relay is shutting down; command not run"))
		return
	}
	if err := d.audit.Heal(); err != nil {
		d.reply(u.ChatID, chatfmt.Say("audit log unavailable; command not run"))
		return
	}
	ref, release := d.acquireFleet()
	if ref == nil {
		deny("no hosts", noHosts)
		return
	}
	var target, command string
	var cargs []string
	if len(words) == 1 {
		target = strings.ToLower(words[0])
	} else if target, command, cargs, err = fleet.ParseOn(args); err != nil {
		release()
		deny(err.Error(), chatfmt.Refusal(err, refused))
		return
	}
	hosts, err := ref.f.Resolve(target)
	if err != nil {
		release()
		deny(err.Error(), chatfmt.Refusal(err, refused))
		return
	}
	title := "/" + fleet.OnCommand + " " + target
	if command != "" {
		title += " " + command
	}
	fo := d.startFanout(u.ChatID, u.UserID, title, len(hosts))
	if fo == nil {
		release()
		deny("shutting down", chatfmt.Say("relay is shutting down; command not run"))
		return
	}
	// The request, without its arguments: they may start with a step-up
	// code, which no record may hold. The hub's remote_request records
	// and the member's own hold the arguments sent.
	r := base
	r.Outcome, r.Job, r.Detail = audit.OutcomeRequested, fo.id, fmt.Sprintf("%s on %s", title, strings.Join(hosts, ", "))
	if err := d.record(r); err != nil {
		release()
		d.endFanout(fo)
		d.reply(u.ChatID, chatfmt.Say("audit log unavailable; command not run"))
		return
	}
	if command == "" {
		go d.offered(fo, ref, release, target, hosts)
		return
	}
	go d.preflight(fo, ref, release, &onRun{target: target, command: command, args: cargs, order: hosts})
}

// onRun is a fan-out to make: the hosts to call, and those not called
// because their offered list could not be read.
type onRun struct {
	target, command string
	args            []string
	order           []string // every host, in the summary's order
	hosts           []string // the hosts to call
	skipped         []*fleet.Result
}

// lists reads the offered list of each host, at most fleet.parallel at
// once, in hosts' order. A list runs nothing on a member.
func (d *Daemon) lists(ctx context.Context, f *fleet.Fleet, hosts []string) []*fleet.Result {
	out := make([]*fleet.Result, len(hosts))
	sem := make(chan struct{}, max(1, f.Config().Fleet.Parallel))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = f.List(ctx, h)
		}()
	}
	wg.Wait()
	return out
}

// waitReady waits until ref may make calls, or fo is cancelled.
func waitReady(fo *fanout, ref *fleetRef) bool {
	select {
	case <-ref.ready:
		return true
	case <-fo.ctx.Done():
		return false
	}
}

// offered answers /on TARGET: each host's offered commands.
func (d *Daemon) offered(fo *fanout, ref *fleetRef, release func(), target string, hosts []string) {
	defer d.endFanout(fo)
	defer release()
	var results []*fleet.Result
	if waitReady(fo, ref) {
		results = d.lists(fo.ctx, ref.f, hosts)
	}
	fo.procs()
	var b strings.Builder
	for i, h := range hosts {
		r := (*fleet.Result)(nil)
		if results != nil {
			r = results[i]
		}
		switch {
		case r == nil || fo.ctx.Err() != nil:
			fmt.Fprintf(&b, "%s: cancelled\n", h)
		case r.Kind != fleet.KindOK || r.List == nil:
			fmt.Fprintf(&b, "%s: %s\n", h, r.Status())
		case len(r.List.Commands) == 0:
			fmt.Fprintf(&b, "%s (relay %s): offers no commands\n", h, r.Version)
		default:
			fmt.Fprintf(&b, "%s (relay %s):\n", h, r.Version)
			for _, c := range r.List.Commands {
				line := "  " + strings.TrimPrefix(c.Usage, "/")
				if c.Description != "" {
					line += " — " + c.Description
				}
				if c.Confirm || c.Reauth {
					line += " (" + strings.Join(flags(c), ", ") + ")"
				}
				b.WriteString(line + "\n")
			}
		}
	}
	html := chatfmt.Pre([]byte(b.String()), "/on "+target+" COMMAND [ARGS…]")
	chat := fo.chatID
	err := d.out.call(context.Background(), chat, func(ctx context.Context) error {
		_, err := d.tg.SendText(ctx, chat, html)
		return err
	})
	d.recordDelivery("offered commands of "+target, fo.id, err)
}

func flags(c remote.ListCommand) []string {
	var out []string
	if c.Confirm {
		out = append(out, "confirm")
	}
	if c.Reauth {
		out = append(out, "needs a code")
	}
	return out
}

// preflight reads the members' lists for the command's confirm and reauth
// flags, takes the step-up code off when one needs it, and then runs the
// fan-out or asks for its confirmation. A host whose list cannot be read
// is not called: the hub cannot tell what it must apply there.
func (d *Daemon) preflight(fo *fanout, ref *fleetRef, release func(), req *onRun) {
	handedOver := false
	defer func() {
		if !handedOver {
			release()
			d.endFanout(fo)
		}
	}()
	base := audit.Record{Type: audit.KindRequest, UserID: fo.userID, ChatID: fo.chatID, Command: fleet.OnCommand, Job: fo.id}
	deny := func(reason string, answer chatfmt.Reply) {
		r := base
		r.Outcome, r.Reason = audit.OutcomeDenied, reason
		_ = d.record(r)
		d.reply(fo.chatID, answer)
	}
	p := &progress{d: d, chatID: fo.chatID, draft: &fo.draft, name: fleet.OnCommand}
	if !waitReady(fo, ref) {
		deny("cancelled", chatfmt.Say("%s: cancelled", chatfmt.Name(fo.title)))
		return
	}
	stop := make(chan struct{})
	go d.watch(fo, p, stop)
	results := d.lists(fo.ctx, ref.f, req.order)
	close(stop)
	if fo.ctx.Err() != nil {
		deny("cancelled", chatfmt.Say("%s: cancelled", chatfmt.Name(fo.title)))
		return
	}
	confirm, reauth := false, false
	var timeout time.Duration
	for i, r := range results {
		h := req.order[i]
		if r.Kind != fleet.KindOK || r.List == nil {
			req.skipped = append(req.skipped, &fleet.Result{Host: h, Command: req.command, Args: req.args, Kind: r.Kind,
				Reason: "not called: its offered commands could not be read (" + r.Status() + ")"})
			continue
		}
		req.hosts = append(req.hosts, h)
		timeout = max(timeout, ref.f.Config().Host(h).Timeout)
		for _, c := range r.List.Commands {
			if c.Name == req.command {
				confirm = confirm || c.Confirm
				reauth = reauth || c.Reauth
			}
		}
	}
	if reauth {
		if len(req.args) == 0 || !auth.LooksLikeCode(req.args[0]) {
			deny("missing step-up code", chatfmt.Say("%s needs a fresh TOTP code first: %[1]s CODE …", chatfmt.Name(fo.title)))
			return
		}
		res := d.auth.StepUp(fo.chatID, req.args[0])
		req.args = req.args[1:]
		if res.Err != nil {
			d.o.Log.Error().Err(res.Err).Msg("step-up refused: auth state")
		}
		if !res.OK {
			deny("step-up failed: "+string(res.Event), chatfmt.Say("step-up failed: %s", chatfmt.Shown(res)))
			return
		}
	}
	title := fleet.Title(req.target, req.command, req.args)
	if d.draining.Load() {
		deny("shutting down", chatfmt.Say("relay is shutting down; command not run"))
		return
	}
	if confirm && len(req.hosts) > 0 {
		html, whole := chatfmt.ConfirmPrompt(chatfmt.Prompt{Command: fleet.OnCommand + " " + req.target, Argv: append([]string{req.command}, req.args...),
			Workdir: "the member's", Timeout: timeout, Sandbox: "the member's, on " + strings.Join(req.hosts, ", "), TTL: auth.ConfirmTTL})
		if !whole {
			deny("argv too long to show for confirmation", chatfmt.Say("the command line is too long to show for confirmation; command not run"))
			return
		}
		chat, user := fo.chatID, fo.userID
		pr := &pendingRun{d: d, command: fleet.OnCommand, chatID: chat, userID: user, done: release,
			run: func() { d.launchFanOut(chat, user, ref, release, req) }}
		r := base
		r.Outcome, r.Detail, r.Args = audit.OutcomeConfirmPending, title+" on "+strings.Join(req.hosts, ", "), req.args
		handedOver = true
		d.endFanout(fo)
		d.prompt(pr, html, r)
		return
	}
	handedOver = true
	d.runFanOut(fo, ref, release, req, p)
}

// launchFanOut starts a confirmed fan-out.
func (d *Daemon) launchFanOut(chatID, userID int64, ref *fleetRef, release func(), req *onRun) {
	fo := d.startFanout(chatID, userID, fleet.Title(req.target, req.command, nil), len(req.order))
	if fo == nil {
		release()
		d.reply(chatID, chatfmt.Say("relay is shutting down; command not run"))
		return
	}
	p := &progress{d: d, chatID: chatID, draft: &fo.draft, name: fleet.OnCommand}
	go d.runFanOut(fo, ref, release, req, p)
}

// runFanOut makes the calls, each recorded in the audit log before it is
// made and after it ends, and sends the summary with each long output
// as a document.
func (d *Daemon) runFanOut(fo *fanout, ref *fleetRef, release func(), req *onRun, p *progress) {
	defer d.endFanout(fo)
	defer release()
	o := fleet.FanOutOptions{
		CallOptions: fleet.CallOptions{Audit: d.record, UserID: fo.userID, ChatID: fo.chatID},
		Done:        func(*fleet.Result) { fo.ended.Add(1) },
	}
	if fo.tail != nil {
		o.Output = fo.tail.write
	}
	fo.ended.Store(int32(len(req.skipped)))
	stop := make(chan struct{})
	go d.watch(fo, p, stop)
	s := ref.f.FanOut(fo.ctx, req.hosts, req.command, req.args, o)
	close(stop)
	fo.procs()
	defer s.Close()
	byHost := map[string]*fleet.Result{}
	for _, r := range append(s.Results, req.skipped...) {
		byHost[r.Host] = r
	}
	s.Results = s.Results[:0]
	for _, h := range req.order {
		s.Results = append(s.Results, byHost[h])
	}
	title := fleet.Title(req.target, req.command, req.args)
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := d.out.call(dctx, fo.chatID, func(ctx context.Context) error {
		return d.deliverFanOut(ctx, fo.chatID, int(p.msgID.Load()), title, s)
	})
	d.recordDelivery("result of "+title, fo.id, err)
	for _, r := range s.Results {
		if r.AuditErr != nil {
			d.reply(fo.chatID, chatfmt.Say("⚠️ audit log unavailable: the result above is not recorded; new commands are refused until the log is healthy"))
			break
		}
	}
}

// deliverFanOut sends the summary (editing the progress message into it
// where there is one) and each attached host's output as a document.
func (d *Daemon) deliverFanOut(ctx context.Context, chatID int64, progressID int, title string, s *fleet.Summary) error {
	text, attach := chatfmt.FanOut(title, s.Duration, s.Lines())
	sent := false
	if progressID != 0 {
		sent = d.tg.EditText(ctx, chatID, progressID, text) == nil
	}
	if !sent {
		if _, err := d.tg.SendText(ctx, chatID, text); err != nil {
			return err
		}
	}
	limit := d.fixed.Telegram.MaxDocumentBytes
	stamp := d.now().UTC().Format("20060102-150405")
	for _, i := range attach {
		r := s.Results[i]
		if r.Output == nil {
			continue
		}
		out := r.Output
		open := func() (io.ReadCloser, error) {
			var rd io.Reader = out.Open()
			if out.Size() > limit {
				notice := fmt.Sprintf("\n[relay: document truncated at %d bytes; the output received was %d bytes]\n", limit, out.Size())
				rd = io.MultiReader(io.LimitReader(rd, limit-int64(len(notice))), strings.NewReader(notice))
			}
			return io.NopCloser(rd), nil
		}
		caption := chatfmt.Escape(fmt.Sprintf("%s · %s · %s · %d bytes", title, r.Host, r.Status(), out.Size()))
		if err := d.tg.SendDocument(ctx, chatID, fmt.Sprintf("%s-%s-%s.txt", r.Host, r.Command, stamp), open, caption); err != nil {
			return err
		}
	}
	return nil
}

// onHelp is /on's description for /help: the targets this hub has.
func (d *Daemon) onHelp() (string, bool) {
	d.fmu.Lock()
	r := d.fleet
	d.fmu.Unlock()
	if r == nil {
		return "", false
	}
	_, desc, ok := strings.Cut(r.f.HelpLine(), " — ")
	return desc, ok
}
