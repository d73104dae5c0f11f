package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/atomicfile"
	"github.com/relaychat/relay/policy"
)

// maxControlPath is the longest control socket path ssh can create: a
// sun_path holds 107 bytes, and ssh binds a temporary name 17 bytes
// longer before renaming it into place.
const maxControlPath = 107 - 17

// conn is how the hub reaches one member: a fixed ssh option set built
// from the host's config. Nothing from a chat message ever reaches it; the
// request is the one argument after the destination.
type conn struct {
	host        *policy.Host
	knownHosts  string // the UserKnownHostsFile
	controlPath string // "" without connection reuse
	opts        []string
}

// sshOptions is the audited option set, in the order ssh sees it. Every
// option is spelled out, so that no ssh_config (-F none: none is read), no
// environment variable and no default of another ssh version decides how
// the hub reaches a member.
func (c *conn) build(f *policy.Fleet) {
	h := c.host
	o := []string{
		"-F", "none", // no user or system ssh_config
		"-n", // stdin is /dev/null: nothing the hub holds reaches the member
		"-T", // no tty
		"-x", // no X11 forwarding
		"-a", // no agent forwarding
		"-o", "BatchMode=yes",
		"-o", "ForwardAgent=no",
		"-o", "ForwardX11=no",
		"-o", "ClearAllForwardings=yes",
		"-o", "PermitLocalCommand=no",
		"-o", "ProxyCommand=none",
		"-o", "ProxyJump=none",
		"-o", "RequestTTY=no",
		"-o", "EscapeChar=none",
		"-o", "Tunnel=no",
		"-o", "ExitOnForwardFailure=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UpdateHostKeys=no",
		"-o", "VerifyHostKeyDNS=no",
		"-o", "CheckHostIP=no",
		"-o", "GlobalKnownHostsFile=none",
		"-o", "UserKnownHostsFile=" + c.knownHosts,
	}
	if h.HostKey != "" {
		// The pin is looked up by this alias, never by a name or an
		// address the network controls, and only its key type is
		// negotiated: a member offering another type fails.
		o = append(o, "-o", "HostKeyAlias="+alias(h), "-o", "HostKeyAlgorithms="+h.HostKeyAlgorithms())
	}
	o = append(o,
		"-o", "PubkeyAuthentication=yes",
		"-o", "PasswordAuthentication=no",
		"-o", "KbdInteractiveAuthentication=no",
		"-o", "HostbasedAuthentication=no",
		"-o", "GSSAPIAuthentication=no",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityFile="+h.Identity,
		"-o", "AddKeysToAgent=no",
	)
	if h.Agent != "" {
		o = append(o, "-o", "IdentityAgent="+h.Agent)
	} else {
		o = append(o, "-o", "IdentityAgent=none")
	}
	o = append(o,
		"-o", "ConnectTimeout="+seconds(f.ConnectTimeout),
		"-o", "ConnectionAttempts=1",
		"-o", "ServerAliveInterval="+seconds(f.AliveInterval),
		"-o", "ServerAliveCountMax="+strconv.Itoa(f.AliveCount),
		"-o", "LogLevel=ERROR",
	)
	c.opts = o
}

// reuse returns the connection-reuse options: a master in the hub's
// private state directory, kept f.Persist after the last session.
func (c *conn) reuse(f *policy.Fleet) []string {
	if c.controlPath == "" {
		return []string{"-o", "ControlMaster=no", "-o", "ControlPath=none"}
	}
	return []string{"-o", "ControlMaster=auto", "-o", "ControlPath=" + c.controlPath, "-o", "ControlPersist=" + seconds(f.Persist)}
}

// argv is the whole ssh command for one remote command (the encoded
// request), logging to logFile. mux false opens a connection of its own.
func (c *conn) argv(f *policy.Fleet, remoteCmd, logFile string, mux bool) []string {
	a := []string{f.SSH}
	a = append(a, c.opts...)
	if mux {
		a = append(a, c.reuse(f)...)
	} else {
		a = append(a, "-o", "ControlMaster=no", "-o", "ControlPath=none")
	}
	a = append(a, "-E", logFile, "-p", strconv.Itoa(c.host.Port), "-l", c.host.User, "--", c.host.Address, remoteCmd)
	return a
}

// alias is the name the pinned key is filed under.
func alias(h *policy.Host) string { return "relay-host-" + h.Name }

// knownHostsLine is the relay-managed known_hosts entry for a pinned key.
func knownHostsLine(h *policy.Host) string { return alias(h) + " " + h.HostKey + "\n" }

// controlName names a host's control socket by everything that decides
// where the connection goes and whom it trusts, so that a config change
// never reuses a connection made under the old one: the destination, the
// options, and pins, the pinned host keys and the identity (a re-pinned
// key of the same type changes no option, but must not ride on a
// connection checked against the old one).
func controlName(h *policy.Host, opts []string, pins []byte) string {
	s := sha256.New()
	fmt.Fprintf(s, "%s\x00%s\x00%d\x00%s\x00", h.Name, h.Destination(), h.Port, strings.Join(opts, "\x00"))
	s.Write(pins)
	return hex.EncodeToString(s.Sum(nil))[:12]
}

func controlPath(dir string, h *policy.Host, opts []string, pins []byte) string {
	return filepath.Join(dir, controlName(h, opts, pins))
}

// pins is what a connection to h trusts, for its control socket's name:
// the pinned key, or the known_hosts file's content, and the identity's
// (a hash of the private key file: a rotated hub key opens a new
// connection too). A file that cannot be read counts as empty: ssh then
// fails on it by itself.
func pins(h *policy.Host) []byte {
	s := sha256.New()
	fmt.Fprintf(s, "%s\x00", h.HostKey)
	for _, f := range []string{h.KnownHosts, h.Identity} {
		if f == "" {
			continue
		}
		b, _ := os.ReadFile(f)
		fmt.Fprintf(s, "%d\x00", len(b))
		s.Write(b)
	}
	return s.Sum(nil)
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

// PinKnownHosts writes the relay-managed known_hosts entry for h's pinned
// key (h.HostKey) to path, 0600, and returns path: ssh looks the pin up by
// h's alias, never by a name or an address the network controls.
func PinKnownHosts(path string, h *policy.Host) (string, error) {
	if h.HostKey == "" {
		return "", fmt.Errorf("pin the host key of %s: no host key", h.Name)
	}
	if err := atomicfile.WriteFile(path, []byte(knownHostsLine(h)), 0o600); err != nil {
		return "", fmt.Errorf("pin the host key of %s: %w", h.Name, err)
	}
	return path, nil
}

// SSHArgv is the whole ssh command that sends one remote command to h, with
// the hub's audited option set (see build) and a connection of its own:
// the known_hosts file knownHosts pins the host key (PinKnownHosts writes
// one for h.HostKey), StrictHostKeyChecking, BatchMode, IdentitiesOnly, no
// ssh_config, agent, X11, port forwarding or tty. ssh logs to logFile.
// Other relay commands that reach a host over ssh (relay audit witness)
// use it, so that there is one option list to audit.
func SSHArgv(f *policy.Fleet, h *policy.Host, knownHosts, remoteCmd, logFile string) []string {
	c := &conn{host: h, knownHosts: knownHosts}
	c.build(f)
	return c.argv(f, remoteCmd, logFile, false)
}

// SSHArgvShared is SSHArgv over a connection shared between the calls of
// one caller: the first opens a master on the control socket controlPath,
// kept f.Persist after its last session, and the others ride on it, so
// that they cost a session, not a handshake. controlPath must be in a
// directory only the caller can reach (ControlPathFits bounds its length),
// and fresh: a master is trusted as the first call checked it. SSHStopArgv
// closes it.
func SSHArgvShared(f *policy.Fleet, h *policy.Host, knownHosts, controlPath, remoteCmd, logFile string) []string {
	c := &conn{host: h, knownHosts: knownHosts, controlPath: controlPath}
	c.build(f)
	return c.argv(f, remoteCmd, logFile, true)
}

// SSHStopArgv asks the master on controlPath to exit.
func SSHStopArgv(f *policy.Fleet, controlPath string) []string {
	return []string{f.SSH, "-F", "none", "-o", "ControlPath=" + controlPath, "-O", "exit", "relay-host"}
}

// ControlPathFits reports whether ssh can create a control socket at p.
func ControlPathFits(p string) bool { return len(p) <= maxControlPath }
