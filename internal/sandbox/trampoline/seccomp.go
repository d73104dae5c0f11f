package trampoline

// The seccomp-bpf filter: the trampoline's last confinement, installed just
// before execve, where only raw system calls may run. NewFilter compiles it
// beforehand, where allocating is still fine; Prog hands the kernel a
// program that needs nothing more.
//
// The policy, for the seccomp_data of every system call:
//
//   - An audit architecture other than the binary's own (i386 calls made
//     through int 0x80 on x86_64, arm32 compat calls on arm64) kills the
//     process: the numbers below mean nothing there, so no verdict on them
//     could be right.
//   - On x86_64, a number with the x32 bit set is refused: x32 calls share
//     the audit architecture with x86_64 but not the numbering.
//   - The calls in refusedCalls, and the architecture's extra ones, return
//     EPERM, so programs that probe for a feature degrade instead of dying.
//   - clone with a namespace flag, personality other than PER_LINUX, and
//     ioctl TIOCSTI and TIOCLINUX return EPERM; clone3 returns ENOSYS.
//   - Everything else is allowed.
//
// Arguments the kernel declares as int or unsigned int arrive in 64-bit
// registers whose high half the kernel ignores. Comparing all 64 bits is
// bubblewrap's CVE-2019-10063: ioctl(fd, 1<<32|TIOCSTI) did not match the
// filter and the kernel ran TIOCSTI. So the filter loads only the low word
// of such arguments (both known architectures are little-endian: the low
// word is at the argument's own offset) and never looks at the high one.
//
// Layout. Every jump is forward, and each check jumps to a return shared
// by the whole program, placed at its end:
//
//	ld arch; jeq AUDIT_ARCH ? next : kill
//	ld nr; [jset X32_BIT ? refuse]
//	jeq ioctl ? ioctlArgs; jeq clone ? cloneArgs; jeq personality ? personalityArgs
//	jeq clone3 ? nosys; jeq nr_1 ? refuse; ... jeq nr_n ? refuse
//	ret ALLOW
//	ioctlArgs, cloneArgs, personalityArgs: ld the argument's low word, compare
//	allow: ret ALLOW; refuse: ret ERRNO|EPERM; nosys: ret ERRNO|ENOSYS; kill: ret KILL_PROCESS
//
// So no offset exceeds the program's length, which the assembler checks
// against the 8-bit jump field (it fails rather than emit a wrong jump);
// the default filter is the longest, since re-allowing only drops checks.
// Only the three argument blocks load an argument: for every other number
// the verdict depends on arch and nr alone, which lets the kernel's action
// cache (Linux >= 5.11) allow those calls without running the filter.

import (
	"errors"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"unsafe"
)

// refusedCalls are refused with EPERM on every architecture. Grouped by
// what a compromised command would use them for.
var refusedCalls = []string{
	// Reading or changing another process: its memory, its descriptors,
	// its kernel objects (kcmp compares them, leaking layout).
	"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
	// The kernel keyring: secrets shared with the user's other processes.
	"keyctl", "add_key", "request_key",
	// Large kernel surfaces that exploits favour and commands do not need:
	// eBPF, perf events, userfaultfd (widens race windows), io_uring
	// (bypasses this very filter: its operations are not system calls).
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	// Replacing the kernel or loading code into it.
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	// Changing the constructed filesystem view after setup; a user
	// namespace gives the command CAP_SYS_ADMIN over its own mounts.
	"mount", "umount2", "pivot_root", "move_mount", "open_tree", "open_tree_attr",
	"fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	// New namespaces and entering others'. clone's namespace flags are
	// checked apart (see the package policy above).
	"unshare", "setns",
	// Host-wide state: process accounting, swap, the machine's power,
	// its clocks, disk quotas.
	"acct", "swapon", "swapoff", "reboot",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"quotactl", "quotactl_fd",
	// Opening a file by handle skips path lookup, and so the filesystem
	// view (the "shocker" container escape). name_to_handle_at stays
	// allowed: a handle opens nothing without this, and systemd's tools
	// use it to find mount points.
	"open_by_handle_at",
	// The kernel log shows the host's activity and, unrestricted, kernel
	// addresses; /dev/kmsg is already absent from the view.
	"syslog",
}

// Arguments and return values, from <linux/seccomp.h>, <linux/filter.h>,
// <linux/sched.h>, <linux/personality.h> and <asm-generic/ioctls.h>.
const (
	seccompSetModeFilter  = 1
	seccompGetActionAvail = 2

	retKillProcess = 0x80000000
	retErrno       = 0x00050000
	retAllow       = 0x7fff0000

	// struct seccomp_data: int nr; __u32 arch; __u64 ip; __u64 args[6].
	offNr   = 0
	offArch = 4
	offArgs = 16

	bpfLdWAbs = 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfJeqK   = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	bpfJsetK  = 0x45 // BPF_JMP | BPF_JSET | BPF_K
	bpfRetK   = 0x06 // BPF_RET | BPF_K
	bpfMaxLen = 4096 // BPF_MAXINSNS

	// CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
	// CLONE_NEWTIME (0x80) is absent on purpose: in clone's flags that bit
	// is part of the exit signal; only clone3 and unshare take it.
	cloneNamespaces = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

	perLinux         = 0
	personalityQuery = 0xffffffff
	tiocsti          = 0x5412
	tioclinux        = 0x541c
	x32SyscallBit    = 0x40000000
)

// argCalls are filtered by their arguments and cannot be re-allowed: each
// maps to why, for the error that refuses it.
var argCalls = []struct{ name, why string }{
	{"clone", "only its namespace flags are refused"},
	{"clone3", "its flags are out of the filter's reach, so it fails with ENOSYS and programs fall back to clone"},
	{"ioctl", "only TIOCSTI and TIOCLINUX are refused"},
	{"personality", "only personas other than PER_LINUX are refused"},
}

// sysnum is one row of an architecture's system call table.
type sysnum struct {
	name string
	nr   uint32
}

// archTable is what the filter needs of an architecture. Each
// seccomp_GOARCH.go file defines nativeArch; the numbers come from the
// kernel's own tables, and the tests check them against the syscall
// package and golang.org/x/sys.
type archTable struct {
	audit uint32 // AUDIT_ARCH_* of the binary's own system calls
	x32   bool   // numbers with x32SyscallBit set are another ABI
	// extra are refused with EPERM on this architecture only.
	extra []string
	// nums holds every name the filter uses here, sorted by name.
	nums []sysnum
}

func (a *archTable) nr(name string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(a.nums, name, func(s sysnum, n string) int {
		switch {
		case s.name < n:
			return -1
		case s.name > n:
			return 1
		}
		return 0
	})
	if !ok {
		return 0, false
	}
	return a.nums[i].nr, true
}

// FilteredSyscalls returns, sorted, the names of the system calls the
// default filter refuses; these are the names sandbox.allow_syscalls may
// re-allow. It is empty on an architecture the filter does not know.
func FilteredSyscalls() []string {
	if nativeArch == nil {
		return nil
	}
	names := append(slices.Clone(refusedCalls), nativeArch.extra...)
	slices.Sort(names)
	return names
}

// sockFilter is struct sock_filter.
type sockFilter struct {
	code uint16
	jt   uint8
	jf   uint8
	k    uint32
}

// sockFprog is struct sock_fprog; Go pads it as C does.
type sockFprog struct {
	len    uint16
	filter *sockFilter
}

// Filter is a compiled seccomp-bpf program for the running architecture.
type Filter struct {
	// fprog.filter points at insns[0]; both live as long as the Filter,
	// which the heap never moves.
	fprog sockFprog
	insns []sockFilter
}

// NewFilter builds the default filter for runtime.GOARCH, re-allowing the
// named system calls. It fails for an architecture the filter does not
// know, and for a name not in FilteredSyscalls.
func NewFilter(allow []string) (*Filter, error) {
	if nativeArch == nil {
		return nil, errors.New("seccomp: no filter for architecture " + runtime.GOARCH)
	}
	insns, err := compile(nativeArch, allow, uint32(syscall.EPERM))
	if err != nil {
		return nil, err
	}
	return newFilter(insns), nil
}

func newFilter(insns []sockFilter) *Filter {
	f := &Filter{insns: insns}
	f.fprog = sockFprog{len: uint16(len(insns)), filter: &f.insns[0]}
	return f
}

// Prog returns the address of the filter's struct sock_fprog, for
// seccomp(SECCOMP_SET_MODE_FILTER, 0, prog) made with a raw system call
// (after fork, where nothing may allocate). It stays valid while f is
// reachable: keep f alive (runtime.KeepAlive) until that call returns.
func (f *Filter) Prog() uintptr { return uintptr(unsafe.Pointer(&f.fprog)) }

// Install installs the filter on the calling thread, which the caller has
// locked (runtime.LockOSThread) and which passes the filter to what it
// execve's and forks. The caller must have set no_new_privs on that
// thread (or hold CAP_SYS_ADMIN).
func (f *Filter) Install() error {
	_, _, e := syscall.RawSyscall(SysSeccomp, seccompSetModeFilter, 0, f.Prog())
	runtime.KeepAlive(f)
	switch e {
	case 0:
		return nil
	case syscall.EACCES:
		return errors.New("install seccomp filter: permission denied (set no_new_privs on this thread first)")
	default:
		return errors.New("install seccomp filter: " + e.Error())
	}
}

// CheckFilter reports why this kernel and architecture cannot enforce the
// filter, or nil when they can.
func CheckFilter() error {
	if nativeArch == nil {
		return errors.New("seccomp: no filter for architecture " + runtime.GOARCH)
	}
	for _, a := range []struct {
		action uint32
		name   string
	}{{retKillProcess, "SECCOMP_RET_KILL_PROCESS"}, {retErrno, "SECCOMP_RET_ERRNO"}, {retAllow, "SECCOMP_RET_ALLOW"}} {
		action := a.action
		_, _, e := syscall.RawSyscall(SysSeccomp, seccompGetActionAvail, 0, uintptr(unsafe.Pointer(&action)))
		switch e {
		case 0:
		case syscall.ENOSYS:
			return errors.New("seccomp: the kernel has no seccomp filters (needs CONFIG_SECCOMP_FILTER), or a filter above the relay blocks seccomp(2)")
		case syscall.EINVAL, syscall.EOPNOTSUPP:
			return errors.New("seccomp: the kernel lacks " + a.name + " (needs Linux >= 4.14)")
		default:
			return errors.New("seccomp: probe " + a.name + ": " + e.Error())
		}
	}
	return nil
}

// compile assembles the filter for arch, re-allowing allow; refused calls
// return errno. The tests compile it with an errno none of their probes
// can get from the kernel, to tell the filter's refusals from its EPERM.
func compile(arch *archTable, allow []string, errno uint32) ([]sockFilter, error) {
	refused := append(slices.Clone(refusedCalls), arch.extra...)
	for _, name := range allow {
		if i := slices.IndexFunc(argCalls, func(c struct{ name, why string }) bool { return c.name == name }); i >= 0 {
			return nil, errors.New("seccomp: cannot re-allow " + name + ": " + argCalls[i].why)
		}
		if !slices.Contains(refused, name) {
			return nil, errors.New("seccomp: cannot re-allow " + strconv.Quote(name) + ": not a system call the filter refuses")
		}
	}
	nr := func(name string) (uint32, error) {
		n, ok := arch.nr(name)
		if !ok {
			return 0, errors.New("seccomp: no number for " + name + " on " + runtime.GOARCH)
		}
		return n, nil
	}
	a := assembler{prog: make([]sockFilter, 0, len(refused)+24)}
	a.op(bpfLdWAbs, offArch)
	a.jump(bpfJeqK, arch.audit, next, lKill)
	a.op(bpfLdWAbs, offNr)
	if arch.x32 {
		a.jump(bpfJsetK, x32SyscallBit, lRefuse, next)
	}
	for _, c := range []struct {
		name string
		to   label
	}{{"ioctl", lIoctl}, {"clone", lClone}, {"personality", lPersonality}, {"clone3", lNosys}} {
		n, err := nr(c.name)
		if err != nil {
			return nil, err
		}
		a.jump(bpfJeqK, n, c.to, next)
	}
	for _, name := range refused {
		if slices.Contains(allow, name) {
			continue
		}
		n, err := nr(name)
		if err != nil {
			return nil, err
		}
		a.jump(bpfJeqK, n, lRefuse, next)
	}
	a.op(bpfRetK, retAllow)

	// ioctl(unsigned int fd, unsigned int cmd, unsigned long arg).
	a.place(lIoctl)
	a.op(bpfLdWAbs, offArgs+8*1)
	a.jump(bpfJeqK, tiocsti, lRefuse, next)
	a.jump(bpfJeqK, tioclinux, lRefuse, lAllow)
	// clone(unsigned long flags, ...), of which the kernel uses only
	// lower_32_bits: the high word cannot ask for a namespace.
	a.place(lClone)
	a.op(bpfLdWAbs, offArgs+8*0)
	a.jump(bpfJsetK, cloneNamespaces, lRefuse, lAllow)
	// personality(unsigned int persona): PER_LINUX, or the query that
	// changes nothing. Anything else, ADDR_NO_RANDOMIZE above all, is
	// refused.
	a.place(lPersonality)
	a.op(bpfLdWAbs, offArgs+8*0)
	a.jump(bpfJeqK, perLinux, lAllow, next)
	a.jump(bpfJeqK, personalityQuery, lAllow, lRefuse)

	a.place(lAllow)
	a.op(bpfRetK, retAllow)
	a.place(lRefuse)
	a.op(bpfRetK, retErrno|errno&0xffff)
	// clone3 passes its flags in memory, which seccomp cannot read. ENOSYS
	// (as Docker and Chromium answer) makes glibc and others fall back to
	// clone(2), whose flags the filter checks.
	a.place(lNosys)
	a.op(bpfRetK, retErrno|uint32(syscall.ENOSYS))
	a.place(lKill)
	a.op(bpfRetK, retKillProcess)
	return a.finish()
}

// label names a shared block of the program; next is the fall-through.
type label uint8

const (
	next label = iota
	lAllow
	lRefuse
	lNosys
	lKill
	lIoctl
	lClone
	lPersonality
	nLabels
)

// assembler builds a classic BPF program whose jumps name labels, and
// resolves them once every label is placed.
type assembler struct {
	prog []sockFilter
	fix  []fixup
	at   [nLabels]int // position of each label, plus one; 0 until placed
}

type fixup struct {
	pc     int
	jt, jf label
}

func (a *assembler) op(code uint16, k uint32) {
	a.prog = append(a.prog, sockFilter{code: code, k: k})
}

func (a *assembler) jump(code uint16, k uint32, jt, jf label) {
	a.fix = append(a.fix, fixup{len(a.prog), jt, jf})
	a.op(code, k)
}

func (a *assembler) place(l label) { a.at[l] = len(a.prog) + 1 }

func (a *assembler) finish() ([]sockFilter, error) {
	if len(a.prog) > bpfMaxLen {
		return nil, errors.New("seccomp: program of " + strconv.Itoa(len(a.prog)) + " instructions exceeds BPF_MAXINSNS")
	}
	off := func(pc int, l label) (uint8, error) {
		if l == next {
			return 0, nil
		}
		d := a.at[l] - 1 - (pc + 1)
		if a.at[l] == 0 || d < 0 || d > 255 {
			return 0, errors.New("seccomp: jump at " + strconv.Itoa(pc) + " out of range")
		}
		return uint8(d), nil
	}
	for _, f := range a.fix {
		var err error
		if a.prog[f.pc].jt, err = off(f.pc, f.jt); err != nil {
			return nil, err
		}
		if a.prog[f.pc].jf, err = off(f.pc, f.jf); err != nil {
			return nil, err
		}
	}
	return a.prog, nil
}
