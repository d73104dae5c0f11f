package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaychat/relay/internal/secrets"
)

// randomToken returns a fresh, well-formed bot token, so that a leak in
// any output is unmistakable.
func randomToken(t *testing.T) string {
	t.Helper()
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	id, _ := rand.Int(rand.Reader, big.NewInt(9e9))
	var b strings.Builder
	for range 35 {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alpha))))
		b.WriteByte(alpha[n.Int64()])
	}
	return fmt.Sprintf("%d:%s", id.Int64()+1e9, b.String())
}

// tokenEnv is a CLI environment with a private state dir and nothing
// inherited: no credential, no RELAY_BOT_TOKEN.
type tokenEnv struct {
	*Env
	vars   map[string]string
	stdout *bytes.Buffer
	stderr *bytes.Buffer
}

func newTokenEnv(t *testing.T, stdin string) *tokenEnv {
	t.Helper()
	e := &tokenEnv{
		vars:   map[string]string{"XDG_STATE_HOME": t.TempDir()},
		stdout: &bytes.Buffer{},
		stderr: &bytes.Buffer{},
	}
	e.Env = &Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: e.stdout,
		Stderr: e.stderr,
		Getenv: func(k string) string { return e.vars[k] },
	}
	return e
}

func (e *tokenEnv) run(t *testing.T, stdin string, args ...string) int {
	t.Helper()
	e.stdout.Reset()
	e.stderr.Reset()
	e.Stdin = strings.NewReader(stdin)
	return Main(context.Background(), append([]string{"token"}, args...), e.Env)
}

// assertNoLeak fails if the token, or any 8-byte window of it, or its
// numeric bot ID prefix, appears in what the command printed.
func assertNoLeak(t *testing.T, token string, outs ...string) {
	t.Helper()
	id, secret, _ := strings.Cut(token, ":")
	for _, out := range outs {
		if strings.Contains(out, id) {
			t.Errorf("output contains the token's bot ID prefix %q:\n%s", id, out)
		}
		for i := 0; i+8 <= len(secret); i++ {
			if w := secret[i : i+8]; strings.Contains(out, w) {
				t.Errorf("output contains part %q of the token:\n%s", w, out)
				break
			}
		}
	}
}

// needSecretService: the same rule as internal/secrets' real keyring tests.
func needSecretService(t *testing.T) {
	t.Helper()
	if os.Getenv("RELAY_TEST_SECRET_SERVICE") == "1" {
		return
	}
	msg := "RELAY_TEST_SECRET_SERVICE is not 1: run under ./scripts/test (dbus-run-session + unlocked gnome-keyring-daemon)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestTokenKeyring drives set, status and delete against the real Secret
// Service, as an owner on a workstation would.
func TestTokenKeyring(t *testing.T) {
	needSecretService(t)
	// Other packages' tests use the same real keyring at the same time
	// (e2e stores under "relay"): keep to a service of our own.
	b := make([]byte, 6)
	rand.Read(b)
	testKeyringService = fmt.Sprintf("relay-test-%x", b)
	t.Cleanup(func() { testKeyringService = "" })
	token := randomToken(t)
	e := newTokenEnv(t, "")
	t.Cleanup(func() { e.run(t, "", "delete") })

	if code := e.run(t, token+"\n", "set"); code != ExitOK {
		t.Fatalf("set: exit %d, want 0; stderr: %s", code, e.stderr)
	}
	if want := fmt.Sprintf("stored the bot token in the os keyring (service %q, user \"bot-token\")\n", testKeyringService); e.stdout.String() != want {
		t.Errorf("set: got %q, want %q", e.stdout, want)
	}
	assertNoLeak(t, token, e.stdout.String(), e.stderr.String())

	store := secrets.New(secrets.Options{Getenv: e.Getenv, KeyringService: testKeyringService})
	if v, err := store.Get(secrets.BotToken); err != nil || string(v) != token {
		t.Fatalf("keyring: got len %d, %v; want the token just set", len(v), err)
	}

	if code := e.run(t, "", "status"); code != ExitOK {
		t.Fatalf("status: exit %d, want 0; stderr: %s", code, e.stderr)
	}
	if want := "bot token: os keyring"; !strings.HasPrefix(e.stdout.String(), want) {
		t.Errorf("status: got %q, want it to start with %q", e.stdout, want)
	}
	assertNoLeak(t, token, e.stdout.String(), e.stderr.String())

	if code := e.run(t, "", "delete"); code != ExitOK {
		t.Fatalf("delete: exit %d, want 0; stderr: %s", code, e.stderr)
	}
	if want := "deleted the bot token from the os keyring\n"; e.stdout.String() != want {
		t.Errorf("delete: got %q, want %q", e.stdout, want)
	}
	assertNoLeak(t, token, e.stdout.String(), e.stderr.String())

	if code := e.run(t, "", "status"); code != ExitNotSetup {
		t.Errorf("status after delete: exit %d, want %d; stdout %q", code, ExitNotSetup, e.stdout)
	}
	if code := e.run(t, "", "delete"); code == ExitOK {
		t.Errorf("second delete: exit 0, want non-zero")
	}
}

// TestTokenFile covers the headless path: --file, status, delete, all
// without a keyring item.
func TestTokenFile(t *testing.T) {
	token := randomToken(t)
	e := newTokenEnv(t, "")
	if code := e.run(t, token, "set", "--file"); code != ExitOK {
		t.Fatalf("set --file: exit %d; stderr: %s", code, e.stderr)
	}
	path := filepath.Join(e.vars["XDG_STATE_HOME"], "relay", "secrets", secrets.BotToken)
	if want := "stored the bot token in " + path + " (mode 0600)\n"; e.stdout.String() != want {
		t.Errorf("set --file: got %q, want %q", e.stdout, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: got %04o, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != token {
		t.Errorf("file holds %d bytes, want the token", len(b))
	}
	assertNoLeak(t, token, e.stdout.String(), e.stderr.String())

	if code := e.run(t, "", "status"); code != ExitOK {
		t.Fatalf("status: exit %d; stderr: %s", code, e.stderr)
	}
	// The keyring may be reachable (under ./scripts/test) or not; either
	// way this token is in the file.
	if want := "bot token: file (" + path + ")\n"; e.stdout.String() != want {
		t.Errorf("status: got %q, want %q", e.stdout, want)
	}
	assertNoLeak(t, token, e.stdout.String(), e.stderr.String())

	// A loosened mode is refused, and the message does not quote it.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := e.run(t, "", "status"); code == ExitOK {
		t.Errorf("status with a 0644 file: exit 0, want a refusal")
	}
	if !strings.Contains(e.stderr.String(), "chmod 600") {
		t.Errorf("status with a 0644 file: stderr %q, want the chmod 600 hint", e.stderr)
	}
	assertNoLeak(t, token, e.stdout.String(), e.stderr.String())

	e.run(t, "", "delete")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after delete: stat got %v, want not exist", err)
	}
	if !strings.Contains(e.stdout.String(), "deleted the bot token from the file") {
		t.Errorf("delete: got %q, want it to name the file", e.stdout)
	}
}

func TestTokenSetRejectsWithoutEcho(t *testing.T) {
	good := randomToken(t)
	id, secret, _ := strings.Cut(good, ":")
	tests := []struct {
		name  string
		input string
		code  int
	}{
		{"missing colon", id + secret, ExitUsage},
		{"secret too short", id + ":" + secret[:20], ExitUsage},
		{"bad character", id + ":" + secret[:30] + "!" + secret[31:], ExitUsage},
		{"bot prefix", "bot" + good, ExitUsage},
		{"two tokens", good + "\n" + good, ExitUsage},
		{"inner space", id + ": " + secret, ExitUsage},
		{"empty", "\n", ExitUsage},
		{"huge", strings.Repeat(good, 200), ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTokenEnv(t, "")
			code := e.run(t, tt.input, "set", "--file")
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, e.stderr)
			}
			if e.stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing stored", e.stdout)
			}
			assertNoLeak(t, good, e.stdout.String(), e.stderr.String())
			if _, err := os.Stat(filepath.Join(e.vars["XDG_STATE_HOME"], "relay", "secrets", secrets.BotToken)); err == nil {
				t.Error("a rejected token was written to the file")
			}
		})
	}
}

func TestTokenUsage(t *testing.T) {
	const hint = "relay: hint: see 'relay token -h'\n"
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
		stdout string // prefix
	}{
		{"no subcommand", nil, ExitUsage, "relay: error: token: missing subcommand (want set, status or delete)\n" + hint, ""},
		{"unknown subcommand", []string{"show"}, ExitUsage, "relay: error: unknown token subcommand \"show\" (want set, status or delete)\n" + hint, ""},
		{"mistyped subcommand", []string{"stauts"}, ExitUsage, "relay: error: unknown token subcommand \"stauts\" (did you mean \"status\"?)\n" + hint, ""},
		{"token as argument", []string{"set", "--file", "123456:abc"}, ExitUsage, "relay: error: token set: unexpected argument (the token is read from standard input, never the command line)\n" + hint, ""},
		{"help", []string{"-h"}, ExitOK, "", tokenUsage},
		{"set help", []string{"set", "-h"}, ExitOK, "", tokenUsage},
		{"bad flag", []string{"status", "--nope"}, ExitUsage, "relay: error: token status: unknown flag --nope\n" + hint, ""},
		{"mistyped flag", []string{"set", "--fiel"}, ExitUsage, "relay: error: token set: unknown flag --fiel (did you mean --file?)\n" + hint, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTokenEnv(t, "")
			if code := e.run(t, "", tt.args...); code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if e.stderr.String() != tt.stderr {
				t.Errorf("stderr:\ngot  %q\nwant %q", e.stderr, tt.stderr)
			}
			if e.stdout.String() != tt.stdout {
				t.Errorf("stdout:\ngot  %q\nwant %q", e.stdout, tt.stdout)
			}
		})
	}
	t.Run("token as argument is not echoed", func(t *testing.T) {
		tok := randomToken(t)
		e := newTokenEnv(t, "")
		e.run(t, "", "set", tok)
		assertNoLeak(t, tok, e.stdout.String(), e.stderr.String())
	})
}

func TestTokenPrecedenceWarnings(t *testing.T) {
	token := randomToken(t)
	e := newTokenEnv(t, "")
	cred := t.TempDir()
	if err := os.WriteFile(filepath.Join(cred, secrets.BotToken), []byte(randomToken(t)), 0o400); err != nil {
		t.Fatal(err)
	}
	e.vars["CREDENTIALS_DIRECTORY"] = cred

	if code := e.run(t, token, "set", "--file"); code != ExitOK {
		t.Fatalf("set: exit %d; stderr %s", code, e.stderr)
	}
	if !strings.Contains(e.stderr.String(), "systemd credential") || !strings.Contains(e.stderr.String(), "takes precedence") {
		t.Errorf("set: stderr %q, want a warning that the credential takes precedence", e.stderr)
	}
	if code := e.run(t, "", "status"); code != ExitOK || !strings.HasPrefix(e.stdout.String(), "bot token: systemd credential") {
		t.Errorf("status: exit %d, %q; want the credential", code, e.stdout)
	}
	if code := e.run(t, "", "delete"); code != ExitOK {
		t.Errorf("delete: exit %d; stderr %s", code, e.stderr)
	}
	if !strings.Contains(e.stderr.String(), "LoadCredential=") {
		t.Errorf("delete: stderr %q, want the hint that the credential remains", e.stderr)
	}
	if _, err := os.Stat(filepath.Join(cred, secrets.BotToken)); err != nil {
		t.Errorf("credential: %v, want it untouched", err)
	}
	assertNoLeak(t, token, e.stdout.String(), e.stderr.String())

	delete(e.vars, "CREDENTIALS_DIRECTORY")
	e.vars[secrets.EnvToken] = randomToken(t)
	e.run(t, token, "set", "--file")
	e.run(t, "", "delete")
	if !strings.Contains(e.stderr.String(), "RELAY_BOT_TOKEN") {
		t.Errorf("delete with env: stderr %q, want the hint that RELAY_BOT_TOKEN remains", e.stderr)
	}
}

func TestTokenStateDir(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // directory of the token file; "" means an error
	}{
		{"systemd", map[string]string{"STATE_DIRECTORY": "{tmp}/lib:{tmp}/other", "XDG_STATE_HOME": "{tmp}/x"}, "{tmp}/lib/secrets"},
		{"xdg", map[string]string{"XDG_STATE_HOME": "{tmp}/st", "HOME": "{tmp}/home"}, "{tmp}/st/relay/secrets"},
		{"relative xdg ignored", map[string]string{"XDG_STATE_HOME": "st", "HOME": "{tmp}/home"}, "{tmp}/home/.local/state/relay/secrets"},
		{"none", map[string]string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			e := newTokenEnv(t, "")
			e.vars = map[string]string{}
			for k, v := range tt.env {
				e.vars[k] = strings.ReplaceAll(v, "{tmp}", tmp)
			}
			code := e.run(t, randomToken(t), "set", "--file")
			if tt.want == "" {
				if code != ExitUsage || !strings.Contains(e.stderr.String(), "no state directory") {
					t.Errorf("exit %d, stderr %q; want a usage error naming the state directory", code, e.stderr)
				}
				return
			}
			want := filepath.Join(strings.ReplaceAll(tt.want, "{tmp}", tmp), secrets.BotToken)
			if code != ExitOK || !strings.Contains(e.stdout.String(), want) {
				t.Errorf("exit %d, stdout %q; want the token stored in %s", code, e.stdout, want)
			}
		})
	}
}

// TestTokenConfigFile: with --config, the config's state_dir and
// telegram.token_file decide where the file goes, as for relay run.
func TestTokenConfigFile(t *testing.T) {
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	tokenFile := filepath.Join(tmp, "tok", "bot-token")
	if err := os.MkdirAll(filepath.Dir(tokenFile), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(tmp, "relay.yaml")
	yaml := "state_dir: " + state + "\ntelegram:\n  token_file: " + tokenFile + "\nauth:\n  owner_id: 12345\ncommands:\n  up:\n    description: uptime\n    argv: [/usr/bin/uptime]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	token := randomToken(t)
	e := newTokenEnv(t, "")
	if code := e.run(t, token, "set", "--file", "--config", cfg); code != ExitOK {
		t.Fatalf("set: exit %d; stderr %s", code, e.stderr)
	}
	if want := "stored the bot token in " + tokenFile + " (mode 0600)\n"; e.stdout.String() != want {
		t.Errorf("got %q, want %q", e.stdout, want)
	}
	if code := e.run(t, "", "status", "--config", cfg); code != ExitOK || e.stdout.String() != "bot token: file ("+tokenFile+")\n" {
		t.Errorf("status: exit %d, %q; want the token file", code, e.stdout)
	}
	if code := e.run(t, "", "status", "--config", filepath.Join(tmp, "missing.yaml")); code != ExitNotSetup {
		t.Errorf("status with a missing config: exit %d, want %d", code, ExitNotSetup)
	}
	assertNoLeak(t, token, e.stdout.String(), e.stderr.String())
}

func TestTokenShapeSeedCorpus(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzTokenShape"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus: %d files, %v; want at least one", len(ents), err)
	}
}

// FuzzTokenShape: whatever is pasted, the shape check never panics, accepts
// only the documented shape, and rejects with one fixed message that
// therefore cannot contain any of the input.
func FuzzTokenShape(f *testing.F) {
	want := checkToken(nil).Error()
	f.Add("123456789:FAKEfakeFAKEfakeFAKEfakeFAKEfake123")
	f.Add("123456789:short")
	f.Fuzz(func(t *testing.T, in string) {
		err := checkToken([]byte(in))
		if err == nil {
			if !tokenRE().MatchString(in) {
				t.Fatalf("accepted %q", in)
			}
			return
		}
		if err.Error() != want {
			t.Fatalf("got error %q, want the fixed message %q", err, want)
		}
	})
}

// openPTY returns a pseudo-terminal pair; the slave is what a user's shell
// would have as stdin.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestTokenSetPromptNoEcho types the token into a real terminal and checks
// the terminal never echoed it: the prompt turns echo off before the first
// keystroke is read, and turns it back on afterwards.
func TestTokenSetPromptNoEcho(t *testing.T) {
	master, slave := openPTY(t)
	token := randomToken(t)
	e := newTokenEnv(t, "")
	e.IsTerminal = true
	e.StdinFd = int(slave.Fd())
	e.Stdin = slave

	done := make(chan int, 1)
	go func() { done <- Main(context.Background(), []string{"token", "set", "--file"}, e.Env) }()

	// Type only once echo is off, as a human who waits for the prompt
	// would. If the command never turned echo off, this loop would run
	// into the hang guard and fail the test.
	deadline := time.Now().Add(time.Minute)
	for {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the prompt never turned terminal echo off")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := master.WriteString(token + "\n"); err != nil {
		t.Fatal(err)
	}
	var code int
	select {
	case code = <-done:
	case <-time.After(time.Minute):
		t.Fatal("token set did not return")
	}
	if code != ExitOK {
		t.Fatalf("exit %d; stderr %q", code, e.stderr)
	}
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Error("echo is still off after the prompt returned")
	}
	// Everything the terminal displayed: close our end of the slave so the
	// master reads EIO once drained.
	slave.Close()
	shown, _ := io.ReadAll(master)
	assertNoLeak(t, token, string(shown), e.stdout.String(), e.stderr.String())
	if !strings.Contains(e.stderr.String(), "input is hidden") {
		t.Errorf("stderr %q, want the prompt", e.stderr)
	}
	b, _ := os.ReadFile(filepath.Join(e.vars["XDG_STATE_HOME"], "relay", "secrets", secrets.BotToken))
	if strings.TrimSpace(string(b)) != token {
		t.Errorf("stored %d bytes, want the typed token", len(b))
	}
}
