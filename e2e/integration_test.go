package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// need skips when a tool is missing, except in CI, where .ci/run installs
// it and a skip would hide a broken install.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := osexec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing in CI: .ci/run must install it", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startMosquitto runs a real broker on 127.0.0.1 for the test.
func startMosquitto(t *testing.T) int {
	t.Helper()
	need(t, "mosquitto", "mosquitto_pub", "mosquitto_sub")
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)), 0o644))
	cmd := osexec.Command(mosquittoPath(t), "-c", conf)
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mosquittoPath(t *testing.T) string {
	p, err := osexec.LookPath("mosquitto")
	must(t, err)
	return p
}

// TestLightOverMQTT is the Home-Assistant-style device control example:
// /light kitchen on, sent through the fake Bot API, publishes the payload on
// the topic, seen by a real subscriber on a real broker; a room outside the
// enum publishes nothing.
func TestLightOverMQTT(t *testing.T) {
	port := startMosquitto(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := osexec.CommandContext(ctx, "mosquitto_sub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-t", "home/#", "-v")
	out, err := sub.StdoutPipe()
	must(t, err)
	must(t, sub.Start())
	defer func() { cancel(); _ = sub.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The subscription is live once a probe message comes back.
	waitLine := func(want string) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("subscriber ended before %q", want)
				}
				if l == want {
					return
				}
				t.Fatalf("got %q on the broker, want %q", l, want)
			case <-timeout:
				t.Fatalf("timed out waiting for %q", want)
			}
		}
	}
	publish := func(topic, msg string) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			must(t, osexec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-t", topic, "-m", msg).Run())
			select {
			case l := <-lines:
				if l == topic+" "+msg {
					return
				}
				t.Fatalf("got %q, want the probe", l)
			case <-time.After(200 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatal("subscriber never saw the probe")
				}
			}
		}
	}
	publish("home/probe", "ready")

	r := startRelay(t, options{commands: fmt.Sprintf(`  light:
    description: switch a light
    argv: [/usr/bin/mosquitto_pub, -h, 127.0.0.1, -p, "%d", -t, "home/{room}/light/set", -m, "{state}"]
    params:
      - {name: room, type: enum, values: [kitchen, living_room, bedroom, hall]}
      - {name: state, type: enum, values: ["on", "off"]}
    timeout: 10s
    workdir: /
    sandbox:
      connect_ports: [%d]
`, port, port)})
	r.login()
	r.say("/light kitchen on")
	r.expect("exit 0")
	waitLine("home/kitchen/light/set on")

	r.say("/light garage on")
	m := r.expect("room")
	if strings.Contains(m.Text, "exit ") {
		t.Fatalf("an out-of-enum room ran: %q", m.Text)
	}
	// Nothing reached the broker between the refusal and this sentinel.
	must(t, osexec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-t", "home/sentinel", "-m", "x").Run())
	waitLine("home/sentinel x")
}

// TestTokenFromRealKeyring stores the token with relay token set in a real
// gnome-keyring, runs the relay with no other token source, then deletes it.
func TestTokenFromRealKeyring(t *testing.T) {
	if os.Getenv("RELAY_TEST_SECRET_SERVICE") == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs the suite through scripts/test, which provides a Secret Service")
		}
		t.Skip("needs a Secret Service: run through scripts/test")
	}
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home)
	set := osexec.Command(relayBin, "token", "set")
	set.Env = env
	set.Stdin = strings.NewReader(testToken + "\n")
	outb, err := set.CombinedOutput()
	if err != nil {
		t.Fatalf("relay token set: %v\n%s", err, outb)
	}
	if strings.Contains(string(outb), testToken) {
		t.Error("relay token set echoed the token")
	}
	t.Cleanup(func() {
		del := osexec.Command(relayBin, "token", "delete")
		del.Env = env
		if out, err := del.CombinedOutput(); err != nil {
			t.Errorf("relay token delete: %v\n%s", err, out)
		}
		st := osexec.Command(relayBin, "token", "status")
		st.Env = env
		if err := st.Run(); err == nil {
			t.Error("relay token status still finds a token after delete")
		}
	})
	st := osexec.Command(relayBin, "token", "status")
	st.Env = env
	outb, err = st.CombinedOutput()
	if err != nil || !strings.Contains(string(outb), "keyring") || strings.Contains(string(outb), testToken) {
		t.Fatalf("relay token status: %v\n%s", err, outb)
	}

	r := startRelay(t, options{commands: echoCmd, keyringToken: true})
	r.login()
	if got := r.stop(syscall.SIGTERM); got != 0 {
		t.Errorf("got exit code %d, want 0", got)
	}
	_ = io.Discard
}
