// Package daemon is the relay itself: it routes every Telegram update
// through the owner gate, the session, the policy and the audit log to a
// sandboxed job, and the job's result back to the owner's chat.
//
// The update loop (handle) decides and acts; it never sends. Everything for
// Telegram goes through the outbox, one ordered lane per chat, so that a
// stalled send (a 429, a large upload) delays only the messages behind it
// and never the panic button: /lock, /kill and /logout take effect while
// their update is being handled, whatever is queued for the chat.
//
// It must never start a command whose request was not durably audited,
// never run a message the owner did not type (a forward, an inline bot's,
// a chat's, a business or scheduled message, a command for another bot),
// never answer anyone but the owner in their private chat, never leave a
// message that carries a code in the chat or put the code anywhere, and
// never put message text or a secret into an operational log.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/control"
	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/picker"
	"github.com/relaychat/relay/internal/sdnotify"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

// Options configures a daemon.
type Options struct {
	Config  *policy.Config
	Launch  launch.Env
	Token   string
	TOTP    []byte
	Log     zerolog.Logger
	Version string
	// Reload loads the config again on SIGHUP; nil disables reloading.
	Reload func() (*policy.Config, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ShutdownGrace is how long running jobs may finish after SIGTERM
	// before their process groups are killed. Default 10s.
	ShutdownGrace time.Duration
	// DrainTimeout is how long shutdown waits for queued messages (the
	// last results, the final checkpoint) to reach Telegram. Default 5s.
	DrainTimeout time.Duration
	// AuditKeys are secrets the audit writer must refuse to record.
	Secrets [][]byte
	// AuditWait bounds how long New waits for the audit log while another
	// relay process holds it: relay serve-ssh or relay exec --host, which
	// take the log's lock for one batch of records when no daemon runs.
	// Default 5s.
	AuditWait time.Duration
	// Sleep pauses between two attempts to open the audit log, on the
	// daemon's clock; nil sleeps for real.
	Sleep func(time.Duration)
}

// Daemon is one running relay.
type Daemon struct {
	o       Options
	now     func() time.Time
	started time.Time
	cfg     atomic.Pointer[policy.Config]
	// fixed is the config the daemon started with. The settings a reload
	// cannot change (restartOnly) are read from it, so the paths the
	// sandbox protects are always the paths the daemon uses.
	fixed  *policy.Config
	audit  *audit.Log
	auth   *auth.Authenticator
	tg     *telegram.Client
	runner *exec.Runner
	owner  int64
	out    *outbox
	floor  *floor
	// botName is the bot's username from getMe; "" until known, and then
	// every /cmd@name is taken as addressed to another bot.
	botName atomic.Pointer[string]
	// draining is set once shutdown began: no new command starts.
	draining atomic.Bool
	// jobs counts job goroutines, so shutdown can wait for their records
	// and results; procs counts the jobs whose processes still run.
	jobs   sync.WaitGroup
	procs  sync.WaitGroup
	unauth *unauthLimiter
	// serial makes the handling of updates one at a time, in order (a
	// webhook delivers them concurrently), and a reload's swap atomic
	// with respect to it.
	serial sync.Mutex
	// reloads asks Run for a reload, as SIGHUP does.
	reloads chan struct{}
	menus   chan *policy.Config
	// checkpoints is Run's checkpoint ticker; only Run's goroutine
	// touches it.
	checkpoints *time.Ticker

	mu sync.Mutex
	// running maps job IDs to what started them, for /ps, /kill and the
	// stop button.
	running map[string]*jobInfo
	// fanouts are the running /on fan-outs by ID ("f1"), numbered by
	// fanSeq; guarded by mu.
	fanouts map[string]*fanout
	fanSeq  uint64

	// picks are the picker keyboards shown, bound to their session.
	picks *picker.Table[pickState]

	fmu sync.Mutex
	// fleet reaches the members of the config's hosts: nil without any;
	// guarded by fmu.
	fleet *fleetRef
}

// ErrAuditUnavailable means the audit log cannot be written, so the relay
// refuses to start or to run commands.
var ErrAuditUnavailable = errors.New("audit log unavailable")

// New opens the audit log and the authenticator. Nothing is sent to
// Telegram until Run.
func New(o Options) (*Daemon, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ShutdownGrace == 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.AuditWait == 0 {
		o.AuditWait = 5 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = time.Sleep
	}
	cfg := o.Config
	d := &Daemon{o: o, now: o.Now, started: o.Now(), owner: cfg.Auth.OwnerID, fixed: cfg,
		running: map[string]*jobInfo{}, fanouts: map[string]*fanout{}, reloads: make(chan struct{}, 1), menus: make(chan *policy.Config, 1)}
	d.cfg.Store(cfg)
	d.unauth = newUnauthLimiter(d.now)
	d.picks = picker.New[pickState](d.now, picker.DefaultTTL, picker.DefaultMax)
	d.out = newOutbox(o.Log)

	for _, dir := range []string{cfg.StateDir, launch.SpoolDir(cfg)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory: %w (check state_dir and its permissions)", err)
		}
	}
	fl, err := loadFloor(cfg.StateDir, d.now)
	if err != nil {
		return nil, err
	}
	d.floor = fl
	al, err := d.openAudit(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	for _, s := range append([][]byte{[]byte(o.Token), o.TOTP}, o.Secrets...) {
		al.ForbidSecret(s)
	}
	d.audit = al

	ac := d.authConfig(cfg)
	ac.Secret = o.TOTP
	// Telegram dates are whole seconds: a message sent in the same second
	// the relay started is not from before the start.
	ac.StartedAt = d.started.Truncate(time.Second)
	a, err := auth.New(ac)
	if err != nil {
		al.Close()
		return nil, fmt.Errorf("load auth state: %w", err)
	}
	d.auth = a

	tg, err := telegram.New(telegram.Options{
		Token:          o.Token,
		APIURL:         cfg.Telegram.APIURL,
		PollTimeout:    cfg.Telegram.PollTimeout,
		Logger:         o.Log,
		ProtectContent: cfg.Telegram.ProtectContent,
	})
	if err != nil {
		a.Close()
		al.Close()
		return nil, fmt.Errorf("telegram client: %w", err)
	}
	d.tg = tg
	d.runner = exec.NewRunner(cfg.Limits.MaxConcurrent)
	ref, err := d.buildFleet(cfg)
	if err != nil {
		a.Close()
		al.Close()
		return nil, err
	}
	d.swapFleet(ref)
	return d, nil
}

// openAudit opens the audit log, waiting up to AuditWait while another
// relay process holds it. Without a daemon, relay serve-ssh (on a member)
// and relay exec --host (on a hub) hold the lock for one batch of records,
// a few fsyncs long; a daemon started in that moment must wait for it
// rather than fail to start. Any other error is final at once.
func (d *Daemon) openAudit(cfg *policy.Config) (*audit.Log, error) {
	deadline := d.now().Add(d.o.AuditWait)
	pause := time.Millisecond
	for {
		al, err := audit.Open(cfg.Audit.Dir, audit.Options{RotateBytes: cfg.Audit.RotateBytes, Now: d.now})
		if err == nil || !errors.Is(err, audit.ErrInUse) || !d.now().Before(deadline) {
			return al, err
		}
		d.o.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// authConfig is what auth enforces for cfg, on the daemon's clock.
func (d *Daemon) authConfig(cfg *policy.Config) auth.Config {
	ac := auth.ConfigFrom(cfg.Auth, d.fixed.StateDir)
	ac.Now = d.now
	return ac
}

func (d *Daemon) config() *policy.Config { return d.cfg.Load() }

// launchConfig is the config a command is launched with: the live one,
// with every path the sandbox protects taken from the config the daemon
// started with, which are the paths it uses. (A reload cannot change
// them; this makes sure a mistake there could not either.)
func (d *Daemon) launchConfig() *policy.Config {
	c := *d.config()
	c.StateDir = d.fixed.StateDir
	c.Audit.Dir = d.fixed.Audit.Dir
	c.Telegram.TokenFile = d.fixed.Telegram.TokenFile
	c.Notify = d.fixed.Notify
	return &c
}

// appendRemote is the control socket's audit op: a record of a remote
// call made by another relay process of this host (relay serve-ssh on a
// member, relay exec --host on a hub), appended to the daemon's chain so
// that the log keeps one writer. The control package admits only those
// record types, from the relay's own uid or root outside any job. The
// error is the client's to show: it never quotes the record.
func (d *Daemon) appendRemote(_ context.Context, r audit.Record) (audit.Head, error) {
	h, err := d.audit.Append(r)
	if err != nil {
		d.o.Log.Error().Err(err).Str("type", string(r.Type)).Msg("audit write failed for another relay process's record")
		return audit.Head{}, errors.New("audit log unavailable")
	}
	return h, nil
}

// record appends r to the audit log. An error means the action r describes
// must not happen.
func (d *Daemon) record(r audit.Record) error {
	if _, err := d.audit.Append(r); err != nil {
		d.o.Log.Error().Err(err).Str("type", string(r.Type)).Msg("audit write failed")
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	return nil
}

// Run serves until ctx is done, then shuts down gracefully: stop polling,
// refuse new commands, void pending confirmations, wait for jobs up to
// ShutdownGrace, kill the rest, write the final audit records and
// checkpoint, and send what is queued for up to DrainTimeout.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.audit.Close()
	defer d.auth.Close()
	cfg := d.config()
	// The start record and what must precede the first poll (getMe,
	// deleteWebhook) are independent, so they overlap; no update is
	// handled before the record is durable.
	started := make(chan error, 1)
	go func() {
		started <- d.record(audit.Record{Type: audit.KindStart, Outcome: audit.OutcomeOK, Detail: "relay " + d.o.Version + ", config " + cfgName(cfg)})
	}()
	pollCtx, stopPolling := context.WithCancel(context.Background())
	defer stopPolling()
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- d.serve(pollCtx, cfg, ready) }()
	if err := <-started; err != nil {
		stopPolling()
		<-errc
		d.out.close(0)
		return err
	}
	close(ready)
	d.o.Log.Info().Str("version", d.o.Version).Int("commands", len(cfg.Commands)).Str("mode", cfg.Telegram.Mode).Msg("relay starting")
	d.warnMenu(cfg)

	// The menu is cosmetic: a slow or failing Bot API must not delay
	// serving the owner, so it is set in the background, newest wins.
	menuDone := make(chan struct{})
	go func() { defer close(menuDone); d.menuWorker(pollCtx) }()
	d.setMenu(cfg)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	go func() {
		hs := control.Handlers{Notify: d.notify, Audit: d.appendRemote, Checkpoint: d.signCheckpoint}
		if err := control.ServeHandlers(pollCtx, d.fixed.StateDir, d.fixed.Telegram.MaxDocumentBytes, hs); err != nil {
			d.o.Log.Warn().Err(err).Msg("control socket unavailable; relay notify, relay serve-ssh and relay exec --host will not reach this daemon")
		}
	}()

	if n := d.fixed.Notify; n.Group != "" {
		// One local group's socket (notify.group). A directory that is
		// not as ServeGroup requires is the owner's to fix; the bot runs
		// on without it. It is served from the start only: notify.* need
		// a restart (restartOnly).
		go func() {
			g := control.Group{Name: n.Group, GID: n.GID, Dir: n.Dir}
			if err := control.ServeGroup(pollCtx, g, d.fixed.Telegram.MaxDocumentBytes, d.notify); err != nil {
				d.o.Log.Error().Err(err).Msg("notify group socket not served; relay notify --socket from notify.group will not reach this daemon")
			}
		}()
	}

	_ = sdnotify.Ready()
	stopWatchdog := d.watchdog()
	defer stopWatchdog()
	d.checkpoints = time.NewTicker(time.Hour)
	d.resetCheckpoints(cfg)
	defer d.checkpoints.Stop()
	// Expired confirmations free their sandboxes without waiting for the
	// next prompt.
	sweep := time.NewTicker(auth.ConfirmTTL)
	defer sweep.Stop()

	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hup:
			d.reload()
		case <-d.reloads:
			d.reload()
		case <-d.checkpoints.C:
			d.sendCheckpoint()
		case <-sweep.C:
			d.auth.SweepConfirms()
		case serveErr = <-errc:
			break loop
		}
	}
	_ = sdnotify.Stopping()
	if serveErr != nil {
		d.o.Log.Error().Err(serveErr).Msg("receiving updates failed")
	}
	d.o.Log.Info().Msg("relay stopping")
	d.draining.Store(true)
	stopPolling()
	if serveErr == nil {
		<-errc
	}
	<-menuDone
	// No update is handled from here on.
	if n := d.auth.VoidConfirms(); n > 0 {
		_ = d.record(audit.Record{Type: audit.KindConfirm, Outcome: audit.OutcomeCancelled, Reason: fmt.Sprintf("shutdown: %d pending confirmations voided", n)})
	}
	d.drain()
	// A fan-out's preflight may have asked for a confirmation while the
	// relay was draining: void it too, so that nothing holds the fleet.
	d.auth.VoidConfirms()
	d.closeFleet()
	if n := d.unauth.flush(); n > 0 {
		_ = d.record(audit.Record{Type: audit.KindUnauthorized, Outcome: audit.OutcomeIgnored, Count: n,
			Reason: fmt.Sprintf("%d unauthorized updates since the last record, not recorded individually (rate limit)", n)})
	}
	if err := d.floor.save(); err != nil {
		d.o.Log.Error().Err(err).Msg("update_id floor not saved; updates handled since the last save may be handled again after a restart if Telegram redelivers them")
	}
	outcome := audit.OutcomeOK
	if serveErr != nil {
		outcome = audit.OutcomeFailed
	}
	if err := d.record(audit.Record{Type: audit.KindStop, Outcome: outcome, Reason: errString(serveErr)}); err != nil {
		d.o.Log.Error().Err(err).Msg("final audit record failed")
	}
	// The owner must still get the last head.
	d.sendCheckpoint()
	d.out.close(d.o.DrainTimeout)
	return serveErr
}

// serve receives updates by long polling or webhook until ctx is done,
// handling none before ready is closed.
func (d *Daemon) serve(ctx context.Context, cfg *policy.Config, ready <-chan struct{}) error {
	wait := func() bool {
		select {
		case <-ready:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if cfg.Telegram.Mode != "webhook" {
		// Learning the bot's name and removing a webhook left behind by
		// an earlier run (which would make every getUpdates fail with
		// 409) are both needed before the first poll, and independent.
		named := make(chan struct{})
		go func() { defer close(named); d.learnName(ctx) }()
		if err := d.tg.DeleteWebhook(ctx); err != nil && ctx.Err() == nil {
			d.o.Log.Warn().Err(err).Msg("deleteWebhook failed")
		}
		<-named
		if !wait() {
			return nil
		}
		d.beginHost()
		err := d.tg.Poll(ctx, d.handle)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	d.learnName(ctx)
	if !wait() {
		return nil
	}
	d.beginHost()
	return d.serveWebhook(ctx, cfg)
}

// beginHost starts the host's set-up for commands (job cgroups,
// trampolines started ahead) now that the first poll is on its way: done
// earlier, it competes with the relay's start for the CPU.
func (d *Daemon) beginHost() {
	if h := d.o.Launch.Host; h != nil {
		h.Begin()
	}
}

// learnName asks getMe for the bot's username, so that "/cmd@name" can be
// told apart from a command for another bot. If it fails, it keeps trying
// in the background; until then every addressed command is refused.
func (d *Daemon) learnName(ctx context.Context) {
	name, err := d.tg.GetMe(ctx)
	if err == nil {
		d.botName.Store(&name)
		return
	}
	if ctx.Err() != nil {
		return
	}
	d.o.Log.Warn().Err(err).Msg("getMe failed; commands addressed as /cmd@bot are refused until it succeeds")
	go func() {
		for delay := 5 * time.Second; ; delay = min(2*delay, 5*time.Minute) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			if name, err := d.tg.GetMe(ctx); err == nil {
				d.botName.Store(&name)
				return
			}
		}
	}()
}

func (d *Daemon) serveWebhook(ctx context.Context, cfg *policy.Config) error {
	wh := cfg.Telegram.Webhook
	path := telegram.RandomPath()
	secret := telegram.RandomSecret()
	mux := http.NewServeMux()
	// Webhook requests arrive concurrently; handle serialises them.
	mux.Handle(path, d.tg.WebhookHandler(secret, wh.MaxBodyBytes, d.handle))
	// The key pair is read before Telegram is pointed here: a bad one
	// found only when serving would leave a webhook nobody answers.
	var tlsConfig *tls.Config
	if wh.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(wh.TLSCert, wh.TLSKey)
		if err != nil {
			return fmt.Errorf("webhook tls: %w (hint: tls_cert must be a PEM certificate chain and tls_key its PEM private key)", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	srv := &http.Server{Handler: mux, TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	ln, err := net.Listen("tcp", wh.Listen)
	if err != nil {
		return fmt.Errorf("webhook listen %s: %w", wh.Listen, err)
	}
	if err := d.tg.SetWebhook(ctx, wh.URL+path, secret); err != nil {
		ln.Close()
		return fmt.Errorf("setWebhook: %w", err)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if tlsConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// drain waits for running jobs up to the grace period, then kills them,
// and waits for their completion records either way. A job's result may be
// stuck behind a stalled send: DrainTimeout after the last process ended,
// the sends are aborted so that shutdown ends.
func (d *Daemon) drain() {
	procs := make(chan struct{})
	go func() { d.procs.Wait(); close(procs) }()
	select {
	case <-procs:
	case <-time.After(d.o.ShutdownGrace):
		d.o.Log.Warn().Msg("shutdown grace elapsed; killing running jobs")
		d.runner.CancelAll()
		d.cancelFanouts()
		<-procs
	}
	done := make(chan struct{})
	go func() { d.jobs.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(d.o.DrainTimeout):
	}
	d.o.Log.Warn().Msg("job results still queued; giving up on sending them")
	d.out.abort()
	<-done
}

func (d *Daemon) watchdog() (stop func()) {
	iv, ok := sdnotify.WatchdogInterval()
	if !ok {
		return func() {}
	}
	t := time.NewTicker(iv / 2)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				_ = sdnotify.Watchdog()
			case <-quit:
				return
			}
		}
	}()
	return func() { t.Stop(); close(quit) }
}

// resetCheckpoints sets the checkpoint ticker to cfg's interval; 0 means
// only at shutdown.
func (d *Daemon) resetCheckpoints(cfg *policy.Config) {
	if iv := cfg.Audit.CheckpointInterval; iv > 0 {
		d.checkpoints.Reset(iv)
	} else {
		d.checkpoints.Stop()
	}
}

// sendCheckpoint sends the audit head to the owner's chat, off the host, so
// that a later truncation of the log's tail is detectable: signed, when the
// log has a checkpoint key.
func (d *Daemon) sendCheckpoint() {
	html := d.audit.CheckpointMessage()
	d.out.post(d.owner, func(ctx context.Context) {
		_, err := d.tg.SendText(ctx, d.owner, html, telegram.Silent())
		d.recordDelivery("checkpoint", "", err)
	})
}

// setMenu asks the menu worker to show cfg's menu; a newer request
// replaces one not yet sent.
func (d *Daemon) setMenu(cfg *policy.Config) {
	for {
		select {
		case d.menus <- cfg:
			return
		default:
		}
		select {
		case <-d.menus:
		default:
		}
	}
}

// menuWorker sets the phone's menu, in the owner's private chat only, one
// request at a time so that an older menu can never land after a newer.
func (d *Daemon) menuWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case cfg := <-d.menus:
			entries, _ := cfg.Menu()
			cmds := make([]telegram.Command, len(entries))
			for i, e := range entries {
				cmds[i] = telegram.Command{Name: e.Name, Description: e.Description}
			}
			if _, err := d.tg.SetOwnerCommands(ctx, d.owner, cmds); err != nil && ctx.Err() == nil {
				d.o.Log.Warn().Err(err).Msg("setMyCommands failed; the phone's menu may be stale")
			}
		}
	}
}

// warnMenu logs which commands the phone's menu has no room for.
func (d *Daemon) warnMenu(cfg *policy.Config) {
	if w, ok := policy.MenuWarning(cfg); ok {
		d.o.Log.Warn().Str("config", cfgName(cfg)).Int("line", w.Line).Msg(w.Msg)
	}
}

func cfgName(cfg *policy.Config) string {
	if cfg.Source == "" {
		return "(embedded default)"
	}
	return cfg.Source
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
