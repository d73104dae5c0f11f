package trampoline

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	nativeAudit = unix.AUDIT_ARCH_AARCH64
	headerPath  = "/usr/include/asm-generic/unistd.h"
)

// wantArchRefused are the calls refused on AArch64 only.
var wantArchRefused = []string{}

// xsysNums are golang.org/x/sys's numbers for every call the filter names.
var xsysNums = map[string]uintptr{
	"acct": unix.SYS_ACCT, "add_key": unix.SYS_ADD_KEY, "adjtimex": unix.SYS_ADJTIMEX, "bpf": unix.SYS_BPF,
	"clock_adjtime": unix.SYS_CLOCK_ADJTIME, "clock_settime": unix.SYS_CLOCK_SETTIME, "clone": unix.SYS_CLONE,
	"clone3": unix.SYS_CLONE3, "delete_module": unix.SYS_DELETE_MODULE, "finit_module": unix.SYS_FINIT_MODULE,
	"fsconfig": unix.SYS_FSCONFIG, "fsmount": unix.SYS_FSMOUNT, "fsopen": unix.SYS_FSOPEN, "fspick": unix.SYS_FSPICK,
	"init_module": unix.SYS_INIT_MODULE, "io_uring_enter": unix.SYS_IO_URING_ENTER,
	"io_uring_register": unix.SYS_IO_URING_REGISTER, "io_uring_setup": unix.SYS_IO_URING_SETUP,
	"ioctl": unix.SYS_IOCTL, "kcmp": unix.SYS_KCMP,
	"kexec_file_load": unix.SYS_KEXEC_FILE_LOAD, "kexec_load": unix.SYS_KEXEC_LOAD, "keyctl": unix.SYS_KEYCTL,
	"mount": unix.SYS_MOUNT, "mount_setattr": unix.SYS_MOUNT_SETATTR,
	"move_mount": unix.SYS_MOVE_MOUNT, "open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT,
	"open_tree": unix.SYS_OPEN_TREE, "open_tree_attr": unix.SYS_OPEN_TREE_ATTR,
	"perf_event_open": unix.SYS_PERF_EVENT_OPEN, "personality": unix.SYS_PERSONALITY,
	"pidfd_getfd": unix.SYS_PIDFD_GETFD, "pivot_root": unix.SYS_PIVOT_ROOT,
	"process_madvise": unix.SYS_PROCESS_MADVISE, "process_vm_readv": unix.SYS_PROCESS_VM_READV,
	"process_vm_writev": unix.SYS_PROCESS_VM_WRITEV, "ptrace": unix.SYS_PTRACE, "quotactl": unix.SYS_QUOTACTL,
	"quotactl_fd": unix.SYS_QUOTACTL_FD, "reboot": unix.SYS_REBOOT, "request_key": unix.SYS_REQUEST_KEY,
	"setns": unix.SYS_SETNS, "settimeofday": unix.SYS_SETTIMEOFDAY, "swapoff": unix.SYS_SWAPOFF,
	"swapon": unix.SYS_SWAPON, "syslog": unix.SYS_SYSLOG, "umount2": unix.SYS_UMOUNT2, "unshare": unix.SYS_UNSHARE,
	"userfaultfd": unix.SYS_USERFAULTFD,
}

// syscallPkgNums are the frozen syscall package's numbers, where it has them.
var syscallPkgNums = map[string]uintptr{
	"acct": syscall.SYS_ACCT, "add_key": syscall.SYS_ADD_KEY, "adjtimex": syscall.SYS_ADJTIMEX, "bpf": syscall.SYS_BPF,
	"clock_adjtime": syscall.SYS_CLOCK_ADJTIME, "clock_settime": syscall.SYS_CLOCK_SETTIME, "clone": syscall.SYS_CLONE,
	"delete_module": syscall.SYS_DELETE_MODULE, "finit_module": syscall.SYS_FINIT_MODULE,
	"init_module": syscall.SYS_INIT_MODULE, "ioctl": syscall.SYS_IOCTL, "kcmp": syscall.SYS_KCMP,
	"kexec_load": syscall.SYS_KEXEC_LOAD, "keyctl": syscall.SYS_KEYCTL, "mount": syscall.SYS_MOUNT,
	"open_by_handle_at": syscall.SYS_OPEN_BY_HANDLE_AT, "perf_event_open": syscall.SYS_PERF_EVENT_OPEN,
	"personality": syscall.SYS_PERSONALITY, "pivot_root": syscall.SYS_PIVOT_ROOT,
	"process_vm_readv": syscall.SYS_PROCESS_VM_READV, "process_vm_writev": syscall.SYS_PROCESS_VM_WRITEV,
	"ptrace": syscall.SYS_PTRACE, "quotactl": syscall.SYS_QUOTACTL, "reboot": syscall.SYS_REBOOT,
	"request_key": syscall.SYS_REQUEST_KEY, "setns": syscall.SYS_SETNS, "settimeofday": syscall.SYS_SETTIMEOFDAY,
	"swapoff": syscall.SYS_SWAPOFF, "swapon": syscall.SYS_SWAPON, "syslog": syscall.SYS_SYSLOG,
	"umount2": syscall.SYS_UMOUNT2, "unshare": syscall.SYS_UNSHARE,
}
