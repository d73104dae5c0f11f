package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/remote"
)

// CheckLevel is how a doctor check came out.
type CheckLevel int

const (
	CheckOK CheckLevel = iota
	CheckWarn
	CheckFail
)

// Check is one line of relay doctor for a host.
type Check struct {
	Host   string
	Name   string // reach, host key, serve-ssh, allowlist, restricted, forwarding
	Level  CheckLevel
	Detail string
	Fix    string // for CheckFail
}

// Doctor checks host: that it is reachable with the pinned host key,
// that it answers as relay serve-ssh (its version and allowlist digest),
// and that the hub's key is restricted there: a plain command must be
// refused by serve-ssh, not run by a shell, and port forwarding must be
// refused. The probes run nothing on the member.
func (f *Fleet) Doctor(ctx context.Context, host string) []Check {
	c := f.conns[host]
	if c == nil {
		return []Check{{Host: host, Name: "host", Level: CheckFail, Detail: f.unknown(host), Fix: "check hosts: in the config"}}
	}
	h := c.host
	var out []Check
	add := func(name string, l CheckLevel, detail, fix string) {
		out = append(out, Check{Host: host, Name: name, Level: l, Detail: detail, Fix: fix})
	}
	pin := "pinned " + h.Fingerprint()
	if h.KnownHosts != "" {
		pin = "pinned in " + h.KnownHosts
	}
	r := f.List(ctx, host)
	switch r.Kind {
	case KindOK:
		add("reach", CheckOK, fmt.Sprintf("%s port %d", h.Destination(), h.Port), "")
		add("host key", CheckOK, pin+", and the member's key matches", "")
		add("serve-ssh", CheckOK, r.Version, "")
		add("allowlist", CheckOK, fmt.Sprintf("%d commands offered, digest %s", len(r.List.Commands), r.List.Digest[:16]), "")
	case KindHostKey:
		add("reach", CheckOK, fmt.Sprintf("%s port %d", h.Destination(), h.Port), "")
		add("host key", CheckFail, r.Reason+" ("+pin+")", "if the member was reinstalled, read its key on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and update host_key; otherwise someone may be in the way")
		return out
	case KindAuth:
		add("reach", CheckOK, fmt.Sprintf("%s port %d", h.Destination(), h.Port), "")
		add("key", CheckFail, r.Reason, "install the hub's key on the member: deploy/install.sh --member (see docs/reference.md)")
		return out
	case KindUnreachable, KindTimeout:
		add("reach", CheckFail, r.Reason, fmt.Sprintf("check that sshd runs on %s port %d and that the hub may connect", h.Address, h.Port))
		return out
	default:
		add("serve-ssh", CheckFail, r.Reason, "install relay on the member and its forced command (deploy/install.sh --member)")
	}
	out = append(out, f.restricted(ctx, c)...)
	return out
}

// restricted probes the key's authorized_keys options on fresh
// connections of their own.
func (f *Fleet) restricted(ctx context.Context, c *conn) []Check {
	host := c.host.Name
	var out []Check
	token := make([]byte, 8)
	rand.Read(token)
	marker := "relay-probe-" + hex.EncodeToString(token)
	// A shell would print the marker; serve-ssh refuses "echo" as a
	// malformed request, and runs nothing.
	code, text, _ := f.probe(ctx, c, nil, "echo "+marker)
	switch {
	case strings.Contains(text, marker):
		out = append(out, Check{Host: host, Name: "restricted", Level: CheckFail,
			Detail: "the hub's key runs a shell on the member: a plain `ssh " + host + " true` would run",
			Fix:    `prefix its authorized_keys line with restrict,command="/usr/local/bin/relay serve-ssh --config /etc/relay/relay.yaml" (deploy/install.sh --member writes it)`})
	case code == remote.ExitMalformed && strings.Contains(text, "relay serve-ssh:"):
		out = append(out, Check{Host: host, Name: "restricted", Level: CheckOK, Detail: "a plain command is refused by relay serve-ssh (command= is in force)"})
	default:
		out = append(out, Check{Host: host, Name: "restricted", Level: CheckFail,
			Detail: fmt.Sprintf("a plain command did not reach relay serve-ssh (exit %d: %s)", code, cleanText(text, 200)),
			Fix:    `the key's authorized_keys line must force relay serve-ssh: restrict,command="/usr/local/bin/relay serve-ssh --config /etc/relay/relay.yaml"`})
	}
	// Forwarding: restrict refuses it "administratively"; without it,
	// sshd tries the connection (to a port that is most likely closed).
	fcode, _, log := f.probe(ctx, c, []string{"-W", "127.0.0.1:9"}, "")
	switch {
	case strings.Contains(log, "administratively prohibited"):
		out = append(out, Check{Host: host, Name: "forwarding", Level: CheckOK, Detail: "port forwarding is refused (restrict is in force)"})
	case strings.Contains(log, "connect failed"), fcode == 0:
		out = append(out, Check{Host: host, Name: "forwarding", Level: CheckFail,
			Detail: "the hub's key may forward ports through the member: a compromised hub could reach the member's local services",
			Fix:    "add restrict, to the key's authorized_keys line (or no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-pty)"})
	default:
		out = append(out, Check{Host: host, Name: "forwarding", Level: CheckWarn, Detail: "could not tell whether port forwarding is refused: " + cleanText(lastLine(log), 200)})
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// probe runs ssh on a connection of its own, with LogLevel VERBOSE (ssh
// takes the first value of an option, so it goes first) and either extra
// options or a remote command, and returns ssh's exit, up to 4 KiB of what
// came back, and ssh's log.
func (f *Fleet) probe(ctx context.Context, c *conn, extra []string, remoteCmd string) (code int, text, log string) {
	name := make([]byte, 8)
	rand.Read(name)
	logFile := filepath.Join(f.logDir, "probe-"+hex.EncodeToString(name)+".log")
	defer os.Remove(logFile)
	fl := &f.cfg.Fleet
	argv := []string{fl.SSH, "-o", "LogLevel=VERBOSE"}
	argv = append(argv, c.opts...)
	argv = append(argv, "-o", "ControlMaster=no", "-o", "ControlPath=none", "-E", logFile)
	argv = append(argv, extra...)
	argv = append(argv, "-p", fmt.Sprint(c.host.Port), "-l", c.host.User, "--", c.host.Address)
	if remoteCmd != "" {
		argv = append(argv, remoteCmd)
	}
	spec := exec.Spec{Argv: argv, Dir: "/", Timeout: min(c.host.Timeout, fl.ConnectTimeout+30*time.Second), MaxOutput: 4096, SpoolDir: f.spool}
	job, err := f.runner.Start(ctx, c.host.Name, fl.MaxCalls, spec)
	if err != nil {
		return -1, err.Error(), ""
	}
	res := job.Wait()
	defer res.Output.Close()
	b := make([]byte, 4096)
	n, _ := res.Output.ReadAt(b, 0)
	return res.ExitCode, string(b[:n]), readLog(logFile)
}
