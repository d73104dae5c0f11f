package policy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Fleet holds a hub's settings for reaching its members over OpenSSH.
// Key: fleet. Every field has a default; the section may be left out.
type Fleet struct {
	// SSH is the OpenSSH client (ssh), default /usr/bin/ssh.
	SSH string
	// Parallel is how many hosts one fan-out reaches at once (parallel),
	// default 4; the rest wait for a slot in that fan-out.
	Parallel int
	// MaxCalls bounds remote calls in flight across every fan-out
	// (max_calls), default 16; more are refused, never queued.
	MaxCalls int
	// Timeout is a remote call's default deadline (timeout), default 1m.
	Timeout time.Duration
	// MaxOutput is a remote call's default output cap (max_output),
	// default 16MiB; at most limits.max_output.
	MaxOutput int64
	// ConnectTimeout is ssh's ConnectTimeout (connect_timeout), default 10s.
	ConnectTimeout time.Duration
	// AliveInterval and AliveCount are ssh's ServerAliveInterval and
	// ServerAliveCountMax (alive_interval, default 15s; alive_count,
	// default 3): a member that stops answering is given up after their
	// product.
	AliveInterval time.Duration
	AliveCount    int
	// Persist is ssh's ControlPersist (persist), default 60s: how long an
	// idle connection to a member is kept for reuse. 0 opens a new
	// connection for every call.
	Persist time.Duration
}

// Host is one member a hub reaches. Key: hosts.<name>.
type Host struct {
	Name    string // 1-32 of a-z, 0-9, - and _, starting with a letter or digit; never "all"
	User    string // the member account (address: user@host)
	Address string // a DNS name or an IP address
	Port    int    // port, default 22
	// HostKey is the pinned host key, "type base64" (host_key). Exactly
	// one of HostKey and KnownHosts is set: there is no trust on first use.
	HostKey string
	// KnownHosts is a known_hosts file that pins the key (known_hosts),
	// matched by address and port as OpenSSH does.
	KnownHosts string
	// Identity is the private key file (identity), or, with Agent, the
	// public key of the agent's key to use.
	Identity string
	// Agent is an ssh-agent socket holding the key (agent); "" means the
	// key file itself is used and no agent is asked.
	Agent     string
	Timeout   time.Duration // timeout, default fleet.timeout
	MaxOutput int64         // max_output, default fleet.max_output
	Line      int
}

// Group names several hosts at once. Key: groups.<name>, a list of host
// names.
type Group struct {
	Name  string
	Hosts []string
	Line  int
}

// Member marks the file as a fleet member's config: one that `relay
// serve-ssh` serves to a hub. With it, auth.owner_id may be left out (the
// owner is in the hub's chat; relay run then refuses this file). Key:
// member, a mapping, possibly empty.
type Member struct {
	// HubKeys, when set, lists the SHA256 fingerprints of the hub keys
	// serve-ssh accepts (hub_keys, "SHA256:…" as ssh-keygen -l prints
	// them). It needs sshd's ExposeAuthInfo yes, and refuses a call whose
	// key sshd does not name: defense in depth for a ForceCommand that
	// applies to every key of the account.
	HubKeys []string
}

// AllHosts is the group name that means every host; no host or group may
// take it.
const AllHosts = "all"

// Host returns the host called name, or nil.
func (c *Config) Host(name string) *Host {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Group returns the group called name, or nil ("all" is not a Group).
func (c *Config) Group(name string) *Group {
	for _, g := range c.Groups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// Destination is the host as ssh's -l and host arguments: user and address.
func (h *Host) Destination() string { return h.User + "@" + h.Address }

// KeyType is the pinned key's algorithm, "" without a pinned key.
func (h *Host) KeyType() string {
	t, _, _ := strings.Cut(h.HostKey, " ")
	return t
}

// Fingerprint is the pinned key's SHA256 fingerprint as ssh-keygen -l
// prints it, "" without a pinned key.
func (h *Host) Fingerprint() string {
	_, b64, ok := strings.Cut(h.HostKey, " ")
	if !ok {
		return ""
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return ""
	}
	return KeyFingerprint(blob)
}

// KeyFingerprint is the SHA256 fingerprint of a key blob, as ssh-keygen
// -l prints it: "SHA256:" and unpadded base64.
func KeyFingerprint(blob []byte) string {
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

var (
	hostName  = lazyre.New(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	sshUser   = lazyre.New(`^[a-z_][a-z0-9_.-]{0,31}$`)
	dnsName   = lazyre.New(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
	hubKeyFP  = lazyre.New(`^SHA256:[A-Za-z0-9+/]{43}$`)
	hostNames = "1-32 of a-z, 0-9, - and _, starting with a letter or digit"
)

// keyTypes are the host key algorithms a pin may name, each with what
// ssh's HostKeyAlgorithms must offer to get a key of that type.
var keyTypes = map[string]string{
	"ssh-ed25519":         "ssh-ed25519",
	"ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
	"ssh-rsa":             "rsa-sha2-512,rsa-sha2-256",
}

// HostKeyAlgorithms is what ssh must negotiate to see the pinned key: a
// member offering only another type fails, never falls back to it.
func (h *Host) HostKeyAlgorithms() string { return keyTypes[h.KeyType()] }

func (d *decoder) member(n *yaml.Node, m *Member) map[string]*yaml.Node {
	return d.mapping(n, "member", []field{
		{"hub_keys", func(v *yaml.Node) {
			d.list(v, "member.hub_keys", func(i int, e *yaml.Node) {
				w := fmt.Sprintf("member.hub_keys[%d]", i)
				var s string
				d.str(e, w, &s)
				if s == "" {
					return
				}
				if !hubKeyFP().MatchString(s) {
					d.errAt(e, "use the fingerprint ssh-keygen -lf hub_key.pub prints: SHA256: and 43 characters", "%s: %s is not a SHA256 key fingerprint", w, show(s))
					return
				}
				if slices.Contains(m.HubKeys, s) {
					d.errAt(e, "", "%s: duplicate %s", w, s)
					return
				}
				m.HubKeys = append(m.HubKeys, s)
			})
		}},
	})
}

func (d *decoder) fleet(n *yaml.Node, f *Fleet) map[string]*yaml.Node {
	return d.mapping(n, "fleet", []field{
		{"ssh", func(v *yaml.Node) { d.str(v, "fleet.ssh", &f.SSH) }},
		{"parallel", func(v *yaml.Node) { d.count(v, "fleet.parallel", &f.Parallel) }},
		{"max_calls", func(v *yaml.Node) { d.count(v, "fleet.max_calls", &f.MaxCalls) }},
		{"timeout", func(v *yaml.Node) { d.duration(v, "fleet.timeout", &f.Timeout) }},
		{"max_output", func(v *yaml.Node) { d.size(v, "fleet.max_output", &f.MaxOutput) }},
		{"connect_timeout", func(v *yaml.Node) { d.duration(v, "fleet.connect_timeout", &f.ConnectTimeout) }},
		{"alive_interval", func(v *yaml.Node) { d.duration(v, "fleet.alive_interval", &f.AliveInterval) }},
		{"alive_count", func(v *yaml.Node) { d.count(v, "fleet.alive_count", &f.AliveCount) }},
		{"persist", func(v *yaml.Node) { d.duration(v, "fleet.persist", &f.Persist) }},
	})
}

// hostSchema remembers where a host's keys were written.
type hostSchema struct {
	h  *Host
	k  *yaml.Node
	at map[string]*yaml.Node
}

type groupSchema struct {
	g     *Group
	k     *yaml.Node
	elems []*yaml.Node
}

func (d *decoder) hosts(n *yaml.Node) []*hostSchema {
	if !d.kind(n, yaml.MappingNode, "hosts", "a mapping of host names") {
		return nil
	}
	var out []*hostSchema
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, ok := d.key(k, "hosts")
		if !ok {
			continue
		}
		switch {
		case seen[name]:
			d.errAt(k, "", "duplicate host %q", name)
			continue
		case name == AllHosts:
			d.errAt(k, "choose another name", "host name %q is reserved: it means every host", name)
		case !hostName().MatchString(name):
			d.errAt(k, "a host is typed in the chat: "+hostNames, "invalid host name %s", show(name))
		}
		seen[name] = true
		hs := &hostSchema{h: &Host{Name: name, Line: k.Line}, k: k}
		if !d.usable(v, "hosts."+name) {
			continue
		}
		what := "hosts." + name
		h := hs.h
		hs.at = d.mapping(v, what, []field{
			{"address", func(v *yaml.Node) {
				var s string
				d.str(v, what+".address", &s)
				if s != "" {
					d.address(v, what, s, h)
				}
			}},
			{"port", func(v *yaml.Node) { d.count(v, what+".port", &h.Port) }},
			{"host_key", func(v *yaml.Node) {
				var s string
				d.str(v, what+".host_key", &s)
				if s != "" {
					h.HostKey = d.hostKey(v, what, s)
				}
			}},
			{"known_hosts", func(v *yaml.Node) { d.str(v, what+".known_hosts", &h.KnownHosts) }},
			{"identity", func(v *yaml.Node) { d.str(v, what+".identity", &h.Identity) }},
			{"agent", func(v *yaml.Node) { d.str(v, what+".agent", &h.Agent) }},
			{"timeout", func(v *yaml.Node) { d.duration(v, what+".timeout", &h.Timeout) }},
			{"max_output", func(v *yaml.Node) { d.size(v, what+".max_output", &h.MaxOutput) }},
		})
		out = append(out, hs)
	}
	return out
}

// FieldError is a bad value of one field, with the fix: the policy
// loader puts it at its position, the CLI prints it with its hint.
type FieldError struct{ Msg, Hint string }

func (e *FieldError) Error() string { return e.Msg }

// address splits user@host and checks both halves: neither can begin with
// '-' or hold anything ssh would read as more than a name.
func (d *decoder) address(n *yaml.Node, what, s string, h *Host) {
	user, host, err := ParseAddress(s)
	if err != nil {
		d.errAt(n, err.Hint, "%s.address: %s", what, err.Msg)
		return
	}
	h.User, h.Address = user, host
}

// ParseAddress splits an ssh destination, "user@host", and checks both
// halves as a host's address is checked.
func ParseAddress(s string) (user, host string, err *FieldError) {
	user, host, ok := strings.Cut(s, "@")
	if !ok || user == "" || host == "" {
		return "", "", &FieldError{fmt.Sprintf("want user@host, got %s", show(s)), `write the member account and the host: "relay@nas.lan"`}
	}
	if !sshUser().MatchString(user) {
		return "", "", &FieldError{fmt.Sprintf("invalid user %s", show(user)), "a user name is a-z, 0-9, _, . and -, starting with a letter or _"}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if net.ParseIP(host) == nil && (len(host) > 253 || !dnsName().MatchString(host)) {
		return "", "", &FieldError{fmt.Sprintf("invalid host %s", show(host)), "use a DNS name or an IP address"}
	}
	return user, host, nil
}

// hostKey is ParseHostKey for the host_key key.
func (d *decoder) hostKey(n *yaml.Node, what, s string) string {
	k, err := ParseHostKey(s)
	if err != nil {
		d.errAt(n, err.Hint, "%s.host_key: %s", what, err.Msg)
		return ""
	}
	return k
}

// ParseHostKey accepts a public key line ("type base64 [comment]", as in
// /etc/ssh/ssh_host_ed25519_key.pub) or a known_hosts line (a host
// pattern in front, which is dropped: the key is pinned to this entry)
// and returns "type base64".
func ParseHostKey(s string) (string, *FieldError) {
	const hint = "paste the member's /etc/ssh/ssh_host_ed25519_key.pub (its first two fields)"
	f := strings.Fields(s)
	if len(f) > 0 && strings.HasPrefix(f[0], "@") {
		return "", &FieldError{fmt.Sprintf("a %s line does not pin a host key", show(f[0])), hint}
	}
	if len(f) >= 3 && keyTypes[f[0]] == "" && keyTypes[f[1]] != "" {
		f = f[1:]
	}
	if len(f) < 2 {
		return "", &FieldError{fmt.Sprintf("want \"type base64\", got %s", show(s)), hint}
	}
	if keyTypes[f[0]] == "" {
		return "", &FieldError{fmt.Sprintf("unsupported key type %s", show(f[0])), "use an ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa host key"}
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(blob) < 4 {
		return "", &FieldError{"the key is not valid base64", hint}
	}
	l := binary.BigEndian.Uint32(blob)
	if int64(l) > int64(len(blob)-4) || string(blob[4:4+l]) != f[0] {
		return "", &FieldError{fmt.Sprintf("the key data is not a %s key", f[0]), hint}
	}
	return f[0] + " " + f[1], nil
}

func (d *decoder) groups(n *yaml.Node) []*groupSchema {
	if !d.kind(n, yaml.MappingNode, "groups", "a mapping of group names to lists of hosts") {
		return nil
	}
	var out []*groupSchema
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, ok := d.key(k, "groups")
		if !ok {
			continue
		}
		switch {
		case seen[name]:
			d.errAt(k, "", "duplicate group %q", name)
			continue
		case name == AllHosts:
			d.errAt(k, "it is built in: all means every host", "group name %q is reserved", name)
		case !hostName().MatchString(name):
			d.errAt(k, "a group is typed in the chat: "+hostNames, "invalid group name %s", show(name))
		}
		seen[name] = true
		gs := &groupSchema{g: &Group{Name: name, Line: k.Line}, k: k}
		if !d.usable(v, "groups."+name) {
			continue
		}
		d.list(v, "groups."+name, func(i int, e *yaml.Node) {
			var s string
			d.str(e, fmt.Sprintf("groups.%s[%d]", name, i), &s)
			gs.g.Hosts = append(gs.g.Hosts, s)
			gs.elems = append(gs.elems, e)
		})
		out = append(out, gs)
	}
	return out
}

// fleetDefaults fills in the fleet's defaults and checks what needs the
// whole file: limits, host files on this host, group members, and names
// that would collide in the chat.
func (d *decoder) fleetDefaults(c *Config, s *schema) {
	at := s.node
	f := &c.Fleet
	setDefault(&f.SSH, "/usr/bin/ssh")
	setDefault(&f.Parallel, 4)
	setDefault(&f.MaxCalls, 16)
	setDefault(&f.Timeout, time.Minute)
	setDefault(&f.MaxOutput, 16<<20)
	setDefault(&f.ConnectTimeout, 10*time.Second)
	setDefault(&f.AliveInterval, 15*time.Second)
	setDefault(&f.AliveCount, 3)
	if _, ok := s.at["fleet.persist"]; !ok {
		f.Persist = time.Minute
	}
	for _, k := range []struct {
		key string
		v   int64
	}{{"parallel", int64(f.Parallel)}, {"max_calls", int64(f.MaxCalls)}, {"timeout", int64(f.Timeout)}, {"max_output", f.MaxOutput},
		{"connect_timeout", int64(f.ConnectTimeout)}, {"alive_interval", int64(f.AliveInterval)}, {"alive_count", int64(f.AliveCount)}} {
		d.positive(at("fleet."+k.key), "fleet."+k.key, k.v)
	}
	if f.MaxOutput > c.Limits.MaxOutput {
		d.errAt(at("fleet.max_output"), "raise limits.max_output or lower fleet.max_output", "fleet.max_output %d exceeds limits.max_output %d", f.MaxOutput, c.Limits.MaxOutput)
	}
	if f.Parallel > f.MaxCalls {
		d.errAt(at("fleet.parallel"), "", "fleet.parallel %d is more than fleet.max_calls %d", f.Parallel, f.MaxCalls)
	}
	// ssh takes these in whole seconds; a fraction would be cut silently.
	for _, k := range []struct {
		key string
		v   time.Duration
	}{{"persist", f.Persist}, {"connect_timeout", f.ConnectTimeout}, {"alive_interval", f.AliveInterval}} {
		if k.v%time.Second != 0 {
			d.errAt(at("fleet."+k.key), "ssh takes whole seconds", "fleet.%s: %s is not a whole number of seconds", k.key, k.v)
		}
	}
	if _, ok := s.at["fleet.ssh"]; ok || len(s.hosts) > 0 {
		if d.absPath(at("fleet.ssh"), "fleet.ssh", f.SSH, "") {
			d.executable(at("fleet.ssh"), "fleet", f.SSH)
		}
	}

	hosts := map[string]bool{}
	for _, hs := range s.hosts {
		h := hs.h
		hosts[h.Name] = true
		what := "hosts." + h.Name
		hat := func(k string) *yaml.Node {
			if n := hs.at[k]; n != nil {
				return n
			}
			return hs.k
		}
		if hs.at == nil {
			continue
		}
		if _, ok := hs.at["address"]; !ok {
			d.errAt(hs.k, `add address: relay@HOST, the member account and its address`, "%s: address is required", what)
		}
		setDefault(&h.Port, 22)
		if h.Port < 1 || h.Port > 65535 {
			d.errAt(hat("port"), "", "%s.port: %d is out of range 1-65535", what, h.Port)
		}
		switch _, key := hs.at["host_key"]; {
		case key && h.KnownHosts != "":
			d.errAt(hat("known_hosts"), "pin the key one way: host_key or known_hosts", "%s: host_key and known_hosts exclude each other", what)
		case !key && h.KnownHosts == "":
			d.errAt(hs.k, "add host_key: with the member's /etc/ssh/ssh_host_ed25519_key.pub; relay never trusts a host key on first use", "%s: no pinned host key (host_key or known_hosts)", what)
		case h.KnownHosts != "":
			d.existingFile(hat("known_hosts"), what+".known_hosts", h.KnownHosts)
		}
		if h.Identity == "" {
			d.errAt(hs.k, "add identity: the hub's private key file for this host (ssh-keygen -t ed25519 -f /etc/relay/hub_ed25519)", "%s: identity is required", what)
		} else if d.absPath(hat("identity"), what+".identity", h.Identity, "") {
			h.Identity = filepath.Clean(h.Identity)
			d.existingFile(hat("identity"), what+".identity", h.Identity)
			if h.Agent == "" {
				d.privateFile(hat("identity"), what+".identity", h.Identity)
			}
		}
		if h.Agent != "" {
			d.absPath(hat("agent"), what+".agent", h.Agent, "")
		}
		if _, ok := hs.at["timeout"]; !ok {
			h.Timeout = f.Timeout
		}
		if _, ok := hs.at["max_output"]; !ok {
			h.MaxOutput = f.MaxOutput
		}
		d.positive(hat("timeout"), what+".timeout", int64(h.Timeout))
		d.positive(hat("max_output"), what+".max_output", h.MaxOutput)
		// An inherited cap over the limit is fleet.max_output's error.
		if _, own := hs.at["max_output"]; own && h.MaxOutput > c.Limits.MaxOutput {
			d.errAt(hat("max_output"), "raise limits.max_output or lower max_output", "%s.max_output %d exceeds limits.max_output %d", what, h.MaxOutput, c.Limits.MaxOutput)
		}
		c.Hosts = append(c.Hosts, h)
	}
	for _, gs := range s.groups {
		g := gs.g
		if hosts[g.Name] {
			d.errAt(gs.k, "a name in /on must mean one thing: rename the group or the host", "group %q has the name of a host", g.Name)
		}
		if len(g.Hosts) == 0 && len(gs.elems) == 0 {
			d.errAt(gs.k, "list its hosts: web: [web1, web2]", "group %q is empty", g.Name)
		}
		seen := map[string]bool{}
		for i, name := range g.Hosts {
			n := gs.k
			if i < len(gs.elems) {
				n = gs.elems[i]
			}
			switch {
			case seen[name]:
				d.errAt(n, "", "groups.%s: %q is listed twice", g.Name, name)
			case !hosts[name]:
				names := make([]string, 0, len(hosts))
				for _, hs := range s.hosts {
					names = append(names, hs.h.Name)
				}
				d.errAt(n, didYouMean(name, names), "groups.%s: no host %s", g.Name, show(name))
			}
			seen[name] = true
		}
		c.Groups = append(c.Groups, g)
	}
}

// privateFile refuses a key file others may read: ssh refuses it too, but
// only when a call is made, and with a message about ssh.
func (d *decoder) privateFile(n *yaml.Node, what, p string) {
	if mode, ok := fileMode(p); ok && mode&0o077 != 0 {
		d.errAt(n, "chmod 600 "+p, "%s: %s is mode %04o, readable by others", what, show(p), mode)
	}
}

// fileMode is p's permission bits, when p can be stat'ed.
func fileMode(p string) (uint32, bool) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, false
	}
	return uint32(fi.Mode().Perm()), true
}
