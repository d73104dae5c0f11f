package trampoline

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

type rulesetAttr struct {
	handledFS  uint64
	handledNet uint64
	scoped     uint64
}

type pathBeneathAttr struct {
	allowed  uint64
	parentFD int32
} // the kernel's struct is packed: it reads 12 bytes

type netPortAttr struct {
	allowed uint64
	port    uint64
}

type openHow struct {
	flags   uint64
	mode    uint64
	resolve uint64
}

// ABI returns the Landlock ABI version, or 0 and why it is unusable.
func ABI() (int, string) {
	r, _, e := syscall.RawSyscall(sysLandlockCreate, 0, 0, landlockCreateRulesetVersion)
	switch e {
	case 0:
		return int(r), ""
	case syscall.ENOSYS:
		return 0, "landlock is not built into this kernel, or a seccomp filter blocks it (needs Linux >= 6.2 with CONFIG_SECURITY_LANDLOCK)"
	case syscall.EOPNOTSUPP:
		return 0, "landlock is built in but not enabled (add landlock to the lsm= kernel parameter)"
	default:
		return 0, "landlock_create_ruleset: " + e.Error() + " (a seccomp filter may block it)"
	}
}

// TryRuleset reports whether the kernel accepts a ruleset handling fs, net
// and scope: how the sandbox probes rights newer than the ABI it knows.
func TryRuleset(fs, net, scope uint64) error {
	attr := rulesetAttr{fs, net, scope}
	size := uintptr(8)
	switch {
	case scope != 0:
		size = 24
	case net != 0:
		size = 16
	}
	fd, _, e := syscall.RawSyscall(sysLandlockCreate, uintptr(unsafe.Pointer(&attr)), size, 0)
	if e != 0 {
		return e
	}
	syscall.Close(int(fd))
	return nil
}

// ruleset builds the Landlock ruleset s describes and returns its
// descriptor; the forked child enforces it with landlock_restrict_self.
func ruleset(s *Spec) (int, error) {
	abi, why := ABI()
	if abi < s.ABI {
		if abi == 0 {
			return -1, errors.New("landlock: " + why)
		}
		return -1, errors.New("landlock ABI " + strconv.Itoa(abi) + ", profile needs " + strconv.Itoa(s.ABI))
	}
	attr := rulesetAttr{s.FS, s.Net, s.Scope}
	size := uintptr(8)
	switch {
	case s.ABI >= 6:
		size = 24
	case s.ABI >= 4:
		size = 16
	}
	r, _, e := syscall.RawSyscall(sysLandlockCreate, uintptr(unsafe.Pointer(&attr)), size, 0)
	if e != 0 {
		return -1, errno("landlock_create_ruleset", e)
	}
	rs := int(r)
	fail := func(err error) (int, error) {
		syscall.Close(rs)
		return -1, err
	}
	for _, rl := range s.Rules {
		fd, e := openPath(rl.Path)
		if e != 0 {
			if rl.Optional && e == syscall.ENOENT {
				continue
			}
			return fail(errno("open "+strconv.Quote(rl.Path)+" for a landlock rule", e))
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			syscall.Close(fd)
			return fail(errors.New("stat " + strconv.Quote(rl.Path) + ": " + err.Error()))
		}
		access := rl.Access
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			access &= FileRights
		}
		pb := pathBeneathAttr{allowed: access, parentFD: int32(fd)}
		_, _, e = syscall.RawSyscall6(sysLandlockAddRule, uintptr(rs), landlockRulePathBeneath, uintptr(unsafe.Pointer(&pb)), 0, 0, 0)
		syscall.Close(fd)
		if e != 0 {
			return fail(errno("landlock rule for "+strconv.Quote(rl.Path), e))
		}
	}
	for _, p := range s.Ports {
		np := netPortAttr{allowed: AccessNetConnectTCP, port: uint64(p)}
		_, _, e := syscall.RawSyscall6(sysLandlockAddRule, uintptr(rs), landlockRuleNetPort, uintptr(unsafe.Pointer(&np)), 0, 0, 0)
		if e != 0 {
			return fail(errno("landlock rule for tcp port "+strconv.Itoa(int(p)), e))
		}
	}
	return rs, nil
}

// openPath opens p as an O_PATH descriptor without following any symlink:
// Wrap resolved the paths, so a symlink here was swapped in since.
func openPath(p string) (int, syscall.Errno) {
	b, err := syscall.BytePtrFromString(p)
	if err != nil {
		return -1, syscall.EINVAL
	}
	how := openHow{flags: oPath | syscall.O_CLOEXEC, resolve: resolveNoSymlinks | resolveNoMagiclinks}
	dirfd := atFDCWD
	fd, _, e := syscall.Syscall6(sysOpenat2, uintptr(dirfd), uintptr(unsafe.Pointer(b)), uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
	if e == syscall.ENOSYS {
		// systemd's RestrictSUIDSGID= (set by relay.service) makes
		// openat2 fail with ENOSYS, since a filter cannot read its
		// flags: walk the path instead, to the same effect.
		return openPathWalk(p)
	}
	if e != 0 {
		return -1, e
	}
	return int(fd), 0
}

// openPathWalk is openPath one component at a time: each is opened
// O_PATH|O_NOFOLLOW beneath the last, and a symlink anywhere, the last
// component included, is ELOOP, as RESOLVE_NO_SYMLINKS makes it.
func openPathWalk(p string) (int, syscall.Errno) {
	if !strings.HasPrefix(p, "/") {
		return -1, syscall.EINVAL
	}
	dir, err := syscall.Open("/", oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, err.(syscall.Errno)
	}
	for _, c := range strings.Split(p[1:], "/") {
		if c == "" || c == "." {
			continue
		}
		b, err := syscall.BytePtrFromString(c)
		if err != nil {
			syscall.Close(dir)
			return -1, syscall.EINVAL
		}
		r, _, e := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(dir), uintptr(unsafe.Pointer(b)), oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0, 0, 0)
		syscall.Close(dir)
		if e != 0 {
			return -1, e
		}
		dir = int(r)
		var st syscall.Stat_t
		if err := syscall.Fstat(dir, &st); err != nil {
			syscall.Close(dir)
			return -1, err.(syscall.Errno)
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			syscall.Close(dir)
			return -1, syscall.ELOOP
		}
	}
	return dir, 0
}
