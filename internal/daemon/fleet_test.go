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
