package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// GroupSocketName is the group socket's file name in notify.dir.
const GroupSocketName = "notify.sock"

// Group is the one local group allowed to notify (notify.group).
type Group struct {
	Name string // as the policy names it; the sender every notification shows
	GID  int
	Dir  string // notify.dir, holding GroupSocketName
}

// GroupPath is the group socket's path.
func (g Group) GroupPath() string { return filepath.Join(g.Dir, GroupSocketName) }

// ServeGroup serves the group socket until ctx is done. It listens only
// once CheckGroup holds, and checks every peer for membership of the group.
func ServeGroup(ctx context.Context, g Group, maxBody int64, h Handler) error {
	if err := CheckGroup(g); err != nil {
		return err
	}
	p := g.GroupPath()
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(p) // a stale socket of a crashed relay
	}
	// The directory is the gate (CheckGroup); the socket itself lets in
	// whoever can reach it, and the peer check decides. In a
	// set-group-ID directory the socket is born with the group, and is
	// then closed to the rest as well.
	mask := 0o111
	if fi, err := os.Lstat(g.Dir); err == nil && fi.Mode()&os.ModeSetgid != 0 {
		mask = 0o117
	}
	old := syscall.Umask(mask)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("notify socket %s: %w", p, err)
	}
	// Notifications only: the audit op is the relay's own programs'.
	return accept(ctx, ln, maxBody, Handlers{Notify: h}, func(c *net.UnixConn) (Peer, error) { return groupPeer(c, g) })
}

// CheckGroup is what ServeGroup requires before it listens, each failure
// with its fix: the relay's own process must not have the group (its
// commands would carry it), and Dir must be a directory (not a symlink)
// owned by the relay's uid, with the group, that the group can enter and
// nobody else can: mode 0750 or stricter, setgid allowed.
func CheckGroup(g Group) error {
	if g.GID <= 0 {
		return fmt.Errorf("notify.group %q: gid %d is not a group of its own", g.Name, g.GID)
	}
	groups, _ := os.Getgroups()
	if os.Getgid() == g.GID || os.Getegid() == g.GID || slices.Contains(groups, g.GID) {
		return fmt.Errorf("notify.group %q: the relay itself is in this group, so every command it runs would be too; take the relay's user out of it (gpasswd -d relay %s)", g.Name, g.Name)
	}
	fix := fmt.Sprintf("install -d -o %d -g %d -m 2750 %s", os.Geteuid(), g.GID, g.Dir)
	fi, err := os.Lstat(g.Dir)
	if err != nil {
		return fmt.Errorf("notify.dir %s: %w (create it: %s)", g.Dir, errors.Unwrap(err), fix)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("notify.dir %s is not a directory (create it: %s)", g.Dir, fix)
	case !ok:
		return fmt.Errorf("notify.dir %s: cannot read its owner", g.Dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("notify.dir %s is owned by uid %d, not the relay's uid %d (%s)", g.Dir, st.Uid, os.Geteuid(), fix)
	case int(st.Gid) != g.GID:
		return fmt.Errorf("notify.dir %s has group %d, not notify.group %s (%d) (%s)", g.Dir, st.Gid, g.Name, g.GID, fix)
	case fi.Mode().Perm()&0o027 != 0:
		return fmt.Errorf("notify.dir %s is mode %#o: others may enter it or the group may write it (chmod 2750 %s)", g.Dir, fi.Mode().Perm(), g.Dir)
	case fi.Mode().Perm()&0o010 == 0:
		return fmt.Errorf("notify.dir %s is mode %#o: the group cannot enter it (chmod 2750 %s)", g.Dir, fi.Mode().Perm(), g.Dir)
	}
	return nil
}

// groupPeer admits a peer of the group socket: its gid or one of its
// supplementary groups, as the kernel recorded them when it connected,
// must be the group. A peer in another pid namespace (Home Assistant in a
// container) is welcome: no command of the relay can be a member (see
// CheckGroup), which is what the pid namespace check of the relay's own
// socket stands in for. What /proc says of the peer is only recorded.
func groupPeer(c *net.UnixConn, g Group) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var groups []uint32
	var cerr, gerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		groups, gerr = peerGroups(int(fd))
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	p := Peer{UID: int(cred.Uid), PID: int(cred.Pid), Group: g.Name}
	if gerr != nil {
		return p, fmt.Errorf("cannot read the groups of uid %d: %v", p.UID, gerr)
	}
	member := int(cred.Gid) == g.GID
	for _, id := range groups {
		member = member || int(id) == g.GID
	}
	if !member {
		return p, fmt.Errorf("uid %d is not in group %s (notify.group)", p.UID, g.Name)
	}
	if p.PID > 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.PID)); err == nil {
			p.Program = strings.TrimSpace(string(b))
		}
	}
	return p, nil
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13): the peer's supplementary
// groups when it connected, translated into the relay's user namespace.
func peerGroups(fd int) ([]uint32, error) {
	n := 64
	for {
		buf := make([]uint32, n)
		size := uint32(4 * n)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == 0:
			return buf[:size/4], nil
		case errno == unix.ERANGE && int(size/4) > n && size/4 <= 65536:
			n = int(size / 4)
		default:
			return nil, errno
		}
	}
}
