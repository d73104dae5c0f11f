// Package daemon is the relay itself: it routes every Telegram update
// through the owner gate, the session, the policy and the audit log to a
// sandboxed job, and the job's result back to the owner's chat.
//
// It must never start a command whose request was not durably audited, never
// answer anyone but the owner in their private chat, and never put message
// text or a secret into an operational log.
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
	// AuditKeys are secrets the audit writer must refuse to record.
	Secrets [][]byte
}

// Daemon is one running relay.
type Daemon struct {
	o       Options
	now     func() time.Time
	started time.Time
	cfg     atomic.Pointer[policy.Config]
	audit   *audit.Log
	auth    *auth.Authenticator
	tg      *telegram.Client
	runner  *exec.Runner
	owner   int64
	// draining is set once shutdown began: no new command starts.
	draining atomic.Bool
	// jobs counts job goroutines, so shutdown can wait for their records.
	jobs sync.WaitGroup
	// staleTold ensures the owner is told about a stale backlog once.
	staleTold atomic.Bool
	unauth    *unauthLimiter

	mu sync.Mutex
	// pending holds confirmations awaiting a Run/Cancel press, by token.
	pending map[string]*pendingRun
	// running maps job IDs to what started them, for /ps and /kill.
	running map[string]*jobInfo
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
	cfg := o.Config
	d := &Daemon{o: o, now: o.Now, started: o.Now(), owner: cfg.Auth.OwnerID,
		pending: map[string]*pendingRun{}, running: map[string]*jobInfo{}}
	d.cfg.Store(cfg)
	d.unauth = newUnauthLimiter(d.now)

	for _, dir := range []string{cfg.StateDir, launch.SpoolDir(cfg)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory: %w (check state_dir and its permissions)", err)
		}
	}
	al, err := audit.Open(cfg.Audit.Dir, audit.Options{RotateBytes: cfg.Audit.RotateBytes, Now: d.now})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	for _, s := range append([][]byte{[]byte(o.Token), o.TOTP}, o.Secrets...) {
		al.ForbidSecret(s)
	}
	d.audit = al

	ac := auth.ConfigFrom(cfg.Auth, cfg.StateDir)
	ac.Secret = o.TOTP
	ac.Now = d.now
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
		Token:       o.Token,
		APIURL:      cfg.Telegram.APIURL,
		PollTimeout: cfg.Telegram.PollTimeout,
		Logger:      o.Log,
	})
	if err != nil {
		a.Close()
		al.Close()
		return nil, fmt.Errorf("telegram client: %w", err)
	}
	d.tg = tg
	d.runner = exec.NewRunner(cfg.Limits.MaxConcurrent)
	return d, nil
}

func (d *Daemon) config() *policy.Config { return d.cfg.Load() }

// record appends r to the audit log. An error means the action r describes
// must not happen.
func (d *Daemon) record(r audit.Record) error {
	if _, err := d.audit.Append(r); err != nil {
		d.o.Log.Error().Err(err).Str("type", r.Type).Msg("audit write failed")
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	return nil
}

// Run serves until ctx is done, then shuts down gracefully: stop polling,
// refuse new commands, wait for jobs up to ShutdownGrace, kill the rest,
// write the final audit record and checkpoint.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.audit.Close()
	defer d.auth.Close()
	cfg := d.config()
	if err := d.record(audit.Record{Type: "start", Outcome: "ok", Detail: "relay " + d.o.Version + ", config " + cfgName(cfg)}); err != nil {
		return err
	}
	d.o.Log.Info().Str("version", d.o.Version).Int("commands", len(cfg.Commands)).Str("mode", cfg.Telegram.Mode).Msg("relay starting")

	pollCtx, stopPolling := context.WithCancel(context.Background())
	defer stopPolling()

	// The menu is cosmetic: a slow or failing Bot API must not delay
	// serving the owner, so it is set in the background.
	go func() {
		if err := d.tg.SetCommands(pollCtx, menu(cfg)); err != nil && pollCtx.Err() == nil {
			d.o.Log.Warn().Err(err).Msg("setMyCommands failed; the phone's menu may be stale")
		}
	}()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	errc := make(chan error, 1)
	go func() { errc <- d.serve(pollCtx, cfg) }()
	go func() {
		if err := control.Serve(pollCtx, cfg.StateDir, cfg.Telegram.MaxDocumentBytes, d.notify); err != nil {
			d.o.Log.Warn().Err(err).Msg("control socket unavailable; relay notify will not reach this daemon")
		}
	}()

	_ = sdnotify.Ready()
	stopWatchdog := d.watchdog()
	defer stopWatchdog()
	checkpoints := d.checkpointTicker(cfg)
	defer checkpoints.Stop()

	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hup:
			d.reload(ctx)
		case <-checkpoints.C:
			d.sendCheckpoint(ctx)
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
	d.drain()
	// The final record and checkpoint use a fresh context: ctx is already
	// cancelled, and the owner must still get the last head.
	fin, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	outcome := "ok"
	if serveErr != nil {
		outcome = "failed"
	}
	if err := d.record(audit.Record{Type: "stop", Outcome: outcome, Reason: errString(serveErr)}); err != nil {
		d.o.Log.Error().Err(err).Msg("final audit record failed")
	}
	d.sendCheckpoint(fin)
	if serveErr != nil {
		return serveErr
	}
	return nil
}

// serve receives updates by long polling or webhook until ctx is done.
func (d *Daemon) serve(ctx context.Context, cfg *policy.Config) error {
	if cfg.Telegram.Mode != "webhook" {
		// A webhook left behind by an earlier run would make every
		// getUpdates fail with 409.
		if err := d.tg.DeleteWebhook(ctx); err != nil && ctx.Err() == nil {
			d.o.Log.Warn().Err(err).Msg("deleteWebhook failed")
		}
		err := d.tg.Poll(ctx, d.handle)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return d.serveWebhook(ctx, cfg)
}

func (d *Daemon) serveWebhook(ctx context.Context, cfg *policy.Config) error {
	wh := cfg.Telegram.Webhook
	path := telegram.RandomPath()
	secret := telegram.RandomSecret()
	mux := http.NewServeMux()
	// Webhook requests arrive concurrently; the owner's messages must
	// still be handled one at a time, in order.
	var serial sync.Mutex
	handle := func(ctx context.Context, u telegram.Update) {
		serial.Lock()
		defer serial.Unlock()
		d.handle(ctx, u)
	}
	mux.Handle(path, d.tg.WebhookHandler(secret, wh.MaxBodyBytes, handle))
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

// drain waits for running jobs up to the grace period, then kills them, and
// waits for their completion records either way.
func (d *Daemon) drain() {
	done := make(chan struct{})
	go func() { d.jobs.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(d.o.ShutdownGrace):
	}
	d.o.Log.Warn().Msg("shutdown grace elapsed; killing running jobs")
	d.runner.CancelAll()
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

func (d *Daemon) checkpointTicker(cfg *policy.Config) *time.Ticker {
	iv := cfg.Audit.CheckpointInterval
	if iv <= 0 {
		t := time.NewTicker(time.Hour)
		t.Stop()
		return t
	}
	return time.NewTicker(iv)
}

// sendCheckpoint sends the audit head to the owner's chat, off the host, so
// that a later truncation of the log's tail is detectable: signed, when the
// log has a checkpoint key (audit.Log.CheckpointMessage renders it).
func (d *Daemon) sendCheckpoint(ctx context.Context) {
	_, err := d.tg.SendText(ctx, d.owner, d.audit.CheckpointMessage(), telegram.Silent())
	d.recordDelivery("checkpoint", "", err)
}

// reload loads the config again and swaps it in atomically; an invalid
// config keeps the old one, and the owner is told either way.
func (d *Daemon) reload(ctx context.Context) {
	if d.o.Reload == nil {
		return
	}
	cfg, err := d.o.Reload()
	if err == nil && cfg.Auth.OwnerID != d.owner {
		err = errors.New("owner_id changed; restart relay to change the owner")
	}
	if err != nil {
		d.o.Log.Error().Err(err).Msg("config reload failed; keeping the old config")
		_ = d.record(audit.Record{Type: "config", Outcome: "failed", Reason: err.Error()})
		d.notifyOwner(ctx, "⚠️ config reload failed, keeping the old one: "+firstLine(err.Error()))
		return
	}
	if rerr := d.record(audit.Record{Type: "config", Outcome: "ok", Detail: "reloaded " + cfgName(cfg)}); rerr != nil {
		d.notifyOwner(ctx, "⚠️ config not reloaded: audit log unavailable")
		return
	}
	d.cfg.Store(cfg)
	if err := d.tg.SetCommands(ctx, menu(cfg)); err != nil {
		d.o.Log.Warn().Err(err).Msg("setMyCommands failed after reload")
	}
	d.o.Log.Info().Int("commands", len(cfg.Commands)).Msg("config reloaded")
	d.notifyOwner(ctx, fmt.Sprintf("config reloaded: %d commands", len(cfg.Commands)))
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

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
