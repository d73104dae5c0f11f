package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/fakebotapi"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/policy"
)

// setupToken has a bot token's shape; the fake Bot API accepts only it.
const setupToken = "987654321:AAE2setupTOKENmustNEVERleakXYZ0123456789"

// Answers a console types that are not text.
const (
	typeCode   = "{code}"   // the code the authenticator would show
	typeCancel = "{cancel}" // Ctrl-C: the context ends, the read never returns
)

// console plays the owner at a terminal: each read waits for the next
// expected prompt in what relay printed, then types the answer.
type console struct {
	t      *testing.T
	mu     sync.Mutex
	out    bytes.Buffer
	seen   int // output already matched by a step
	steps  [][2]string
	cancel context.CancelFunc
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *console) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.steps) == 0 {
		c.mu.Unlock()
		return 0, fmt.Errorf("console: no more answers")
	}
	step := c.steps[0]
	c.steps = c.steps[1:]
	shown := c.out.String()[c.seen:]
	c.seen = c.out.Len()
	c.mu.Unlock()
	if !strings.Contains(shown, step[0]) {
		c.t.Errorf("relay asked %q, want a prompt containing %q", lastLine(shown), step[0])
	}
	answer := step[1]
	switch answer {
	case typeCancel:
		c.cancel()
		select {} // a terminal read that Ctrl-C does not end
	case typeCode:
		u, err := url.Parse(uriRE.FindString(c.String()))
		if err != nil {
			return 0, err
		}
		if answer, err = totp.GenerateCode(u.Query().Get("secret"), totpNow); err != nil {
			return 0, err
		}
	}
	return copy(p, answer+"\n"), nil
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// setupHost is a fresh home directory and a fake Bot API.
type setupHost struct {
	home, cfgPath string
	vars          map[string]string
	api           *fakebotapi.Server
}

func newSetupHost(t *testing.T) *setupHost {
	t.Helper()
	noKeyring(t)
	api := fakebotapi.New(setupToken)
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	home := t.TempDir()
	return &setupHost{
		home:    home,
		cfgPath: filepath.Join(home, "relay.yaml"),
		vars:    map[string]string{"HOME": home, "XDG_STATE_HOME": filepath.Join(home, "state")},
		api:     api,
	}
}

func (h *setupHost) state(parts ...string) string {
	return filepath.Join(append([]string{h.home, "state", "relay"}, parts...)...)
}

// run runs first-run setup with steps as the owner's answers and returns
// what the terminal showed and the exit code relay would exit with.
func (h *setupHost) run(t *testing.T, apiURL string, steps ...[2]string) (shown string, code int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &console{t: t, steps: steps, cancel: cancel}
	env := &Env{Stdin: c, Stdout: c, Stderr: c, Getenv: func(k string) string { return h.vars[k] }}
	err := setup(ctx, env, setupOpts{configPath: h.cfgPath, apiURL: apiURL, now: func() time.Time { return totpNow }})
	code = report(env, commands["run"], err)
	if len(c.steps) > 0 {
		t.Errorf("setup ended with %d answers not asked for: %v", len(c.steps), c.steps)
	}
	out := c.String()
	if strings.Contains(out, setupToken) || strings.Contains(out, strings.Split(setupToken, ":")[1][:12]) {
		t.Error("the terminal shows the token")
	}
	return out, code
}

func wantLines(t *testing.T, shown string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(shown, l+"\n") {
			t.Errorf("the terminal lacks the line %q; it shows:\n%s", l, shown)
		}
	}
}

// TestSetupForgives: every mistake on the way re-asks the same question
// and keeps what was done: a bad API URL, a pasted non-token, a token the
// Bot API refuses, a user ID that is not a number, a QR code that does not
// scan on a light terminal.
func TestSetupForgives(t *testing.T) {
	h := newSetupHost(t)
	shown, code := h.run(t, "",
		[2]string{"Bot API URL, Enter for https://api.telegram.org: ", "ftp://example.org"},
		[2]string{"Bot API URL", h.api.URL()},
		[2]string{"bot token (input is hidden): ", "not a token"},
		[2]string{"bot token (input is hidden): ", "123456789:AAE2wrongTOKENbutWELLformedXYZ0123456789"},
		[2]string{"bot token (input is hidden): ", setupToken},
		[2]string{"user ID: ", "@me"},
		[2]string{"user ID: ", "424242"},
		[2]string{`code shown by the app (or "l" to redraw the qr code for a light background): `, "l"},
		[2]string{`code shown by the app (or "d" to redraw the qr code for a dark background): `, "000000"},
		[2]string{"code shown by the app", typeCode},
	)
	if code != ExitOK {
		t.Fatalf("got exit %d, want 0:\n%s", code, shown)
	}
	tokenFile, totpFile, keyFile := h.state("secrets", secrets.BotToken), h.state("secrets", secrets.TOTPSecret), h.state("secrets", secrets.AuditKey)
	wantLines(t, shown,
		`relay: error: telegram.api_url: want an https URL, got scheme "ftp"; try again`,
		"relay: error: that is not a bot token (want the form 123456789:AAH... that @BotFather sends: digits, a colon, then 30-64 letters, digits, '_' or '-'); try again",
		"relay: error: telegram refused this token (check it with @BotFather); nothing was stored; try again",
		"   connected as @relay_test_bot",
		keyringNoteLine[:len(keyringNoteLine)-1],
		"   stored the token in "+tokenFile+" (mode 0600)",
		"relay: error: that is not a positive number; try again",
		"relay: error: code does not match",
		"relay: hint: check that the phone's clock is right and type the code currently shown",
		"   stored the TOTP secret in "+totpFile+" (mode 0600)",
		"Setup done. Where everything is:",
		fmt.Sprintf("   %-30s %s", pieceToken, tokenFile+" (mode 0600)"),
		fmt.Sprintf("   %-30s %s", pieceTOTP, totpFile+" (mode 0600)"),
		fmt.Sprintf("   %-30s %s", pieceAudit, h.state("audit")+"; K0 in "+keyFile+" (mode 0600)"),
		fmt.Sprintf("   %-30s %s", pieceConfig, h.cfgPath),
		"Starting relay. Send /login CODE to @relay_test_bot.",
	)
	// Two QR codes: the dark one, then the light one asked for.
	if n := strings.Count(shown, "Scan this with your authenticator app"); n != 2 {
		t.Errorf("got %d QR codes, want the first and the light redraw", n)
	}
	// The refused token was never stored: getMe came first.
	if h.api.Unauthorized() != 1 {
		t.Errorf("the fake saw %d refused calls, want 1", h.api.Unauthorized())
	}
	cfg, err := policy.Load(h.cfgPath)
	if err != nil {
		t.Fatalf("the written config does not load: %v", err)
	}
	if cfg.Auth.OwnerID != 424242 || cfg.Telegram.APIURL != h.api.URL() || !cfg.Secrets.NoKeyring || cfg.StateDir != h.state() {
		t.Errorf("config: owner %d, api_url %q, keyring off %v, state_dir %q", cfg.Auth.OwnerID, cfg.Telegram.APIURL, cfg.Secrets.NoKeyring, cfg.StateDir)
	}
	for _, f := range []string{tokenFile, totpFile, keyFile, h.cfgPath} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, fi, err)
		}
	}
	if b, _ := os.ReadFile(tokenFile); strings.TrimSpace(string(b)) != setupToken {
		t.Error("the token file does not hold the token getMe accepted")
	}
}

// TestSetupInterruptedThenResumed: Ctrl-C at the TOTP prompt stops setup
// at once, says what is written and what is not, and leaves no config;
// the next run keeps the stored token (checking it again) and asks only
// for what is missing.
func TestSetupInterruptedThenResumed(t *testing.T) {
	h := newSetupHost(t)
	tokenFile := h.state("secrets", secrets.BotToken)
	shown, code := h.run(t, h.api.URL(),
		[2]string{"bot token (input is hidden): ", setupToken},
		[2]string{"user ID: ", "424242"},
		[2]string{"code shown by the app", typeCancel},
	)
	want := "relay: error: setup interrupted; written: the bot token (" + tokenFile + " (mode 0600)); not written: the TOTP secret, the audit log and its key K0, the config\n" +
		"relay: hint: run 'relay run --config " + h.cfgPath + "' on a terminal to continue from there\n"
	if code != ExitNotSetup || !strings.HasSuffix(shown, want) {
		t.Fatalf("got exit %d, ending:\n%s\nwant exit %d, ending:\n%s", code, shown, ExitNotSetup, want)
	}
	if _, err := os.Stat(h.cfgPath); !os.IsNotExist(err) {
		t.Fatalf("an interrupted setup wrote the config: %v", err)
	}
	if _, err := os.Stat(h.state("secrets", secrets.TOTPSecret)); !os.IsNotExist(err) {
		t.Fatalf("a TOTP secret was stored without a code: %v", err)
	}

	shown, code = h.run(t, h.api.URL(),
		[2]string{"user ID: ", "424242"},
		[2]string{"code shown by the app", typeCode},
	)
	if code != ExitOK {
		t.Fatalf("resume: exit %d:\n%s", code, shown)
	}
	wantLines(t, shown,
		"   Bot API: "+h.api.URL()+" (--api-url)",
		"   bot token: already stored in the file ("+tokenFile+")",
		"   connected as @relay_test_bot",
		fmt.Sprintf("   %-30s %s", pieceToken, "file: "+tokenFile),
	)
	if strings.Contains(shown, "bot token (input is hidden)") {
		t.Error("the resumed setup asked for the token again")
	}

	// A third run has nothing left to do but the owner's ID and the config;
	// the audit log is not started over.
	os.Remove(h.cfgPath)
	seq := audit.Files(h.state("audit"))
	shown, code = h.run(t, h.api.URL(), [2]string{"user ID: ", "424242"})
	if code != ExitOK {
		t.Fatalf("third run: exit %d:\n%s", code, shown)
	}
	wantLines(t, shown, "   already enrolled: the secret is in the file ("+h.state("secrets", secrets.TOTPSecret)+")",
		"   already started in "+h.state("audit")+" (K0 in the file ("+h.state("secrets", secrets.AuditKey)+"))")
	if got := audit.Files(h.state("audit")); len(got) != len(seq) {
		t.Errorf("audit files: got %v, want %v untouched", got, seq)
	}
}

// TestSetupInterruptedAtTheStart: nothing written, and it says so.
func TestSetupInterruptedAtTheStart(t *testing.T) {
	h := newSetupHost(t)
	shown, code := h.run(t, "", [2]string{"Bot API URL", typeCancel})
	want := "relay: error: setup interrupted; nothing was written by this run; not written: the bot token, the TOTP secret, the audit log and its key K0, the config\n"
	if code != ExitNotSetup || !strings.Contains(shown, want) {
		t.Errorf("got exit %d:\n%s\nwant exit %d and %q", code, shown, ExitNotSetup, want)
	}
}

// TestSetupUnreachableAPI: a Bot API that does not answer is not blamed
// on the token: setup asks for the URL again and keeps the token.
func TestSetupUnreachableAPI(t *testing.T) {
	h := newSetupHost(t)
	shown, code := h.run(t, "",
		[2]string{"Bot API URL", "http://127.0.0.1:1"},
		[2]string{"bot token (input is hidden): ", setupToken},
		[2]string{"Bot API URL, Enter for http://127.0.0.1:1: ", h.api.URL()},
		[2]string{"user ID: ", "424242"},
		[2]string{"code shown by the app", typeCode},
	)
	if code != ExitOK {
		t.Fatalf("got exit %d:\n%s", code, shown)
	}
	wantLines(t, shown, "   http://127.0.0.1:1 could not be reached with this token; check the URL, or press Enter to try again")
}

// TestSetupEndOfInput: input that ends mid-setup stops it like Ctrl-C.
func TestSetupEndOfInput(t *testing.T) {
	h := newSetupHost(t)
	shown, code := h.run(t, h.api.URL(), [2]string{"bot token (input is hidden): ", setupToken})
	if code != ExitNotSetup || !strings.Contains(shown, "relay: error: setup stopped: no more input; written: the bot token (") {
		t.Errorf("got exit %d:\n%s", code, shown)
	}
}

// TestSetupAPIURLFlag: --api-url is checked by the config loader's rule.
func TestSetupAPIURLFlag(t *testing.T) {
	h := newSetupHost(t)
	shown, code := h.run(t, "http://192.0.2.1:8081")
	want := "relay: error: --api-url: telegram.api_url: plain http to a non-loopback host (the bot token travels in the URL: use https, or http only to a local Bot API server on loopback)\n" +
		"relay: hint: see 'relay run -h'\n"
	if code != ExitUsage || !strings.HasSuffix(shown, want) {
		t.Errorf("got exit %d:\n%s\nwant exit 2 and\n%s", code, shown, want)
	}
}

// TestSetupNeverStoresARefusedToken: a token the Bot API refuses is not
// written anywhere, even when setup ends right after.
func TestSetupNeverStoresARefusedToken(t *testing.T) {
	h := newSetupHost(t)
	shown, code := h.run(t, h.api.URL(), [2]string{"bot token (input is hidden): ", "123456789:AAE2wrongTOKENbutWELLformedXYZ0123456789"})
	if code != ExitNotSetup || !strings.Contains(shown, "nothing was written by this run") {
		t.Errorf("got exit %d:\n%s", code, shown)
	}
	if _, err := os.Stat(h.state("secrets", secrets.BotToken)); !os.IsNotExist(err) {
		t.Errorf("the refused token was stored: %v", err)
	}
	if strings.Contains(shown, "AAE2wrongTOKEN") {
		t.Error("the terminal shows the refused token")
	}
}
