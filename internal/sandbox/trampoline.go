package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const trampolineArg = "__relay-sandbox"

// ExitSetupFailed is the trampoline's exit status when it could not set up
// the sandbox; the command did not run. It writes one line starting with
// "relay-sandbox: " to stderr first.
const ExitSetupFailed = 125

// hooked records that this binary checks for the trampoline at start-up,
// so re-executing it as one cannot recurse into the whole program.
var hooked atomic.Bool

// IsTrampoline reports whether args (os.Args) ask for the trampoline. Call
// it first thing in main: a profile that re-executes this binary is refused
// until it has been called.
func IsTrampoline(args []string) bool {
	hooked.Store(true)
	return len(args) > 1 && args[1] == trampolineArg
}

// Trampoline confines the current process as the profile in args says and
// execve's the command. It never returns: on any failure it reports one
// line on stderr and exits with ExitSetupFailed, so a command never runs
// less confined than its profile.
func Trampoline(args []string) {
	// Landlock and no_new_privs apply to the calling thread, and execve
	// must happen on that same thread.
	runtime.LockOSThread()
	err := trampoline(args)
	if err == nil {
		err = errors.New("execve returned")
	}
	fail(err.Error())
}

func fail(msg string) {
	unix.Write(2, []byte("relay-sandbox: "+msg+"\n"))
	unix.Exit(ExitSetupFailed)
}

func trampoline(args []string) error {
	sep := slices.Index(args, "--")
	if sep < 3 || sep == len(args)-1 {
		return errors.New("usage: __relay-sandbox PROFILE [RULE] -- COMMAND [ARG]")
	}
	s, err := decodeSpec(args[2:sep])
	if err != nil {
		return err
	}
	argv := args[sep+1:]
	if !filepath.IsAbs(argv[0]) {
		return fmt.Errorf("command %q is not an absolute path", argv[0])
	}

	// 1. no_new_privs: nothing exec'd can gain privileges (setuid bits,
	// file capabilities), and Landlock needs it without CAP_SYS_ADMIN.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	// 2. rlimits. NPROC and AS come last, just before execve: an address
	// space limit can crash the Go runtime and a process limit can stop it
	// from starting the threads it wants.
	for _, l := range []struct {
		name     string
		res      int
		cur, max uint64
	}{
		{"cpu", unix.RLIMIT_CPU, s.CPU, s.CPU + 1}, // SIGXCPU, then SIGKILL a second later
		{"nofile", unix.RLIMIT_NOFILE, s.NoFile, s.NoFile},
		{"fsize", unix.RLIMIT_FSIZE, s.FSize, s.FSize},
		{"core", unix.RLIMIT_CORE, 0, 0},
	} {
		if err := unix.Setrlimit(l.res, &unix.Rlimit{Cur: l.cur, Max: l.max}); err != nil {
			return fmt.Errorf("set rlimit %s: %w", l.name, err)
		}
	}
	// 3, 4. Landlock filesystem, network and scope rules.
	if err := restrict(s); err != nil {
		return err
	}
	// 5. Stray descriptors. Marking them close-on-exec rather than closing
	// them keeps the Go runtime's own descriptors working until execve.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	if s.UID >= 0 {
		if err := dropIdentity(s.UID, s.GID); err != nil {
			return err
		}
	}

	argv0, err := syscall.BytePtrFromString(argv[0])
	if err != nil {
		return fmt.Errorf("command path: %w", err)
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return fmt.Errorf("command arguments: %w", err)
	}
	envp, err := syscall.SlicePtrFromStrings(os.Environ())
	if err != nil {
		return fmt.Errorf("command environment: %w", err)
	}
	prefix := []byte("relay-sandbox: execve " + argv[0] + ": ")
	nproc := unix.Rlimit{Cur: s.NProc, Max: s.NProc}
	as := unix.Rlimit{Cur: s.AS, Max: s.AS}
	var empty [1]uint64

	// From here on: raw system calls only, nothing that allocates.
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&empty)), 0, 8, 0, 0)
	if _, _, e := unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NPROC, uintptr(unsafe.Pointer(&nproc)), 0, 0, 0); e != 0 {
		return fmt.Errorf("set rlimit nproc: %w", e)
	}
	if _, _, e := unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_AS, uintptr(unsafe.Pointer(&as)), 0, 0, 0); e != 0 {
		rawFail(prefix[:len("relay-sandbox: ")], "set rlimit as: ", e)
	}
	_, _, e := unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(argv0)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	rawFail(prefix, "", e)
	return nil
}

// rawFail reports a failure after the address space limit is set, without
// allocating, and exits.
func rawFail(prefix []byte, what string, e syscall.Errno) {
	unix.RawSyscall(unix.SYS_WRITE, 2, uintptr(unsafe.Pointer(&prefix[0])), uintptr(len(prefix)))
	for _, s := range []string{what, e.Error(), "\n"} {
		if len(s) > 0 {
			unix.RawSyscall(unix.SYS_WRITE, 2, uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(len(s)))
		}
	}
	unix.RawSyscall(unix.SYS_EXIT_GROUP, ExitSetupFailed, 0, 0)
}

// dropIdentity switches the calling thread, the one that will execve, to
// uid and gid with no supplementary groups; the Landlock domain and
// no_new_privs survive the switch. Raw per-thread system calls on purpose:
// only this thread's credentials pass to the command, and Go's all-threads
// variants stop the world three times for nothing. The kernel clears the
// parent-death signal on a credential change, so it is set again.
func dropIdentity(uid, gid int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("drop supplementary groups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("switch to gid %d: %w", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("switch to uid %d: %w", uid, e)
	}
	var r, e, sv, rg, eg, sg int32
	unix.RawSyscall(unix.SYS_GETRESUID, uintptr(unsafe.Pointer(&r)), uintptr(unsafe.Pointer(&e)), uintptr(unsafe.Pointer(&sv)))
	unix.RawSyscall(unix.SYS_GETRESGID, uintptr(unsafe.Pointer(&rg)), uintptr(unsafe.Pointer(&eg)), uintptr(unsafe.Pointer(&sg)))
	if int(r) != uid || int(e) != uid || int(sv) != uid || int(rg) != gid || int(eg) != gid || int(sg) != gid {
		return errors.New("identity switch did not take effect")
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set parent-death signal: %w", err)
	}
	return nil
}

type netPortAttr struct {
	allowed uint64
	port    uint64
}

// restrict builds the Landlock ruleset s describes and enforces it on the
// calling thread, which then execve's.
func restrict(s *spec) error {
	abi, why := landlockABI()
	if abi < s.ABI {
		if abi == 0 {
			return errors.New("landlock: " + why)
		}
		return fmt.Errorf("landlock ABI %d, profile needs %d", abi, s.ABI)
	}
	attr := unix.LandlockRulesetAttr{Handled_access_fs: s.FS, Handled_access_net: s.Net, Scoped: s.Scope}
	size := uintptr(8)
	switch {
	case s.ABI >= 6:
		size = 24
	case s.ABI >= 4:
		size = 16
	}
	r, _, e := unix.RawSyscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if e != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", e)
	}
	rs := int(r)
	defer unix.Close(rs)

	for _, rl := range s.Rules {
		fd, err := unix.Openat2(unix.AT_FDCWD, rl.Path, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != nil {
			if rl.Optional && errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("open %q for a landlock rule: %w", rl.Path, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return fmt.Errorf("stat %q: %w", rl.Path, err)
		}
		access := rl.Access
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access &= fileRights
		}
		pb := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
		_, _, e := unix.RawSyscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rs), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&pb)), 0, 0, 0)
		unix.Close(fd)
		if e != 0 {
			return fmt.Errorf("landlock rule for %q: %w", rl.Path, e)
		}
	}
	for _, p := range s.Ports {
		np := netPortAttr{allowed: unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, port: uint64(p)}
		_, _, e := unix.RawSyscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rs), landlockRuleNetPort, uintptr(unsafe.Pointer(&np)), 0, 0, 0)
		if e != 0 {
			return fmt.Errorf("landlock rule for tcp port %d: %w", p, e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rs), 0, 0); e != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", e)
	}
	return nil
}
