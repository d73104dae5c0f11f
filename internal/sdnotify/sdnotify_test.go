package sdnotify

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens a unixgram socket the way systemd does and returns its
// NOTIFY_SOCKET name.
func listen(t *testing.T, abstract bool) (*net.UnixConn, string) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	if abstract {
		b := make([]byte, 8)
		rand.Read(b)
		name = "@relay-test-" + hex.EncodeToString(b)
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, name
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute)) // hang guard only
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read datagram: %v", err)
	}
	return string(buf[:n])
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSend(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		name := "path"
		if abstract {
			name = "abstract"
		}
		t.Run(name, func(t *testing.T) {
			c, sock := listen(t, abstract)
			n := New(env(map[string]string{"NOTIFY_SOCKET": sock}), 1)
			tests := []struct {
				name string
				send func() error
				want string
			}{
				{"ready", n.Ready, "READY=1"},
				{"stopping", n.Stopping, "STOPPING=1"},
				{"watchdog", n.Watchdog, "WATCHDOG=1"},
				{"status", func() error { return n.Status("serving 3 jobs") }, "STATUS=serving 3 jobs"},
				{"status cannot inject", func() error { return n.Status("x\nREADY=1\r\x00") }, "STATUS=x READY=1  "},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if err := tt.send(); err != nil {
						t.Fatal(err)
					}
					if got := recv(t, c); got != tt.want {
						t.Errorf("got %q, want %q", got, tt.want)
					}
				})
			}
		})
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	n := New(env(nil), 1)
	for name, f := range map[string]func() error{
		"ready": n.Ready, "stopping": n.Stopping, "watchdog": n.Watchdog,
		"status": func() error { return n.Status("x") },
	} {
		if err := f(); err != nil {
			t.Errorf("%s: got %v, want nil without NOTIFY_SOCKET", name, err)
		}
	}
	if d, ok := n.WatchdogInterval(); ok {
		t.Errorf("WatchdogInterval: got %v, true; want false", d)
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct{ name, sock, want string }{
		{"relative", "notify", "unsupported NOTIFY_SOCKET"},
		{"vsock", "vsock:2:1234", "unsupported NOTIFY_SOCKET"},
		{"missing", filepath.Join(t.TempDir(), "gone"), "sd_notify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(env(map[string]string{"NOTIFY_SOCKET": tt.sock}), 1).Ready()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		name   string
		usec   string
		pid    string
		want   time.Duration
		wantOK bool
	}{
		{"unset", "", "", 0, false},
		{"set", "30000000", "", 30 * time.Second, true},
		{"for this pid", "500000", "42", 500 * time.Millisecond, true},
		{"for another pid", "500000", "43", 0, false},
		{"bad pid", "500000", "x", 0, false},
		{"zero", "0", "", 0, false},
		{"negative", "-5", "", 0, false},
		{"garbage", "10s", "", 0, false},
		{"overflow", "99999999999999999999", "", 0, false},
		{"too large for a duration", "9223372036854775807", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := New(env(map[string]string{"WATCHDOG_USEC": tt.usec, "WATCHDOG_PID": tt.pid}), 42)
			got, ok := n.WatchdogInterval()
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestPackageFunctionsUseProcessEnv(t *testing.T) {
	c, sock := listen(t, false)
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := Ready(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1" {
		t.Errorf("got %q, want READY=1", got)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Stopping(); err != nil {
		t.Errorf("unset: got %v, want nil", err)
	}
}

func TestFuzzSeedCorpus(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzStatus"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus: %d files, %v; want at least one", len(ents), err)
	}
}

// FuzzStatus: whatever text the daemon reports (it may include a command
// name from the policy), systemd receives exactly one STATUS= assignment.
func FuzzStatus(f *testing.F) {
	f.Add("x\nREADY=1")
	f.Add("ok")
	name := filepath.Join(f.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	n := New(env(map[string]string{"NOTIFY_SOCKET": name}), 1)
	buf := make([]byte, 1<<16)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		if err := n.Status(s); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Minute)) // hang guard only
		k, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:k])
		if !strings.HasPrefix(got, "STATUS=") || strings.ContainsAny(got, "\n\r\x00") {
			t.Fatalf("datagram %q is not one STATUS= assignment", got)
		}
	})
}
