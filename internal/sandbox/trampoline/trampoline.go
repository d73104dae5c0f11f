package trampoline

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// Arg is os.Args[1] of a trampoline invocation.
const Arg = "__relay-sandbox"

// ExitSetupFailed is the trampoline's exit status when it could not set up
// the sandbox; the command did not run.
const ExitSetupFailed = 125

// System call numbers and constants the frozen syscall package lacks. The
// numbers from 424 on are the same on every architecture.
const (
	sysCloseRange           = 436
	sysOpenat2              = 437
	sysLandlockCreate       = 444
	sysLandlockAddRule      = 445
	sysLandlockRestrictSelf = 446

	landlockCreateRulesetVersion = 1
	landlockRulePathBeneath      = 1
	landlockRuleNetPort          = 2

	oPath               = 0x200000
	atFDCWD             = -100
	resolveNoMagiclinks = 0x02
	resolveNoSymlinks   = 0x04
	closeRangeCloexec   = 1 << 2
	prSetPdeathsig      = 1
	prSetNoNewPrivs     = 38
	rlimitNproc         = 6
	sigSetmask          = 2
)

func init() {
	if Is(os.Args) {
		Run(os.Args)
	}
}

// Is reports whether args (os.Args) ask for the trampoline.
func Is(args []string) bool { return len(args) > 1 && args[1] == Arg }

// Run confines the current process as the profile in args says and
// execve's the command. It never returns: on any failure it reports one
// line on stderr and exits with ExitSetupFailed.
func Run(args []string) {
	// Landlock and no_new_privs apply to the calling thread, and execve
	// must happen on that same thread.
	runtime.LockOSThread()
	err := run(args)
	if err == nil {
		err = errors.New("execve returned")
	}
	syscall.Write(2, []byte("relay-sandbox: "+err.Error()+"\n"))
	syscall.Exit(ExitSetupFailed)
}

func errno(what string, e syscall.Errno) error { return errors.New(what + ": " + e.Error()) }

func run(args []string) error {
	sep := slices.Index(args, "--")
	if sep < 3 || sep == len(args)-1 {
		return errors.New("usage: " + Arg + " PROFILE [RULE] -- COMMAND [ARG]")
	}
	s, err := Decode(args[2:sep])
	if err != nil {
		return err
	}
	argv := args[sep+1:]
	if !strings.HasPrefix(argv[0], "/") {
		return errors.New("command " + strconv.Quote(argv[0]) + " is not an absolute path")
	}

	// 1. no_new_privs: nothing exec'd can gain privileges (setuid bits,
	// file capabilities), and Landlock needs it without CAP_SYS_ADMIN.
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); e != 0 {
		return errno("set no_new_privs", e)
	}
	// 2. rlimits. NPROC and AS come last, just before execve: an address
	// space limit can crash the Go runtime and a process limit can stop it
	// from starting the threads it wants.
	for _, l := range []struct {
		name     string
		res      int
		cur, max uint64
	}{
		{"cpu", syscall.RLIMIT_CPU, s.CPU, s.CPU + 1}, // SIGXCPU, then SIGKILL a second later
		{"nofile", syscall.RLIMIT_NOFILE, s.NoFile, s.NoFile},
		{"fsize", syscall.RLIMIT_FSIZE, s.FSize, s.FSize},
		{"core", syscall.RLIMIT_CORE, 0, 0},
	} {
		if e := prlimit(l.res, l.cur, l.max); e != 0 {
			return errno("set rlimit "+l.name, e)
		}
	}
	// 3, 4. Landlock filesystem, network and scope rules.
	if err := restrict(s); err != nil {
		return err
	}
	// 5. Stray descriptors. Marking them close-on-exec rather than closing
	// them keeps the Go runtime's own descriptors working until execve.
	if _, _, e := syscall.RawSyscall(sysCloseRange, 3, ^uintptr(0), closeRangeCloexec); e != 0 {
		return errno("close_range", e)
	}
	if s.UID >= 0 {
		if err := dropIdentity(s.UID, s.GID); err != nil {
			return err
		}
	}

	argv0, err := syscall.BytePtrFromString(argv[0])
	if err != nil {
		return errors.New("command path holds a NUL byte")
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return errors.New("command arguments hold a NUL byte")
	}
	envp, err := syscall.SlicePtrFromStrings(syscall.Environ())
	if err != nil {
		return errors.New("command environment holds a NUL byte")
	}
	prefix := []byte("relay-sandbox: execve " + argv[0] + ": ")
	var empty [1]uint64

	// From here on: raw system calls only, nothing that allocates.
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigSetmask, uintptr(unsafe.Pointer(&empty)), 0, 8, 0, 0)
	if e := prlimit(rlimitNproc, s.NProc, s.NProc); e != 0 {
		return errno("set rlimit nproc", e)
	}
	if e := prlimit(syscall.RLIMIT_AS, s.AS, s.AS); e != 0 {
		rawFail(prefix[:len("relay-sandbox: ")], "set rlimit as: ", e)
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(argv0)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	rawFail(prefix, "", e)
	return nil
}

type rlimit struct{ cur, max uint64 }

func prlimit(res int, cur, max uint64) syscall.Errno {
	l := rlimit{cur, max}
	_, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, uintptr(res), uintptr(unsafe.Pointer(&l)), 0, 0, 0)
	return e
}

// rawFail reports a failure after the address space limit is set, without
// allocating, and exits.
func rawFail(prefix []byte, what string, e syscall.Errno) {
	syscall.RawSyscall(syscall.SYS_WRITE, 2, uintptr(unsafe.Pointer(&prefix[0])), uintptr(len(prefix)))
	for _, s := range []string{what, e.Error(), "\n"} {
		if len(s) > 0 {
			syscall.RawSyscall(syscall.SYS_WRITE, 2, uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(len(s)))
		}
	}
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, ExitSetupFailed, 0, 0)
}

// dropIdentity switches the calling thread, the one that will execve, to
// uid and gid with no supplementary groups; the Landlock domain and
// no_new_privs survive the switch. Raw per-thread system calls on purpose:
// only this thread's credentials pass to the command, and Go's all-threads
// variants stop the world three times for nothing. The kernel clears the
// parent-death signal on a credential change, so it is set again.
func dropIdentity(uid, gid int) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return errno("drop supplementary groups", e)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return errno("switch to gid "+strconv.Itoa(gid), e)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return errno("switch to uid "+strconv.Itoa(uid), e)
	}
	var r, e, sv, rg, eg, sg uint32
	syscall.RawSyscall(syscall.SYS_GETRESUID, uintptr(unsafe.Pointer(&r)), uintptr(unsafe.Pointer(&e)), uintptr(unsafe.Pointer(&sv)))
	syscall.RawSyscall(syscall.SYS_GETRESGID, uintptr(unsafe.Pointer(&rg)), uintptr(unsafe.Pointer(&eg)), uintptr(unsafe.Pointer(&sg)))
	if int(r) != uid || int(e) != uid || int(sv) != uid || int(rg) != gid || int(eg) != gid || int(sg) != gid {
		return errors.New("identity switch did not take effect")
	}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGKILL), 0, 0, 0, 0); e != 0 {
		return errno("set parent-death signal", e)
	}
	return nil
}
