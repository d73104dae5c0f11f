package trampoline

import (
	"syscall"
	"unsafe"
)

const (
	prCapAmbient         = 47
	prCapAmbientClearAll = 4
	prCapbsetDrop        = 24
	capVersion3          = 0x20080522
	closeRangeCloexec    = 1 << 2
	sigSetmask           = 2
	sigsetSize           = 8
	// lastCap bounds the bounding-set sweep; PR_CAPBSET_DROP of a
	// capability the kernel does not know fails with EINVAL, ignored.
	lastCap = 63
)

// Stages of the command's start, reported by a child that failed before
// execve so the trampoline's init can say what failed.
const (
	stageSetpgid = iota + 1
	stageRlimit
	stageCloseRange
	stageAmbient
	stageBounding
	stageCapset
	stageNoNewPrivs
	stageLandlock
	stageSeccomp
	stageSigmask
	stageExecve
)

var stageNames = [...]string{
	stageSetpgid:    "setpgid",
	stageRlimit:     "set rlimit",
	stageCloseRange: "close_range",
	stageAmbient:    "clear ambient capabilities",
	stageBounding:   "drop the capability bounding set",
	stageCapset:     "drop capabilities",
	stageNoNewPrivs: "set no_new_privs",
	stageLandlock:   "landlock_restrict_self",
	stageSeccomp:    "install the seccomp filter",
	stageSigmask:    "restore the signal mask",
	stageExecve:     "execve",
}

type rlimit struct{ cur, max uint64 }

type limit struct {
	res uintptr
	lim rlimit
}

type capHeader struct {
	version uint32
	pid     int32
}

type capData struct{ effective, permitted, inheritable uint32 }

// sigaction is the kernel's struct sigaction; all zero is SIG_DFL.
type sigaction struct {
	handler, flags, restorer uintptr
	mask                     uint64
}

// plan is everything the forked child needs, prepared before the fork:
// after it the child may only make raw system calls on memory that
// already exists.
type plan struct {
	argv0   *byte
	argv    []*byte // NUL-terminated
	envp    []*byte // NUL-terminated
	limits  []limit
	ruleset uintptr
	prog    uintptr // struct sock_fprog
	errFD   uintptr // write end of the exec-error pipe (close-on-exec)
	hdr     capHeader
	data    [2]capData
	dfl     sigaction
	all     uint64 // the full signal mask
	none    uint64
}

// forkCommand forks and, in the child, confines it the rest of the way and
// execve's the command. Signals are blocked across the fork so that no Go
// signal handler ever runs in the child; the child resets every handler to
// the default before it unblocks them.
//
//go:norace
//go:nosplit
func forkCommand(p *plan) (pid int, e syscall.Errno) {
	var old uint64
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigSetmask, uintptr(unsafe.Pointer(&p.all)), uintptr(unsafe.Pointer(&old)), sigsetSize, 0, 0)
	r, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if r == 0 && e == 0 {
		child(p) // never returns
	}
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigSetmask, uintptr(unsafe.Pointer(&old)), 0, sigsetSize, 0, 0)
	return int(r), e
}

// child runs in the forked child: one thread, a copy of the parent's
// memory, nothing but raw system calls, no allocation, no stack growth.
// The seccomp filter comes last but for what execve itself needs.
//
//go:norace
//go:nosplit
func child(p *plan) {
	var rep [2]uint32
	var e syscall.Errno
	if _, _, e = syscall.RawSyscall(syscall.SYS_SETPGID, 0, 0, 0); e != 0 {
		rep[0] = stageSetpgid
		goto fail
	}
	for i := 0; i < len(p.limits); i++ {
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, p.limits[i].res, uintptr(unsafe.Pointer(&p.limits[i].lim)), 0, 0, 0); e != 0 {
			rep[0] = stageRlimit
			goto fail
		}
	}
	// Descriptors the relay did not mean to pass are closed by execve.
	if _, _, e = syscall.RawSyscall(sysCloseRange, 3, ^uintptr(0), closeRangeCloexec); e != 0 {
		rep[0] = stageCloseRange
		goto fail
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, prCapAmbient, prCapAmbientClearAll, 0, 0, 0, 0); e != 0 {
		rep[0] = stageAmbient
		goto fail
	}
	for c := uintptr(0); c <= lastCap; c++ {
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, prCapbsetDrop, c, 0, 0, 0, 0); e != 0 && e != syscall.EINVAL {
			rep[0] = stageBounding
			goto fail
		}
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&p.hdr)), uintptr(unsafe.Pointer(&p.data[0])), 0); e != 0 {
		rep[0] = stageCapset
		goto fail
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); e != 0 {
		rep[0] = stageNoNewPrivs
		goto fail
	}
	if _, _, e = syscall.RawSyscall(sysLandlockRestrictSelf, p.ruleset, 0, 0); e != 0 {
		rep[0] = stageLandlock
		goto fail
	}
	for sig := uintptr(1); sig <= 64; sig++ {
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&p.dfl)), 0, sigsetSize, 0, 0)
	}
	if _, _, e = syscall.RawSyscall(SysSeccomp, setModeFilter, 0, p.prog); e != 0 {
		rep[0] = stageSeccomp
		goto fail
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigSetmask, uintptr(unsafe.Pointer(&p.none)), 0, sigsetSize, 0, 0); e != 0 {
		rep[0] = stageSigmask
		goto fail
	}
	_, _, e = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(p.argv0)), uintptr(unsafe.Pointer(&p.argv[0])), uintptr(unsafe.Pointer(&p.envp[0])))
	rep[0] = stageExecve
fail:
	rep[1] = uint32(e)
	syscall.RawSyscall(syscall.SYS_WRITE, p.errFD, uintptr(unsafe.Pointer(&rep[0])), unsafe.Sizeof(rep))
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, ExitSetupFailed, 0, 0)
}
