package playground

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/rs/zerolog"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/daemon"
	"github.com/relaychat/relay/internal/fakebotapi"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/policy"
)

// DefaultOwner is the owner's user ID when the policy names none (the
// built-in policy).
const DefaultOwner = 4242

// DefaultCheckpointInterval is how often the playground posts the audit
// head to the chat: often enough to see one within minutes, where a real
// relay's default is an hour.
const DefaultCheckpointInterval = time.Minute

// BotUsername is the fake bot's name, as the page shows it.
const BotUsername = "relay_playground_bot"

// Options configures a playground.
type Options struct {
	// Config is the policy to run: its commands, limits and sandboxes.
	// Its state_dir, audit.dir, telegram and secrets settings are
	// replaced by the playground's throwaway ones.
	Config *policy.Config
	// ConfigPath is the file Config came from, "" for the built-in
	// policy; it is protected from commands as relay run protects it.
	ConfigPath string
	// Launch is what the host gives every command, as relay run gives it
	// (job cgroups, trampolines started ahead); Run sets its ConfigPath
	// and clears its CredentialsDir.
	Launch launch.Env
	// Reload loads the policy again on SIGHUP; nil disables reloading.
	Reload func() (*policy.Config, error)
	Log    zerolog.Logger
	// Version is relay's version, for /status and the audit log.
	Version string
	// Ready is called once the page is served, with where it is.
	Ready func(Info)
	// TempDir is where the throwaway directory is made; "" is the
	// system's temporary directory.
	TempDir string
	// CheckpointInterval is how often the audit head is posted; 0 is
	// DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// ShutdownGrace is how long jobs may finish at exit before they are
	// killed; 0 is the daemon's default.
	ShutdownGrace time.Duration
	// Now is the clock of the TOTP code the page shows; nil is time.Now.
	Now func() time.Time
}

// Info says where a running playground is.
type Info struct {
	// URL is the page, with its token: whoever has it drives the chat.
	URL string
	// Dir is the throwaway state directory, removed at exit.
	Dir string
	// Owner is the owner's user ID in the fake chat.
	Owner int64
}

// Result is what a playground left when it stopped.
type Result struct {
	// Records is how many audit records the run wrote, verified with the
	// throwaway K0 before the log was removed; Verified says whether the
	// chain and its MACs checked out.
	Records  uint64
	Verified bool
	// Dir is the throwaway directory, now removed.
	Dir string
}

// Run runs a playground until ctx is done: the daemon with o.Config, the
// embedded fake Bot API, and the page on 127.0.0.1. At exit it shuts the
// daemon down (its final checkpoint still reaches the page), verifies the
// audit log and removes the throwaway directory.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if o.Config == nil {
		return nil, errors.New("playground: no policy")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	dir, err := os.MkdirTemp(o.TempDir, "relay-playground-")
	if err != nil {
		return nil, fmt.Errorf("playground: throwaway state: %w", err)
	}
	res = &Result{Dir: dir}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = fmt.Errorf("playground: remove %s: %w", dir, rerr)
		}
	}()

	st, err := newState(dir)
	if err != nil {
		return nil, err
	}
	defer clear(st.k0)

	owner := fakebotapi.User{ID: o.Config.Auth.OwnerID, FirstName: "You"}
	if owner.ID <= 0 {
		owner.ID = DefaultOwner
	}
	fopts := []fakebotapi.Option{
		fakebotapi.WithBotUser(fakebotapi.User{ID: st.botID, FirstName: "relay", Username: BotUsername}),
		// Exactly Telegram's HTML rules: the page shows what a phone would.
		fakebotapi.WithLenientHTML(),
	}
	if n := o.Config.Telegram.MaxDocumentBytes; n > 0 {
		// As large as the server the policy was written for accepts.
		fopts = append(fopts, fakebotapi.WithMaxDocumentSize(n))
	}
	fake := fakebotapi.New(st.token, fopts...)
	if err := fake.Start(); err != nil {
		return nil, fmt.Errorf("playground: fake bot api: %w", err)
	}
	defer fake.Close()

	adapt := func(c *policy.Config) *policy.Config {
		a := *c
		a.StateDir = filepath.Join(dir, "state")
		a.Audit.Dir = st.auditDir
		a.Audit.CheckpointInterval = o.CheckpointInterval
		// The transport is the embedded fake's, whatever the file says:
		// no token file, no webhook, no other Bot API.
		a.Telegram = policy.Telegram{APIURL: fake.URL(), Mode: "polling", PollTimeout: 25 * time.Second,
			MaxDocumentBytes: c.Telegram.MaxDocumentBytes, ProtectContent: c.Telegram.ProtectContent}
		a.Secrets.NoKeyring = true
		a.Auth.OwnerID = owner.ID
		return &a
	}
	cfg := adapt(o.Config)
	var reload func() (*policy.Config, error)
	if o.Reload != nil {
		reload = func() (*policy.Config, error) {
			c, err := o.Reload()
			if err != nil {
				return nil, err
			}
			return adapt(c), nil
		}
	}
	configPath := o.ConfigPath
	if configPath != "" {
		if abs, err := filepath.Abs(configPath); err == nil {
			configPath = abs
		}
	}
	le := o.Launch
	le.ConfigPath, le.CredentialsDir = configPath, ""
	policyName := "the built-in read-only policy"
	if o.ConfigPath != "" {
		policyName = filepath.Base(o.ConfigPath)
	}
	pg, err := startPage(fake, owner, func() (string, int) { return st.code(o.Now()) },
		pageInfo{Bot: BotUsername, Policy: policyName, Commands: len(cfg.Commands)}, o.Now)
	if err != nil {
		return nil, err
	}
	d, err := daemon.New(daemon.Options{
		Config:        cfg,
		Launch:        le,
		Token:         st.token,
		TOTP:          st.totp,
		Log:           o.Log,
		Version:       o.Version,
		Reload:        reload,
		ShutdownGrace: o.ShutdownGrace,
		Secrets:       [][]byte{st.k0},
	})
	if err != nil {
		pg.close()
		return nil, fmt.Errorf("playground: %w", err)
	}
	if o.Ready != nil {
		o.Ready(Info{URL: pg.url, Dir: dir, Owner: owner.ID})
	}
	runErr := d.Run(ctx)
	// The daemon has stopped and sent its last checkpoint, which the page
	// still gets before it is told the chat is over.
	pg.close()

	sum, verr := audit.VerifyDir(st.auditDir, st.k0, nil)
	res.Records, res.Verified = sum.Records, verr == nil && sum.MACsVerified
	if runErr != nil {
		return res, fmt.Errorf("playground: %w", runErr)
	}
	if verr != nil {
		return res, fmt.Errorf("playground: the throwaway audit log does not verify: %w", verr)
	}
	return res, nil
}

// page is the chat page being served, and the pump that feeds it the
// fake's events.
type page struct {
	url      string
	srv      *server
	hs       *http.Server
	served   chan error
	tr       *translator
	stopPump context.CancelFunc
	pumped   chan uint64 // the pump's last event, once it stopped
	closed   sync.Once
}

// startPage serves the chat of owner with fake on a new port of
// 127.0.0.1, behind a new random token.
func startPage(fake *fakebotapi.Server, owner fakebotapi.User, code func() (string, int), info pageInfo, now func() time.Time) (*page, error) {
	token, err := randomText(32)
	if err != nil {
		return nil, err
	}
	// Loopback only, and nothing to configure: the page is for the
	// person at this machine.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("playground: listen: %w", err)
	}
	host := ln.Addr().String()
	p := &page{
		url: "http://" + host + "/" + token + "/",
		srv: &server{
			token: token, host: host, origin: "http://" + host,
			fake: fake, owner: owner, feed: newFeed(), code: code, info: info, now: now,
			keepalive: 15 * time.Second,
		},
		served: make(chan error, 1),
		tr:     &translator{fake: fake, owner: owner},
		pumped: make(chan uint64, 1),
	}
	// No WriteTimeout: the event stream is one long response.
	p.hs = &http.Server{Handler: p.srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { p.served <- p.hs.Serve(ln) }()
	ctx, stop := context.WithCancel(context.Background())
	p.stopPump = stop
	go func() { p.pumped <- pump(ctx, fake, p.tr, p.srv.feed, 0) }()
	return p, nil
}

// close hands the page the events that are left, tells it the chat is
// over, and stops serving. Calls after the first do nothing.
func (p *page) close() { p.closed.Do(p.closeOnce) }

func (p *page) closeOnce() {
	p.stopPump()
	move(p.srv.fake.Events(<-p.pumped), p.tr, p.srv.feed)
	p.srv.feed.add(func() (pageEvent, bool) { return pageEvent{Kind: kindStopped, At: p.srv.now().UnixMilli()}, true })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.hs.Shutdown(ctx); err != nil {
		p.hs.Close()
	}
	<-p.served
}

// pump moves the fake's events after seq into the feed until ctx is done,
// and returns the last seq it moved.
func pump(ctx context.Context, fake *fakebotapi.Server, tr *translator, f *feed, seq uint64) uint64 {
	for {
		evs, err := fake.WaitEvents(ctx, seq)
		if err != nil {
			return seq
		}
		seq = move(evs, tr, f)
	}
}

func move(evs []fakebotapi.Event, tr *translator, f *feed) (last uint64) {
	for _, e := range evs {
		f.add(func() (pageEvent, bool) { return tr.translate(e) })
		last = e.Seq
	}
	return last
}

// state is a run's throwaway secrets: generated here, kept in memory, and
// never written anywhere but the throwaway directory.
type state struct {
	botID    int64
	token    string
	totp     []byte // base32, as relay stores it
	k0       []byte
	auditDir string
}

func newState(dir string) (*state, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(9_000_000_000))
	if err != nil {
		return nil, fmt.Errorf("playground: %w", err)
	}
	secret, err := randomText(24)
	if err != nil {
		return nil, err
	}
	st := &state{botID: 1_000_000_000 + n.Int64()}
	// The shape relay's token check accepts, and says what it is.
	st.token = fmt.Sprintf("%d:PLAYGROUND_%s", st.botID, secret)
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("playground: %w", err)
	}
	st.totp = []byte(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
	st.auditDir = filepath.Join(dir, "audit")
	if st.k0, err = audit.Init(st.auditDir, nil); err != nil {
		return nil, fmt.Errorf("playground: %w", err)
	}
	return st, nil
}

// code is the TOTP code at now, and the seconds until the next one.
func (st *state) code(now time.Time) (string, int) {
	c, err := totp.GenerateCodeCustom(string(st.totp), now, totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", 0
	}
	return c, 30 - int(now.Unix()%30)
}

func randomText(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("playground: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
