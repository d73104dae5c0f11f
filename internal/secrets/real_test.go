package secrets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needSecretService skips a test that needs the real, unlocked Secret
// Service that ./scripts/test provides, unless CI=true, where a missing
// keyring is a broken CI setup and must fail loudly.
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

// needTools skips (or fails on CI) when the programs a test drives are absent.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not installed (apt-get install dbus gnome-keyring)", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// uniqueService keeps parallel test processes (other packages run their own
// keyring tests at the same time) from seeing each other's items.
func uniqueService(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "relay-test-" + hex.EncodeToString(b)
}

func TestSecretServiceRoundTrip(t *testing.T) {
	needSecretService(t)
	dir := filepath.Join(t.TempDir(), "secrets")
	svc := uniqueService(t)
	s := New(Options{
		KeyringService: svc,
		Getenv:         func(string) string { return "" },
		Dir:            dir,
	})
	t.Cleanup(func() { s.Delete(BotToken); s.Delete(TOTPSecret) })

	if _, err := s.Get(BotToken); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before Set: got %v, want ErrNotFound", err)
	}
	if p, _ := s.Probe(BotToken); len(p.Skipped) != 0 {
		t.Fatalf("before Set: keyring skipped: %v (is the collection unlocked?)", p.Skipped[0].Err)
	}

	// The file is there too, but the keyring ranks above it.
	if _, err := s.SetFile(BotToken, []byte(fileValue)); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(BotToken, []byte(ringValue)); err != nil {
		t.Fatalf("Set: %v", err)
	}
	v, err := s.Get(BotToken)
	if err != nil || string(v) != ringValue {
		t.Fatalf("Get: got len %d, %v; want the keyring value", len(v), err)
	}
	p, err := s.Probe(BotToken)
	if err != nil || p.Source != SourceKeyring || !strings.Contains(p.Location, svc) {
		t.Errorf("Probe: got %+v, %v; want the keyring, service %q", p, err, svc)
	}
	noSecret(t, "probe", p)

	// Set replaces; it never leaves two items behind.
	if err := s.Set(BotToken, []byte(credValue)); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(BotToken); string(v) != credValue {
		t.Errorf("after replace: got len %d, want the new value", len(v))
	}

	// Non-ASCII and a value with a newline survive the round trip exactly.
	odd := "tötp\nsecret ✓"
	if err := s.Set(TOTPSecret, []byte(odd)); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(TOTPSecret); string(v) != odd {
		t.Errorf("odd value: got %q, want %q", v, odd)
	}

	removed, err := s.Delete(BotToken)
	if err != nil || fmt.Sprint(removed) != "[keyring file]" {
		t.Fatalf("Delete: got %v, %v; want [keyring file]", removed, err)
	}
	if _, err := s.Get(BotToken); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Delete: got %v, want ErrNotFound", err)
	}
	if _, err := s.Delete(BotToken); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: got %v, want ErrNotFound", err)
	}
}

// helperEnv marks the test binary re-executed as a helper process.
const helperEnv = "RELAY_SECRETS_HELPER_DIR"

// TestHelperProbe is not a test: it is the child process of
// TestSecretServiceUnavailable, run in an environment where the keyring is
// broken in one particular way. It probes the token and prints what it saw.
func TestHelperProbe(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestSecretServiceUnavailable")
	}
	s := New(Options{
		KeyringService: "relay-helper",
		Getenv:         func(string) string { return "" },
		Dir:            dir,
	})
	p, err := s.Probe(BotToken)
	kind := "none"
	if len(p.Skipped) == 1 {
		for _, k := range []error{ErrNoSessionBus, ErrNoSecretService, ErrKeyringLocked, ErrKeyringTimeout, ErrKeyring} {
			if errors.Is(p.Skipped[0].Err, k) {
				kind = k.Error()
				break
			}
		}
		hint := ""
		if ke := (*KeyringError)(nil); errors.As(p.Skipped[0].Err, &ke) {
			hint = ke.Hint()
		}
		fmt.Printf("SKIPPED %v (%s)\n", p.Skipped[0].Err, hint)
	}
	fmt.Printf("RESULT source=%s kind=%s err=%v\n", p.Source, kind, err)
}

// TestSecretServiceUnavailable breaks the real D-Bus / Secret Service stack
// in each way the hints cover and checks the error is classified (and the
// file source still used). Each case runs in a child process because godbus
// keeps one session-bus connection per process.
func TestSecretServiceUnavailable(t *testing.T) {
	needTools(t, "dbus-run-session", "gnome-keyring-daemon")
	tests := []struct {
		name string
		// prepare returns the child's extra environment and a command
		// prefix to run it under.
		prepare func(t *testing.T, tmp string) (env []string, prefix []string)
		kind    error
	}{
		{"bus address unset", func(t *testing.T, tmp string) ([]string, []string) {
			k := systemKeyring().(goKeyring)
			k.getenv = func(string) string { return "" }
			if k.reachable() == nil {
				t.Skipf("a per-user bus socket exists in %s; the child would reach the real keyring", k.runtimeDir)
			}
			return []string{"DBUS_SESSION_BUS_ADDRESS="}, nil
		}, ErrNoSessionBus},
		{"bus socket missing", func(t *testing.T, tmp string) ([]string, []string) {
			return []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(tmp, "nobus")}, nil
		}, ErrNoSessionBus},
		{"bus connection refused", func(t *testing.T, tmp string) ([]string, []string) {
			path := filepath.Join(tmp, "deadbus")
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			l.SetUnlinkOnClose(false)
			l.Close() // the socket file stays; connecting to it is refused
			return []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=" + path}, nil
		}, ErrNoSessionBus},
		{"no secret service provider", func(t *testing.T, tmp string) ([]string, []string) {
			conf := filepath.Join(tmp, "bus.conf")
			// A session bus with no service directories: nothing can be
			// activated, so nobody provides org.freedesktop.secrets.
			if err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=`+tmp+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o600); err != nil {
				t.Fatal(err)
			}
			return nil, []string{"dbus-run-session", "--config-file=" + conf, "--"}
		}, ErrNoSecretService},
		{"locked collection", func(t *testing.T, tmp string) ([]string, []string) {
			// A fresh session bus activates gnome-keyring-daemon on demand,
			// with an empty HOME: no login collection exists, and creating
			// or unlocking one needs a prompt that cannot be shown.
			return []string{"HOME=" + tmp, "XDG_DATA_HOME=" + filepath.Join(tmp, "data")},
				[]string{"dbus-run-session", "--"}
		}, ErrKeyringLocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			dir := filepath.Join(tmp, "secrets")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			writeMode(t, filepath.Join(dir, BotToken), fileValue, 0o600)
			extra, prefix := tt.prepare(t, tmp)

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard only
			defer cancel()
			argv := append(prefix, os.Args[0], "-test.run=^TestHelperProbe$", "-test.v")
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Env = append(childEnv(), helperEnv+"="+dir)
			cmd.Env = append(cmd.Env, extra...)
			cmd.Dir = tmp
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			var result, skipped string
			for _, line := range strings.Split(string(out), "\n") {
				if r, ok := strings.CutPrefix(line, "RESULT "); ok {
					result = r
				}
				if s, ok := strings.CutPrefix(line, "SKIPPED "); ok {
					skipped = s
				}
			}
			want := fmt.Sprintf("source=file kind=%s err=<nil>", tt.kind)
			if result != want {
				t.Errorf("got %q, want %q\nhelper output:\n%s", result, want, out)
			}
			if hint := (&KeyringError{Kind: tt.kind}).Hint(); !strings.Contains(skipped, hint) {
				t.Errorf("skip reason %q lacks the hint %q", skipped, hint)
			}
			if strings.Contains(string(out), fileValue) {
				t.Errorf("helper output contains the secret:\n%s", out)
			}
		})
	}
}

// childEnv is the test's environment without the session bus, the display
// (a prompt must never pop up on a developer's desktop) or the real HOME.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR",
			"GNOME_KEYRING_CONTROL", "SSH_AUTH_SOCK", "HOME", helperEnv:
			continue
		}
		env = append(env, kv)
	}
	return env
}
