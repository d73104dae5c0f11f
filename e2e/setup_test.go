package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// openPTY returns a pseudo-terminal pair; the slave is the owner's terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	must(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	must(t, err)
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return m, s
}

// screen collects what the terminal shows.
type screen struct {
	syncBuffer
	seen int // how much of it earlier waits matched
}

// waitFor waits until the terminal shows want after what earlier waits
// matched, and returns everything new up to and including it.
func (s *screen) waitFor(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := s.String()
		if i := strings.Index(all[s.seen:], want); i >= 0 {
			got := all[s.seen : s.seen+i+len(want)]
			s.seen += i + len(want)
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows:\n%s", want, all[s.seen:])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// terminal is the relay binary running on a pseudo-terminal, as the owner
// runs it from a shell.
type terminal struct {
	master, slave *os.File
	scr           *screen
	cmd           *osexec.Cmd
	exited        chan struct{}
	err           error
}

// onTerminal starts relay with args in dir, on a fresh pseudo-terminal, in
// an environment of its own: home under home, no keyring, and outbound
// HTTPS to a dead proxy so that nothing leaves the machine.
func onTerminal(t *testing.T, home string, args ...string) *terminal {
	t.Helper()
	master, slave := openPTY(t)
	cmd := osexec.Command(relayBin, args...)
	cmd.Dir = home
	cmd.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + home, "TERM=dumb",
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_STATE_HOME=" + filepath.Join(home, "state"),
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(home, "no-bus"),
		"HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1",
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// A session of its own with the terminal as its controlling terminal,
	// so that ^C on it is a SIGINT to relay, as from a shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	must(t, cmd.Start())
	term := &terminal{master: master, slave: slave, scr: &screen{}, cmd: cmd, exited: make(chan struct{})}
	go func() {
		term.err = cmd.Wait()
		close(term.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-term.exited:
		default:
			_ = cmd.Process.Kill()
			<-term.exited
		}
	})
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			_, _ = term.scr.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	return term
}

// answer waits for prompt, then types line and Enter.
func (tm *terminal) answer(t *testing.T, prompt, line string) string {
	t.Helper()
	shown := tm.scr.waitFor(t, prompt)
	_, _ = tm.master.WriteString(line + "\r")
	return shown
}

// exitCode waits for relay to exit and returns its exit code.
func (tm *terminal) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-tm.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("relay did not exit; the terminal shows:\n%s", tm.scr.String())
	}
	var ee *osexec.ExitError
	if errors.As(tm.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// code types the code an authenticator app would show for the otpauth URI
// on the screen.
func (tm *terminal) code(t *testing.T, shown string) {
	t.Helper()
	uri := regexp.MustCompile(`otpauth://totp/\S+`).FindString(shown)
	u, err := url.Parse(uri)
	if err != nil || u.Query().Get("secret") == "" {
		t.Fatalf("no otpauth URI on the terminal:\n%s", shown)
	}
	c, err := totpCode(u.Query().Get("secret"), time.Now())
	must(t, err)
	_, _ = tm.master.WriteString(c + "\r")
}

const codePrompt = `code shown by the app (or "l" to redraw the qr code for a light background): `

// TestFirstRunSetupOnATerminal follows the README's first command on a
// fresh machine, exactly as written (relay run --config relay.yaml, with
// no relay.yaml), through every mistake set-up forgives: a paste that is
// not a token, a token the Bot API refuses, Ctrl-C in the middle, and a
// QR code that needs the light-background variant. The Bot API is the
// project's fake on 127.0.0.1.
func TestFirstRunSetupOnATerminal(t *testing.T) {
	api := fakebotapi.New(testToken)
	must(t, api.Start())
	t.Cleanup(api.Close)
	home := t.TempDir()
	cfgPath := filepath.Join(home, "relay.yaml")
	state := filepath.Join(home, "state", "relay")
	tokenFile := filepath.Join(state, "secrets", "bot-token")

	// The first run: mistakes, then Ctrl-C at the TOTP prompt.
	tm := onTerminal(t, home, "run", "--config", "relay.yaml")
	tm.scr.waitFor(t, "No config at relay.yaml: first-run setup.")
	tm.answer(t, "Bot API URL, Enter for https://api.telegram.org: ", api.URL())
	tm.answer(t, "bot token (input is hidden): ", "a BotFather message, not a token")
	tm.scr.waitFor(t, "relay: error: that is not a bot token (want the form 123456789:AAH... that @BotFather sends: digits, a colon, then 30-64 letters, digits, '_' or '-'); try again\r\n")
	tm.answer(t, "bot token (input is hidden): ", "123456789:AAE2wrongTOKENbutWELLformedXYZ0123456789")
	tm.scr.waitFor(t, "relay: error: telegram refused this token (check it with @BotFather); nothing was stored; try again\r\n")
	tm.answer(t, "bot token (input is hidden): ", testToken)
	tm.scr.waitFor(t, "   connected as @relay_test_bot\r\n")
	tm.scr.waitFor(t, "   stored the token in "+tokenFile+" (mode 0600)\r\n")
	tm.answer(t, "user ID: ", fmt.Sprint(ownerID))
	tm.scr.waitFor(t, codePrompt)
	_, _ = tm.master.WriteString("\x03") // Ctrl-C
	want := "relay: error: setup interrupted; written: the bot token (" + tokenFile + " (mode 0600)); not written: the TOTP secret, the audit log and its key K0, the config\r\n" +
		"relay: hint: run 'relay run --config relay.yaml' on a terminal to continue from there\r\n"
	tm.scr.waitFor(t, want)
	if code := tm.exitCode(t); code != 5 {
		t.Errorf("after Ctrl-C: exit %d, want 5", code)
	}
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Errorf("an interrupted setup wrote the config: %v", err)
	}
	tio, err := unix.IoctlGetTermios(int(tm.slave.Fd()), unix.TCGETS)
	must(t, err)
	if tio.Lflag&unix.ECHO == 0 {
		t.Error("Ctrl-C left the terminal with echo off")
	}
	if strings.Contains(tm.scr.String(), testToken) {
		t.Error("the terminal echoed the token")
	}

	// The second run resumes: the token is kept (and checked again), the
	// rest is asked for; the QR code is redrawn for a light background.
	tm = onTerminal(t, home, "run", "--config", "relay.yaml", "--api-url", api.URL())
	tm.scr.waitFor(t, "   bot token: already stored in the file ("+tokenFile+")\r\n")
	tm.scr.waitFor(t, "   connected as @relay_test_bot\r\n")
	tm.answer(t, "user ID: ", fmt.Sprint(ownerID))
	tm.answer(t, codePrompt, "l")
	shown := tm.scr.waitFor(t, `code shown by the app (or "d" to redraw the qr code for a dark background): `)
	if !strings.Contains(shown, "Scan this with your authenticator app") {
		t.Fatalf("no light QR code after \"l\":\n%s", shown)
	}
	tm.code(t, shown)
	final := tm.scr.waitFor(t, "Starting relay. Send /login CODE to @relay_test_bot.")
	if strings.Contains(tm.scr.String(), "bot token (input is hidden)") {
		t.Error("the resumed setup asked for the token again")
	}
	for _, line := range []string{
		"Audit key K0, shown once.",
		fmt.Sprintf("   %-30s %s", "the bot token", "file: "+tokenFile),
		fmt.Sprintf("   %-30s %s", "the TOTP secret", filepath.Join(state, "secrets", "totp-secret")+" (mode 0600)"),
		fmt.Sprintf("   %-30s %s", "the audit log and its key K0", filepath.Join(state, "audit")+"; K0 in "+filepath.Join(state, "secrets", "audit-key")+" (mode 0600)"),
		fmt.Sprintf("   %-30s %s", "the config", "relay.yaml"),
	} {
		if !strings.Contains(final, line) {
			t.Errorf("the end of setup lacks %q:\n%s", line, final)
		}
	}
	cfg, err := os.ReadFile(cfgPath)
	must(t, err)
	for _, want := range []string{fmt.Sprintf("owner_id: %d", ownerID), fmt.Sprintf("api_url: %q", api.URL()), "keyring: false"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("the config lacks %q:\n%s", want, cfg)
		}
	}
	for _, f := range []string{"secrets/bot-token", "secrets/totp-secret", "secrets/audit-key", "audit/state.json"} {
		fi, err := os.Stat(filepath.Join(state, f))
		if err != nil {
			t.Errorf("setup did not create %s: %v", f, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("got %s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	// The relay went on to start: it polls the fake it was set up with.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := api.WaitPoll(ctx); err != nil {
		t.Fatalf("relay never polled after setup: %v\n%s", err, tm.scr.String())
	}
	_ = tm.cmd.Process.Signal(syscall.SIGTERM)
	if code := tm.exitCode(t); code != 0 {
		t.Errorf("after SIGTERM: exit %d, want 0", code)
	}
	if strings.Contains(tm.scr.String(), testToken) {
		t.Error("the terminal shows the token")
	}
}

// TestMissingConfigWithoutATerminal: the README's first command without a
// terminal (cron, a pipe) exits 5 with the fix, and writes nothing.
func TestMissingConfigWithoutATerminal(t *testing.T) {
	home := t.TempDir()
	cmd := osexec.Command(relayBin, "run", "--config", "relay.yaml")
	cmd.Dir = home
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home}
	out, err := cmd.CombinedOutput()
	var ee *osexec.ExitError
	want := "relay: error: no config file relay.yaml: run 'relay run --config relay.yaml' on a terminal to create it, or start from policy/examples\n"
	if !errors.As(err, &ee) || ee.ExitCode() != 5 || string(out) != want {
		t.Errorf("got %v and %q, want exit 5 and %q", err, out, want)
	}
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Errorf("relay wrote %d entries into the directory", len(ents))
	}
}

// TestVersion: --version and version print the version, the commit and
// the Go toolchain: from -ldflags -X when a release sets them, else from
// the VCS stamp go build records.
func TestVersion(t *testing.T) {
	goSuffix := fmt.Sprintf(", %s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	out, err := osexec.Command(relayBin, "--version").Output()
	must(t, err)
	same, err := osexec.Command(relayBin, "version").Output()
	must(t, err)
	if string(out) != string(same) || !strings.HasPrefix(string(out), "relay ") || !strings.HasSuffix(string(out), goSuffix) {
		t.Errorf("got %q and %q, want the same line ending %q", out, same, goSuffix)
	}
	// The VCS stamp, in a git checkout (GOFLAGS may turn it off for the
	// binary above, so build one that asks for it).
	head, herr := osexec.Command("git", "rev-parse", "HEAD").Output()
	top, terr := osexec.Command("git", "rev-parse", "--show-toplevel").Output()
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); herr != nil || terr != nil || err != nil || !fi.IsDir() {
		// go build stamps only a checkout whose .git is a directory, not a
		// git worktree's .git file.
		t.Log("not a plain git checkout: the VCS stamp is not checked")
	} else {
		bin := buildRelay(t, "-buildvcs=true")
		out, err := osexec.Command(bin, "version").Output()
		must(t, err)
		re := regexp.MustCompile(`^relay \S+ \(commit ` + string(head[:12]) + `(-dirty)?` + regexp.QuoteMeta(goSuffix) + `$`)
		if !re.Match(out) {
			t.Errorf("got %q, want the VCS stamp of %s", out, head[:12])
		}
	}

	bin := buildRelay(t, "-ldflags", "-X github.com/relaychat/relay/internal/cli.Version=v9.8.7-test -X github.com/relaychat/relay/internal/cli.Commit=0123456789abcdef0123456789abcdef01234567")
	out, err = osexec.Command(bin, "--version").Output()
	must(t, err)
	if want := "relay v9.8.7-test (commit 0123456789ab" + goSuffix; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// buildRelay builds a relay binary of its own with extra go build flags.
func buildRelay(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "relay")
	build := osexec.Command("go", append(append([]string{"build", "-o", bin}, flags...), "../cmd/relay")...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", flags, err, b)
	}
	return bin
}
