package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/fakebotapi"
)

const (
	// testToken has a bot token's shape; the tests grep for it everywhere
	// it must not appear.
	testToken  = "987654321:AAE2etestTOKENmustNEVERleakXYZ0123456789"
	ownerID    = 424242
	strangerID = 777001
	// totpSecret is a fixed base32 TOTP secret, so the tests can compute codes.
	totpSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

var (
	owner    = fakebotapi.User{ID: ownerID, FirstName: "Owner"}
	stranger = fakebotapi.User{ID: strangerID, FirstName: "Mallory"}
	ownerDM  = fakebotapi.Chat{ID: ownerID, Type: "private"}
)

// syncBuffer collects a child's stderr safely while it runs.
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

// relay is one running relay binary with its fake Bot API.
type relay struct {
	t        testing.TB
	api      *fakebotapi.Server
	dir      string
	cfgPath  string
	auditDir string
	k0       []byte
	cmd      *osexec.Cmd
	stderr   *syncBuffer
	exited   chan struct{}
	exitErr  error
	started  time.Time // when the process was started
	// seen is the highest bot message ID already matched by expect.
	seen int
	// said is every text the owner sent, which the relay's operational
	// log must never contain.
	said []string
}

type options struct {
	commands string       // the YAML under "commands:"
	extra    string       // extra top-level YAML
	before   func(*relay) // runs after the fake starts, before the relay
	args     []string     // extra relay run flags
	// keyringToken leaves the token out of the credentials directory, so
	// the relay must find it in the real Secret Service.
	keyringToken bool
	env          []string // extra environment for the relay process
	// webhook: the relay registers a webhook instead of polling.
	webhook bool
	// telegram is extra YAML under "telegram:", indented two spaces.
	telegram string
	// auth is extra YAML under "auth:", indented two spaces.
	auth string
	// noWait returns as soon as the process started, for a relay that is
	// expected to exit.
	noWait bool
	// uid, when not 0, runs the relay as this unprivileged uid (and gid),
	// as the systemd unit's User=relay does; the tests must run as root.
	uid int
	// fake configures the fake Bot API (fakebotapi.Without, say).
	fake []fakebotapi.Option
}

// credStore is an audit.KeyStore writing systemd-credential-style files.
type credStore string

func (c credStore) Get(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(c), name))
}
func (c credStore) Set(name string, v []byte) error {
	return os.WriteFile(filepath.Join(string(c), name), v, 0o600)
}

func startRelay(t testing.TB, o options) *relay {
	t.Helper()
	api := fakebotapi.New(testToken, o.fake...)
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	dir := t.TempDir()
	r := &relay{t: t, api: api, dir: dir, cfgPath: filepath.Join(dir, "relay.yaml"), auditDir: filepath.Join(dir, "audit"), stderr: &syncBuffer{}}
	creds := filepath.Join(dir, "creds")
	must(t, os.Mkdir(creds, 0o700))
	if !o.keyringToken {
		must(t, os.WriteFile(filepath.Join(creds, "bot-token"), []byte(testToken), 0o600))
	}
	must(t, os.WriteFile(filepath.Join(creds, "totp-secret"), []byte(totpSecret), 0o600))
	k0, err := audit.Init(r.auditDir, credStore(creds))
	must(t, err)
	r.k0 = k0
	r.writeConfig(o)
	if o.before != nil {
		o.before(r)
	}
	r.start(creds, o)
	return r
}

// testCommandUser is who commands run as when the tests run as root: ids
// no account on a test machine uses, never root or nobody.
const testCommandUser = "64123:64123"

// commandUser is the config line that names the command user, as root.
func commandUser() string {
	if os.Geteuid() != 0 {
		return ""
	}
	return "command_user: " + strconv.Quote(testCommandUser)
}

func (r *relay) writeConfig(o options) {
	cfg := fmt.Sprintf(`state_dir: %s
%s
telegram:
  api_url: %s
  poll_timeout: 2s
%s
auth:
  owner_id: %d
%s
audit:
  dir: %s
  checkpoint_interval: 0s
limits:
  max_concurrent: 4
  max_output: 1GiB
%s
commands:
%s
`, filepath.Join(r.dir, "state"), commandUser(), r.api.URL(), o.telegram, ownerID, o.auth, r.auditDir, o.extra, o.commands)
	must(r.t, os.WriteFile(r.cfgPath, []byte(cfg), 0o600))
}

func (r *relay) start(creds string, o options) {
	t := r.t
	cmd := osexec.Command(relayBin, append([]string{"run", "--config", r.cfgPath, "--log-format", "json"}, o.args...)...)
	bus := "unix:path=" + filepath.Join(r.dir, "no-bus")
	if o.keyringToken {
		bus = os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	}
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + r.dir,
		"CREDENTIALS_DIRECTORY=" + creds,
		"DBUS_SESSION_BUS_ADDRESS=" + bus,
	}
	cmd.Env = append(cmd.Env, o.env...)
	if o.uid != 0 {
		r.handTo(o.uid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.uid), Groups: []uint32{}}}
	}
	if cg := jobCgroups(t); cg != nil {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
	}
	cmd.Stdout = r.stderr
	cmd.Stderr = r.stderr
	r.started = time.Now()
	must(t, cmd.Start())
	r.cmd = cmd
	r.exited = make(chan struct{})
	go func() {
		r.exitErr = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			// Graceful first, so the relay cleans up after its jobs.
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-r.exited
			}
		}
		logText := r.stderr.String()
		if strings.Contains(logText, testToken) {
			t.Errorf("the bot token appears in the relay's log")
		}
		for _, text := range r.said {
			if strings.Contains(logText, text) {
				t.Errorf("the relay's log contains message text %q", text)
			}
		}
		if t.Failed() {
			t.Logf("relay log:\n%s", r.stderr.String())
		}
	})
	if o.noWait {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if o.webhook {
		if err := r.api.WaitCalls(ctx, "setWebhook", 1); err != nil {
			t.Fatalf("relay never set its webhook: %v\n%s", err, r.stderr.String())
		}
		return
	}
	if _, err := r.api.WaitPoll(ctx); err != nil {
		t.Fatalf("relay never polled: %v\n%s", err, r.stderr.String())
	}
}

// jobCgroups makes a cgroup for one relay, as systemd makes one for a unit
// with Delegate=yes, so that each relay of the tests has job cgroups of its
// own; nil where the tests cannot make one (not root, no cgroup2).
func jobCgroups(t testing.TB) *os.File {
	if os.Geteuid() != 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	mount := ""
	for _, l := range strings.Split(string(b), "\n") {
		if _, post, ok := strings.Cut(l, " - "); ok && strings.HasPrefix(post, "cgroup2 ") {
			mount = strings.Fields(l)[4]
			break
		}
	}
	if mount == "" {
		return nil
	}
	dir, err := os.MkdirTemp(mount, "relay-e2e-")
	if err != nil {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		os.Remove(dir)
		return nil
	}
	t.Cleanup(func() {
		f.Close()
		// After the relay's cleanup above: the relay moved itself into
		// the leaf, and its jobs' cgroups are gone with them.
		os.Remove(filepath.Join(dir, "relay"))
		os.Remove(dir)
	})
	return f
}

// handTo gives the relay's directory to uid, as an installer gives the
// state and audit directories to the relay's user.
func (r *relay) handTo(uid int) {
	for d := r.dir; d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			must(r.t, os.Chmod(d, fi.Mode().Perm()|0o005))
		}
		if d == os.TempDir() {
			break
		}
	}
	must(r.t, filepath.Walk(r.dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	}))
}

// webhookCall waits for the relay's setWebhook call and returns it.
func (r *relay) webhookCall() fakebotapi.WebhookCall {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if calls := r.api.WebhookCalls(); len(calls) > 0 {
			return calls[0]
		}
		if time.Now().After(deadline) {
			r.t.Fatal("no setWebhook call recorded")
		}
	}
}

// ownerUpdate is a Bot API update carrying text in the owner's private
// chat, as Telegram would post it to a webhook.
func ownerUpdate(id int, text string) []byte {
	b, _ := json.Marshal(map[string]any{"update_id": 1000 + id, "message": map[string]any{
		"message_id": id, "date": time.Now().Unix(), "text": text,
		"from": map[string]any{"id": ownerID, "is_bot": false, "first_name": "Owner"},
		"chat": map[string]any{"id": ownerID, "type": "private"},
	}})
	return b
}

// stop sends sig and waits for the relay to exit, returning its exit code.
func (r *relay) stop(sig syscall.Signal) int {
	r.t.Helper()
	_ = r.cmd.Process.Signal(sig)
	select {
	case <-r.exited:
	case <-time.After(60 * time.Second):
		r.t.Fatalf("relay did not exit after %v", sig)
	}
	if ee, ok := r.exitErr.(*osexec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

func (r *relay) say(text string) int {
	r.said = append(r.said, text)
	_, msgID := r.api.SendMessage(owner, ownerDM, text)
	return msgID
}

// expect waits for a new bot message to the owner containing want.
func (r *relay) expect(want string) fakebotapi.Message {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := r.seen
	m, err := r.api.WaitMessage(ctx, func(m fakebotapi.Message) bool {
		return m.ChatID == ownerID && m.ID > seen && strings.Contains(m.Text, want)
	})
	if err != nil {
		r.t.Fatalf("no message containing %q: %v\nsent so far:\n%s\nrelay log:\n%s", want, err, r.transcript(), r.stderr.String())
	}
	r.seen = m.ID
	return m
}

func (r *relay) transcript() string {
	var b strings.Builder
	for _, m := range r.api.Sent() {
		fmt.Fprintf(&b, "  #%d to %d: %q\n", m.ID, m.ChatID, m.Text)
	}
	return b.String()
}

func code(t testing.TB, at time.Time) string {
	t.Helper()
	c, err := totpCode(totpSecret, at)
	must(t, err)
	return c
}

func totpCode(secret string, at time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

func (r *relay) login() {
	r.t.Helper()
	r.say("/login " + code(r.t, time.Now()))
	r.expect("logged in")
}

// verifyAudit checks the whole chain with K0, as the owner would.
func (r *relay) verifyAudit() audit.Summary {
	r.t.Helper()
	sum, err := audit.Verify(audit.Files(r.auditDir), r.k0, nil)
	if err != nil {
		r.t.Fatalf("audit verify: %v", err)
	}
	return sum
}

// auditText is the whole audit log, for greps.
func (r *relay) auditText() string {
	var b strings.Builder
	for _, f := range audit.Files(r.auditDir) {
		data, err := os.ReadFile(f)
		must(r.t, err)
		b.Write(data)
	}
	return b.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// expectAll waits for new bot messages containing each of wants, in any
// order: a job's result and the answer to the command that ended it race.
func (r *relay) expectAll(wants ...string) {
	r.t.Helper()
	seen := r.seen
	for _, want := range wants {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		m, err := r.api.WaitMessage(ctx, func(m fakebotapi.Message) bool {
			return m.ChatID == ownerID && m.ID > seen && strings.Contains(m.Text, want)
		})
		cancel()
		if err != nil {
			r.t.Fatalf("no message containing %q: %v\nsent so far:\n%s", want, err, r.transcript())
		}
		r.seen = max(r.seen, m.ID)
	}
}
