package sandbox

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	tr "github.com/relaychat/relay/internal/sandbox/trampoline"
)

// Capabilities is what this host, in this process's context, can enforce.
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
	// UserNS reports that the namespaces every command runs in (user,
	// mount, pid, ipc, uts, cgroup and net) can be created with the setup
	// capabilities the trampoline needs; UserNSErr says why not.
	UserNS    bool
	UserNSErr string
	// Seccomp reports that a seccomp filter can be installed for this
	// architecture; SeccompErr says why not.
	Seccomp    bool
	SeccompErr string
	// Root reports that the relay runs as root, so commands run as the
	// configured command user.
	Root bool
}

// Probe reports what this host can enforce. The result is computed once
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
	if err := probeSeccomp(); err != nil {
		c.SeccompErr = err.Error()
	} else {
		c.Seccomp = true
	}
	if err := probeClone(c.Root); err != nil {
		c.UserNSErr = err.Error()
	} else {
		c.UserNS = true
	}
	return c
}

// probeSeccomp checks that the kernel takes filters and that the filter
// knows this architecture.
func probeSeccomp() error {
	if _, err := tr.NewFilter(nil); err != nil {
		return fmt.Errorf("no filter for %s: %w", runtime.GOARCH, err)
	}
	const getActionAvail, retErrno = 2, 0x00050000
	action := uint32(retErrno)
	if _, _, e := syscall.RawSyscall(tr.SysSeccomp, getActionAvail, 0, uintptr(unsafe.Pointer(&action))); e != 0 {
		return fmt.Errorf("the kernel does not take seccomp filters: %v (needs CONFIG_SECCOMP_FILTER)", e)
	}
	return nil
}

// probeClone starts true(1) in exactly the namespaces Wrap asks for, with
// the mappings and setup capabilities it asks for.
func probeClone(isRoot bool) error {
	var path string
	for _, p := range []string{"/usr/bin/true", "/bin/true"} {
		if _, err := os.Stat(p); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		return errors.New("cannot probe namespaces: no true(1) in /usr/bin or /bin")
	}
	sys := &syscall.SysProcAttr{Cloneflags: nsFlags | unix.CLONE_NEWNET, AmbientCaps: setupCaps}
	id := Identity{UID: os.Getuid(), GID: os.Getgid()}
	if isRoot {
		// The probe's own identity: root maps itself.
		sys.AmbientCaps = nil
	}
	sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: id.UID, HostID: id.UID, Size: 1}}
	sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: id.GID, HostID: id.GID, Size: 1}}
	attr := &syscall.ProcAttr{Env: []string{}, Sys: sys}
	pid, err := syscall.ForkExec(path, []string{path}, attr)
	if err != nil {
		return fmt.Errorf("cannot create user, mount, pid, ipc, uts, cgroup and network namespaces: %w (check sysctl user.max_user_namespaces and kernel.unprivileged_userns_clone, Ubuntu's kernel.apparmor_restrict_unprivileged_userns (load deploy/apparmor/relay), or systemd's RestrictNamespaces=)", err)
	}
	ws, err := wait(pid)
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

// Report lists what this host offers, one Check per feature, for
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
	cs = append(cs, Check{Name: "landlock unix", OK: true, Detail: map[bool]string{true: "pathname unix socket rules, on top of the view", false: "no pathname unix socket rules: the view alone keeps host sockets out (only sandbox.sockets are bound in)"}[c.LandlockUnix]})
	cs = append(cs, Check{Name: "landlock ioctl", OK: c.LandlockABI >= 5, Detail: abiDetail(c.LandlockABI, 5, "device ioctl rules")})
	cs = append(cs, Check{Name: "landlock scope", OK: c.LandlockABI >= 6, Detail: abiDetail(c.LandlockABI, 6, "signal and abstract unix socket scoping (needed with network or connect_ports)")})
	ns := Check{Name: "namespaces", OK: c.UserNS, Detail: "user, mount, pid, ipc, uts, cgroup, net: every command gets its own"}
	if !c.UserNS {
		ns.Detail = "unavailable, sandboxed commands are refused: " + c.UserNSErr
	}
	cs = append(cs, ns)
	sc := Check{Name: "seccomp", OK: c.Seccomp, Detail: "system call filter for " + runtime.GOARCH}
	if !c.Seccomp {
		sc.Detail = "unavailable, sandboxed commands are refused: " + c.SeccompErr
	}
	cs = append(cs, sc)
	id := Check{Name: "identity", OK: true, Detail: "commands keep the relay's uid; the view keeps the relay's files away"}
	if c.Root {
		id.Detail = "relay runs as root: commands run as the command user (command_user)"
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

// wait reaps pid, retrying when a signal interrupts it.
func wait(pid int) (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws, err
		}
	}
}
