package daemon

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The daemon's fleet tests use the real ssh client against hosts nobody
// answers on; what needs a real member (sshd, serve-ssh) is e2e's
// TestFleetFromTheChat.

// deadHosts is hosts: YAML naming each of names at 127.0.0.1 on a port
// nothing listens on, with a pinned key and an identity file.
func deadHosts(t *testing.T, dir string, names ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	id := filepath.Join(dir, "hub_key")
	if err := os.WriteFile(id, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	blob := binary.BigEndian.AppendUint32(nil, 11)
	blob = append(blob, "ssh-ed25519"...)
	blob = binary.BigEndian.AppendUint32(blob, 32)
	blob = append(blob, make([]byte, 32)...)
	var b strings.Builder
	b.WriteString("hosts:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n    address: relay@127.0.0.1\n    port: %d\n    host_key: \"ssh-ed25519 %s\"\n    identity: %s\n",
			n, port, base64.StdEncoding.EncodeToString(blob), id)
	}
	return b.String()
}

// TestOnRefusesWhatItCannotDo: /on and /hosts in the chat, with members
// nobody answers for: the target is checked before anything goes out, a
// host whose offered list cannot be read is not called (the hub could
// not apply its confirm and reauth), and every answer is audited.
func TestOnRefusesWhatItCannotDo(t *testing.T) {
	h := newHarness(t, hopts{extra: deadHosts(t, t.TempDir(), "nas", "web1") + "groups:\n  web: [web1]\n"})
	h.say("/on nas disk")
	h.expect("not logged in")
	h.login()

	h.say("/hosts")
	m := h.expect("2 hosts, 1 groups")
	for _, want := range []string{"nas   relay@127.0.0.1 port", "group web: web1", "group all: every host"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("/hosts lacks %q:\n%s", want, m.Text)
		}
	}
	h.say("/help")
	if help := h.expect("Commands"); !strings.Contains(help.Text, "hosts nas, web1; group web (web1); all") {
		t.Errorf("/help does not name the targets:\n%s", help.Text)
	}

	for _, c := range []struct{ say, want string }{
		{"/on nsa disk", "did you mean nas?"},
		{"/on", "usage: /on HOST|GROUP|all COMMAND"},
		{"/on nas \"unterminated", "quote"},
		{"/on nas ../etc", "is not a command name"},
	} {
		h.say(c.say)
		h.expect(c.want)
	}
	if n := len(h.find("type", "request", "command", "on", "outcome", "denied")); n != 5 {
		t.Errorf("%d /on refusals audited, want 5 (no session, then the four above)", n)
	}

	h.say("/on all disk /var")
	sum := h.expect("/on all disk /var · 2 hosts · 0 ok · 2 not run")
	for _, want := range []string{"⛔ nas", "⛔ web1", "not called: its offered commands could not be read (unreachable: connection refused)"} {
		if !strings.Contains(sum.Text, want) {
			t.Errorf("the summary lacks %q:\n%s", want, sum.Text)
		}
	}
	if len(h.find("type", "request", "command", "on", "outcome", "requested")) != 1 || len(h.find("type", "remote_request")) != 0 {
		t.Error("want the fan-out requested once and no remote call made")
	}
	h.say("/on web")
	h.expect("web1: unreachable: connection refused")
	h.waitFor("the fan-outs gone", func() bool { return len(h.d.runningFanouts()) == 0 })
}

// silentHost is a hosts: entry for a member that accepts the connection
// and never answers, so that a call to it runs until it is cancelled (or
// ssh's ConnectTimeout, far longer than the test).
func silentHost(t *testing.T, dir, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	entry := deadHosts(t, dir, name)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	i := strings.Index(entry, "port: ")
	j := strings.Index(entry[i:], "\n")
	return entry[:i] + "port: " + port + entry[i+j:] + "fleet: {connect_timeout: 60s}\n"
}

// TestFanOutIsAJob: a running /on is in /ps and /status, and /kill, /lock
// and shutdown end it as they end a local job, at once, whatever its
// member does.
func TestFanOutIsAJob(t *testing.T) {
	h := newHarness(t, hopts{extra: silentHost(t, t.TempDir(), "nas")})
	h.login()
	running := func() {
		t.Helper()
		h.say("/on nas disk")
		h.waitFor("the fan-out running", func() bool { return len(h.d.runningFanouts()) == 1 })
	}
	running()
	id := h.d.runningFanouts()[0].id
	h.say("/ps")
	if m := h.expect("1 running"); !strings.Contains(m.Text, id+"    /on nas disk") {
		t.Errorf("/ps shows %q, want the fan-out %s", m.Text, id)
	}
	h.say("/status")
	h.expect("jobs: 1")
	h.say("/kill " + id)
	h.expectAll("killing "+id, "/on nas disk: cancelled")
	h.waitFor("the fan-out gone", func() bool { return len(h.d.runningFanouts()) == 0 })
	if len(h.find("type", "kill", "job", id)) != 1 {
		t.Error("the kill is not audited")
	}

	running()
	h.say("/lock")
	h.expectAll("locked: session ended, 1 jobs killed", "cancelled")
	h.waitFor("the fan-out gone", func() bool { return len(h.d.runningFanouts()) == 0 })

	h.login()
	running()
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.d.runningFanouts()); n != 0 {
		t.Errorf("%d fan-outs outlived shutdown", n)
	}
}

// TestReloadSwapsTheFleet: a reload that changes the hosts serves the
// next /on from the new ones; one that changes nothing a call depends on
// keeps the fleet, and its kept connections.
func TestReloadSwapsTheFleet(t *testing.T) {
	dir := t.TempDir()
	o := hopts{commands: echoCmd, extra: deadHosts(t, dir, "nas")}
	h := newHarness(t, o)
	h.login()
	first := h.d.fleet
	o.extra = "# a comment moves every line\n" + o.extra
	h.reload(o)
	if h.d.fleet != first {
		t.Error("a reload that changed no host rebuilt the fleet")
	}
	o.extra = deadHosts(t, dir, "nas", "web")
	h.reload(o)
	if h.d.fleet == first {
		t.Fatal("a reload that added a host kept the old fleet")
	}
	h.say("/on web disk")
	h.expect("/on web disk · 1 host · 0 ok · 1 not run")
	h.reload(hopts{commands: echoCmd})
	if h.d.fleet != nil {
		t.Error("a config without hosts kept a fleet")
	}
	h.say("/on web disk")
	h.expect(noHosts.String())
}
