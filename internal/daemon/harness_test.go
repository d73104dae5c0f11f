package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/rs/zerolog"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/fakebotapi"
	"github.com/relaychat/relay/policy"
)

// The daemon's own tests drive a real Daemon in-process against the fake
// Bot API as a library, with the daemon's clock injected: they can hold
// the daemon still between two updates and look inside it. What needs the
// real binary (signals, exit codes, the sandbox as deployed) is e2e's.

const (
	// testToken has a bot token's shape; the tests look for it everywhere
	// it must not appear.
	testToken  = "123456789:AAEdaemonTESTtokenMUSTneverLEAK_0123"
	ownerID    = int64(4242)
	strangerID = int64(777001)
	totpSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	botName    = "relay_test_bot"
)

var (
	owner    = fakebotapi.User{ID: ownerID, FirstName: "Owner"}
	stranger = fakebotapi.User{ID: strangerID, FirstName: "Mallory"}
	ownerDM  = fakebotapi.Chat{ID: ownerID, Type: "private"}
)

// t0 is 10 s into a TOTP step, so a few seconds either way stay in it.
var t0 = time.Now().Truncate(30 * time.Second).Add(10 * time.Second)

// clock is the daemon's injected time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is the daemon's log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// keyStore keeps the audit key K0 for audit.Init.
type keyStore map[string][]byte

func (k keyStore) Get(name string) ([]byte, error) { return k[name], nil }
func (k keyStore) Set(name string, v []byte) error { k[name] = v; return nil }

type hopts struct {
	commands string // YAML under "commands:", indented two spaces
	auth     string // YAML under "auth:", indented two spaces
	limits   string // YAML under "limits:", indented two spaces
	// top replaces the top-level state_dir and audit settings.
	top string
	// extra is more top-level YAML (hosts:, notify:).
	extra string
	// maxConcurrent is limits.max_concurrent; default 16.
	maxConcurrent int
	fake          []fakebotapi.Option
	// before runs after the audit log is made and before the daemon starts.
	before func(h *harness)
	grace  time.Duration // ShutdownGrace; default 200ms
	drain  time.Duration // DrainTimeout; default 300ms
	// options adjusts the daemon's Options before New.
	options func(h *harness, o *Options)
}

// harness is one Daemon and its fake Bot API.
type harness struct {
	t    testing.TB
	o    hopts
	api  *fakebotapi.Server
	clk  *clock
	dir  string
	cfg  string // the config file
	log  *syncBuffer
	d    *Daemon
	stop context.CancelFunc
	done chan error
	// said is every text the owner sent: the log must not contain any.
	said []string
	// seen is the highest bot message ID already matched by expect.
	seen int
}

const echoCmd = `  echo:
    description: print the argument
    argv: [/bin/echo, "{text}"]
    params:
      - {name: text, type: string, pattern: "^[a-z0-9 ]{1,40}$", max_len: 40}
    timeout: 10s
    sandbox: none
`

const napCmd = `  nap:
    description: sleep a minute
    argv: [/bin/sleep, "60"]
    timeout: 120s
    concurrency: 16
    sandbox: none
`

const dangerCmd = `  danger:
    description: needs a confirmation
    argv: [/bin/echo, confirmed]
    timeout: 10s
    confirm: true
    sandbox: none
`

const rebootCmd = `  reboot:
    description: needs a fresh code
    argv: [/bin/echo, rebooted]
    timeout: 10s
    reauth: true
    sandbox: none
`

func newHarness(t testing.TB, o hopts) *harness {
	t.Helper()
	if o.commands == "" {
		o.commands = echoCmd
	}
	if o.grace == 0 {
		o.grace = 200 * time.Millisecond
	}
	if o.drain == 0 {
		o.drain = 300 * time.Millisecond
	}
	api := fakebotapi.New(testToken, o.fake...)
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	dir := t.TempDir()
	h := &harness{t: t, o: o, api: api, clk: &clock{t: t0}, dir: dir, cfg: filepath.Join(dir, "relay.yaml"), log: &syncBuffer{}}
	if _, err := audit.Init(filepath.Join(dir, "audit"), keyStore{}); err != nil {
		t.Fatal(err)
	}
	h.writeConfig(o)
	if o.before != nil {
		o.before(h)
	}
	t.Cleanup(func() {
		h.shutdown()
		text := h.log.String()
		if strings.Contains(text, testToken) || strings.Contains(text, strings.SplitN(testToken, ":", 2)[1]) {
			t.Error("the bot token appears in the daemon's log")
		}
		for _, s := range h.said {
			if len(s) > 6 && strings.Contains(text, s) {
				t.Errorf("the daemon's log contains message text %q", s)
			}
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", text)
		}
	})
	h.start()
	return h
}

// writeConfig writes the config file for o.
func (h *harness) writeConfig(o hopts) {
	user := ""
	if os.Geteuid() == 0 {
		user = `command_user: "64123:64123"`
	}
	top := fmt.Sprintf("state_dir: %s\naudit:\n  dir: %s\n  checkpoint_interval: 0s\n", filepath.Join(h.dir, "state"), filepath.Join(h.dir, "audit"))
	if o.top != "" {
		top = o.top
	}
	if o.maxConcurrent == 0 {
		o.maxConcurrent = 16
	}
	cfg := fmt.Sprintf(`%s
%s
telegram:
  api_url: %s
  poll_timeout: 2s
auth:
  owner_id: %d
%s
limits:
  max_concurrent: %d
  max_output: 1GiB
%s
%s
commands:
%s
`, top, user, h.api.URL(), ownerID, o.auth, o.maxConcurrent, o.limits, o.extra, o.commands)
	if err := os.WriteFile(h.cfg, []byte(cfg), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// newDaemon is New on the harness's config and clock.
func (h *harness) newDaemon() (*Daemon, error) {
	h.t.Helper()
	cfg, err := policy.Load(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	o := Options{
		Config: cfg, Token: testToken, TOTP: []byte(totpSecret), Version: "test",
		Log:    zerolog.New(h.log).With().Timestamp().Logger(),
		Reload: func() (*policy.Config, error) { return policy.Load(h.cfg) },
		Now:    h.clk.Now, ShutdownGrace: h.o.grace, DrainTimeout: h.o.drain,
	}
	if h.o.options != nil {
		h.o.options(h, &o)
	}
	return New(o)
}

func (h *harness) start() {
	h.t.Helper()
	d, err := h.newDaemon()
	if err != nil {
		h.t.Fatal(err)
	}
	h.d = d
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := h.api.WaitPolling(wctx); err != nil {
		h.t.Fatalf("daemon never polled: %v\n%s", err, h.log.String())
	}
}

// shutdown stops the daemon as SIGTERM does and returns Run's error.
func (h *harness) shutdown() error {
	if h.stop == nil {
		return nil
	}
	h.stop()
	h.stop = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatal("daemon did not stop within 30s")
		return nil
	}
}

// restart stops the daemon and starts a new one on the same state.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.shutdown(); err != nil {
		h.t.Fatal(err)
	}
	h.start()
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// say plays the owner typing text now, on the daemon's clock, and waits
// until the daemon has handled it.
func (h *harness) say(text string, opts ...fakebotapi.MessageOpt) (updateID int64, msgID int) {
	h.t.Helper()
	h.said = append(h.said, text)
	id, msg := h.api.SendMessage(owner, ownerDM, text, append([]fakebotapi.MessageOpt{fakebotapi.At(h.clk.Now())}, opts...)...)
	h.handled(id)
	return id, msg
}

// handled waits until the daemon has handled update id: its offset is
// confirmed only then.
func (h *harness) handled(id int64) {
	h.t.Helper()
	if _, err := h.api.WaitConfirmed(ctxT(h.t), id); err != nil {
		h.t.Fatalf("update %d never handled: %v\n%s", id, err, h.log.String())
	}
}

// push queues a raw update and waits until it was handled.
func (h *harness) push(raw string) int64 {
	h.t.Helper()
	id, err := h.api.PushRawUpdate([]byte(raw))
	if err != nil {
		h.t.Fatal(err)
	}
	h.handled(id)
	return id
}

// ownerMessage is a raw message update in the owner's chat, with extra
// fields (a leading comma each) added to the message.
func (h *harness) ownerMessage(text, extra string) string {
	t, _ := json.Marshal(text)
	h.said = append(h.said, text)
	return fmt.Sprintf(`{"message":{"message_id":%d,"date":%d,"text":%s,"from":{"id":%d,"is_bot":false,"first_name":"Owner"},"chat":{"id":%d,"type":"private"}%s}}`,
		900000+len(h.said), h.clk.Now().Unix(), t, ownerID, ownerID, extra)
}

// expect waits for a new bot message to the owner containing want.
func (h *harness) expect(want string) fakebotapi.Message {
	h.t.Helper()
	seen := h.seen
	m, err := h.api.WaitMessage(ctxT(h.t), func(m fakebotapi.Message) bool {
		return m.ChatID == ownerID && m.ID > seen && strings.Contains(m.Text, want)
	})
	if err != nil {
		h.t.Fatalf("no message containing %q: %v\nsent so far:\n%s", want, err, h.transcript())
	}
	h.seen = max(h.seen, m.ID)
	return m
}

func (h *harness) transcript() string {
	var b strings.Builder
	for _, m := range h.api.Sent() {
		fmt.Fprintf(&b, "  #%d to %d: %q\n", m.ID, m.ChatID, m.Text)
	}
	return b.String()
}

// sent reports whether the bot sent a message containing s to anyone.
func (h *harness) sent(s string) bool {
	for _, m := range h.api.Sent() {
		if strings.Contains(m.Text, s) {
			return true
		}
	}
	return false
}

func code(t testing.TB, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(totpSecret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// login starts a session with a code from a step later than any used.
func (h *harness) login() {
	h.t.Helper()
	h.clk.Add(30 * time.Second)
	h.say("/login " + code(h.t, h.clk.Now()))
	if _, ok := h.d.auth.Session(ownerID); !ok {
		h.t.Fatalf("login failed\n%s", h.transcript())
	}
	h.expect("logged in")
}

// records are the audit records written so far, decoded.
func (h *harness) records() []map[string]any {
	h.t.Helper()
	var out []map[string]any
	for _, f := range audit.Files(filepath.Join(h.dir, "audit")) {
		data, err := os.ReadFile(f)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				h.t.Fatalf("audit line %q: %v", line, err)
			}
			out = append(out, m)
		}
	}
	return out
}

// find returns the records whose fields include every key=value in kv.
func (h *harness) find(kv ...string) []map[string]any {
	h.t.Helper()
	var out []map[string]any
	for _, r := range h.records() {
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			v, has := r[kv[i]]
			if !has || fmt.Sprint(v) != kv[i+1] {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

func (h *harness) auditText() string {
	var b strings.Builder
	for _, f := range audit.Files(filepath.Join(h.dir, "audit")) {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}

// runs counts the commands that ran (exec_end records).
func (h *harness) runs() int { return len(h.find("type", "exec_end")) }

// waitFor polls cond until it holds; a condition the daemon reaches by
// itself, not a timing assertion.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("never: %s\n%s", what, h.transcript())
		}
		time.Sleep(time.Millisecond)
	}
}

// startNap runs /nap and waits until the job runs.
func (h *harness) startNap() {
	h.t.Helper()
	n := len(h.d.runner.Jobs())
	h.say("/nap")
	h.waitFor("the nap job running", func() bool { return len(h.d.runner.Jobs()) > n })
}

// reload writes o as the config, reloads as SIGHUP does, and returns the
// owner's message that says how it went.
func (h *harness) reload(o hopts) fakebotapi.Message {
	h.t.Helper()
	h.writeConfig(o)
	h.d.requestReload()
	return h.expect("config reload")
}

// requestReload asks Run to reload, as SIGHUP does.
func (d *Daemon) requestReload() {
	select {
	case d.reloads <- struct{}{}:
	default:
	}
}
