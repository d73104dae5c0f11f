package e2e

import (
	"fmt"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
type screen struct{ syncBuffer }

func (s *screen) waitFor(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows:\n%s", want, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s.String()
}

// TestFirstRunSetupOnATerminal walks through first-run setup as the owner
// would: token (hidden), owner ID, the TOTP QR and a code, then the audit
// key, and the relay starts. Outbound HTTPS goes to a dead local proxy, so
// nothing leaves the machine.
func TestFirstRunSetupOnATerminal(t *testing.T) {
	master, slave := openPTY(t)
	home := t.TempDir()
	cmd := osexec.Command(relayBin, "run")
	cmd.Env = []string{
		"PATH=/usr/bin:/bin", "HOME=" + home, "TERM=dumb",
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_STATE_HOME=" + filepath.Join(home, "state"),
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(home, "no-bus"),
		"HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1",
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	scr := &screen{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			_, _ = scr.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()

	scr.waitFor(t, "input is hidden")
	_, _ = master.WriteString(testToken + "\r")
	scr.waitFor(t, "user ID:")
	_, _ = master.WriteString(fmt.Sprint(ownerID) + "\r")
	shown := scr.waitFor(t, "code shown by the app:")
	uri := regexp.MustCompile(`otpauth://totp/\S+`).FindString(shown)
	u, err := url.Parse(uri)
	if err != nil || u.Query().Get("secret") == "" {
		t.Fatalf("no otpauth URI on the terminal:\n%s", shown)
	}
	c, err := totpCode(u.Query().Get("secret"), time.Now())
	must(t, err)
	_, _ = master.WriteString(c + "\r")
	final := scr.waitFor(t, "setup done")
	if !strings.Contains(final, "Audit key K0") {
		t.Errorf("the audit key was not shown once:\n%s", final)
	}
	if strings.Contains(final, testToken) {
		t.Error("the terminal echoed the token")
	}
	cfg, err := os.ReadFile(filepath.Join(home, "config", "relay", "relay.yaml"))
	must(t, err)
	if !strings.Contains(string(cfg), fmt.Sprintf("owner_id: %d", ownerID)) {
		t.Errorf("the config lacks the owner:\n%s", cfg)
	}
	for _, f := range []string{"secrets/bot-token", "secrets/totp-secret", "audit/state.json"} {
		fi, err := os.Stat(filepath.Join(home, "state", "relay", f))
		if err != nil {
			t.Errorf("setup did not create %s: %v", f, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("got %s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	// The relay went on to start: it is still running after setup.
	select {
	case err := <-exited:
		t.Fatalf("relay exited after setup: %v\n%s", err, scr.String())
	case <-time.After(500 * time.Millisecond):
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("relay did not stop after SIGTERM")
	}
	exited <- nil // for the cleanup
}
