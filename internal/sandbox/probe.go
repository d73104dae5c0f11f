package sandbox

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	tr "github.com/relaychat/relay/internal/sandbox/trampoline"
)

// Capabilities is what this kernel, in this process's context, can enforce.
type Capabilities struct {
	// LandlockABI is the Landlock ABI version; 0 means Landlock is unusable
	// and LandlockErr says why.
	LandlockABI int
	LandlockErr string
	// LandlockUDP reports that Landlock can govern UDP (a newer ABI).
	LandlockUDP bool
	// LandlockUnix reports that Landlock can govern connecting to
	// pathname unix sockets (LANDLOCK_ACCESS_FS_RESOLVE_UNIX, a newer ABI).
	LandlockUnix bool
	// UserNS reports that a user namespace with mount, pid, net, ipc and
	// uts namespaces can be created; UserNSErr says why not.
	UserNS    bool
	UserNSErr string
	// NetNS reports that a network namespace can be created the way Wrap
	// creates one for a command without network: directly as root,
	// inside a user namespace otherwise.
	NetNS    bool
	NetNSErr string
	// Root reports that the relay runs as root, so commands run as nobody
	// and a network namespace needs no user namespace.
	Root bool
}

// Probe reports what this kernel can enforce. The result is computed once
// per process: neither Landlock nor a seccomp filter can change under a
// running process.
func Probe() Capabilities { return probeOnce() }

var probeOnce = sync.OnceValue(probe)

func probe() Capabilities {
	c := Capabilities{Root: os.Geteuid() == 0}
	c.LandlockABI, c.LandlockErr = tr.ABI()
	if c.LandlockABI > 0 {
		if err := tr.TryRuleset(tr.FSRights(1), 0, 0); err != nil {
			c.LandlockABI, c.LandlockErr = 0, "landlock_create_ruleset: "+err.Error()
		}
	}
	if c.LandlockABI >= 4 {
		c.LandlockUDP = tr.TryRuleset(tr.FSRights(1), tr.NetUDP, 0) == nil
	}
	if c.LandlockABI >= minABI {
		c.LandlockUnix = tr.TryRuleset(tr.FSRights(c.LandlockABI)|tr.AccessFSResolveUnix, 0, 0) == nil
	}
	if err := probeClone(nsFlags|unix.CLONE_NEWNET, c.Root); err != nil {
		c.UserNSErr = err.Error()
	} else {
		c.UserNS = true
	}
	netFlags := uintptr(unix.CLONE_NEWNET)
	if !c.Root {
		netFlags |= unix.CLONE_NEWUSER
	}
	if err := probeClone(netFlags, c.Root); err != nil {
		c.NetNSErr = err.Error()
	} else {
		c.NetNS = true
	}
	return c
}

// probeClone starts true(1) in exactly the namespaces Wrap would ask for,
// with the mappings it would write.
func probeClone(flags uintptr, isRoot bool) error {
	var path string
	for _, p := range []string{"/usr/bin/true", "/bin/true"} {
		if _, err := os.Stat(p); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		return errors.New("cannot probe user namespaces: no true(1) in /usr/bin or /bin")
	}
	attr := &syscall.ProcAttr{Env: []string{}, Sys: &syscall.SysProcAttr{Cloneflags: flags}}
	if flags&unix.CLONE_NEWUSER != 0 {
		setMappings(attr.Sys, isRoot)
	}
	pid, err := syscall.ForkExec(path, []string{path}, attr)
	if err != nil {
		return fmt.Errorf("cannot create namespaces: %w (check sysctl user.max_user_namespaces and kernel.unprivileged_userns_clone, AppArmor's userns restriction, or systemd's RestrictNamespaces=)", err)
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("wait for namespace probe: %w", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("namespace probe failed with status %v", ws)
	}
	return nil
}

// Check is one line of a capability report.
type Check struct {
	Name   string // what is checked, e.g. "landlock"
	OK     bool
	Detail string
}

// Report lists what this kernel offers, one Check per feature, for
// `relay sandbox check` and `relay doctor`.
func (c Capabilities) Report() []Check {
	var cs []Check
	ll := Check{Name: "landlock", OK: c.LandlockABI >= minABI}
	switch {
	case c.LandlockABI == 0:
		ll.Detail = "unavailable: " + c.LandlockErr
	case c.LandlockABI < minABI:
		ll.Detail = fmt.Sprintf("ABI %d is too old: the sandbox needs ABI %d (Linux >= 6.2) for filesystem rules including truncate", c.LandlockABI, minABI)
	default:
		ll.Detail = fmt.Sprintf("ABI %d: filesystem rules", c.LandlockABI)
	}
	cs = append(cs, ll)
	cs = append(cs, Check{Name: "landlock tcp", OK: c.LandlockABI >= 4, Detail: abiDetail(c.LandlockABI, 4, "tcp bind and connect rules (connect_ports)")})
	cs = append(cs, Check{Name: "landlock udp", OK: c.LandlockUDP, Detail: map[bool]string{true: "udp rules", false: "no udp rules: with connect_ports, udp stays reachable"}[c.LandlockUDP]})
	cs = append(cs, Check{Name: "landlock unix", OK: c.LandlockUnix, Detail: map[bool]string{true: "pathname unix socket rules", false: "no pathname unix socket rules: a command can connect to any unix socket its uid may open, so keep the relay's user out of groups such as docker"}[c.LandlockUnix]})
	cs = append(cs, Check{Name: "landlock ioctl", OK: c.LandlockABI >= 5, Detail: abiDetail(c.LandlockABI, 5, "device ioctl rules")})
	cs = append(cs, Check{Name: "landlock scope", OK: c.LandlockABI >= 6, Detail: abiDetail(c.LandlockABI, 6, "signal and abstract unix socket scoping (needed without namespaces)")})
	ns := Check{Name: "namespaces", OK: c.UserNS, Detail: "user, mount, pid, net, ipc, uts"}
	if !c.UserNS {
		ns.Detail = "unavailable: " + c.UserNSErr
	}
	cs = append(cs, ns)
	nn := Check{Name: "network namespace", OK: c.NetNS, Detail: "for commands without network"}
	if !c.NetNS {
		nn.Detail = "unavailable, commands without network are refused: " + c.NetNSErr
	}
	cs = append(cs, nn)
	id := Check{Name: "identity", OK: true, Detail: "commands keep the relay's uid"}
	if c.Root {
		id.Detail = fmt.Sprintf("relay runs as root: commands run as uid and gid %d", nobodyID)
	}
	cs = append(cs, id)
	cs = append(cs, Check{Name: "rlimits", OK: true, Detail: "cpu, nofile, fsize, core=0, nproc, as"})
	return cs
}

func abiDetail(have, want int, what string) string {
	if have >= want {
		return what
	}
	return fmt.Sprintf("needs ABI %d, have %d: no %s", want, have, what)
}
