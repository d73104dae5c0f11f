package trampoline

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	nativeAudit = unix.AUDIT_ARCH_X86_64
	headerPath  = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
)

// wantArchRefused are the calls refused on x86_64 only.
var wantArchRefused = []string{"iopl", "ioperm", "modify_ldt"}

// xsysNums are golang.org/x/sys's numbers for every call the filter names.
var xsysNums = map[string]uintptr{
	"acct": unix.SYS_ACCT, "add_key": unix.SYS_ADD_KEY, "adjtimex": unix.SYS_ADJTIMEX, "bpf": unix.SYS_BPF,
	"clock_adjtime": unix.SYS_CLOCK_ADJTIME, "clock_settime": unix.SYS_CLOCK_SETTIME, "clone": unix.SYS_CLONE,
	"clone3": unix.SYS_CLONE3, "delete_module": unix.SYS_DELETE_MODULE, "finit_module": unix.SYS_FINIT_MODULE,
	"fsconfig": unix.SYS_FSCONFIG, "fsmount": unix.SYS_FSMOUNT, "fsopen": unix.SYS_FSOPEN, "fspick": unix.SYS_FSPICK,
	"init_module": unix.SYS_INIT_MODULE, "io_uring_enter": unix.SYS_IO_URING_ENTER,
	"io_uring_register": unix.SYS_IO_URING_REGISTER, "io_uring_setup": unix.SYS_IO_URING_SETUP,
	"ioctl": unix.SYS_IOCTL, "ioperm": unix.SYS_IOPERM, "iopl": unix.SYS_IOPL, "kcmp": unix.SYS_KCMP,
	"kexec_file_load": unix.SYS_KEXEC_FILE_LOAD, "kexec_load": unix.SYS_KEXEC_LOAD, "keyctl": unix.SYS_KEYCTL,
	"modify_ldt": unix.SYS_MODIFY_LDT, "mount": unix.SYS_MOUNT, "mount_setattr": unix.SYS_MOUNT_SETATTR,
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
	"acct": syscall.SYS_ACCT, "add_key": syscall.SYS_ADD_KEY, "adjtimex": syscall.SYS_ADJTIMEX,
	"clock_settime": syscall.SYS_CLOCK_SETTIME, "clone": syscall.SYS_CLONE, "delete_module": syscall.SYS_DELETE_MODULE,
	"init_module": syscall.SYS_INIT_MODULE, "ioctl": syscall.SYS_IOCTL, "ioperm": syscall.SYS_IOPERM,
	"iopl": syscall.SYS_IOPL, "kexec_load": syscall.SYS_KEXEC_LOAD, "keyctl": syscall.SYS_KEYCTL,
	"modify_ldt": syscall.SYS_MODIFY_LDT, "mount": syscall.SYS_MOUNT, "perf_event_open": syscall.SYS_PERF_EVENT_OPEN,
	"personality": syscall.SYS_PERSONALITY, "pivot_root": syscall.SYS_PIVOT_ROOT, "ptrace": syscall.SYS_PTRACE,
	"quotactl": syscall.SYS_QUOTACTL, "reboot": syscall.SYS_REBOOT, "request_key": syscall.SYS_REQUEST_KEY,
	"settimeofday": syscall.SYS_SETTIMEOFDAY, "swapoff": syscall.SYS_SWAPOFF, "swapon": syscall.SYS_SWAPON,
	"syslog": syscall.SYS_SYSLOG, "umount2": syscall.SYS_UMOUNT2, "unshare": syscall.SYS_UNSHARE,
}

// TestFilterKillsForeignArch: a process that makes an i386 system call
// through int 0x80 (arch AUDIT_ARCH_I386, where the x86_64 numbers mean
// other calls) is killed by the filter, and runs to exit 0 without it.
func TestFilterKillsForeignArch(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "int80")
	if err := os.WriteFile(bin, int80ELF(), 0o700); err != nil {
		t.Fatal(err)
	}
	if st, _, stderr := runUnder(t, "none", bin); !st.Success() {
		t.Skipf("no i386 emulation here (CONFIG_IA32_EMULATION): %v %s", st, stderr)
	}
	st, _, _ := runUnder(t, "eperm", bin)
	ws, _ := st.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Errorf("i386 getpid under the filter: got %v, want killed by SIGSYS", st)
	}
}

// int80ELF is a static x86_64 executable that calls i386 getpid (20) with
// int 0x80, then exits 0 with the x86_64 exit call.
func int80ELF() []byte {
	code := []byte{
		0xb8, 20, 0, 0, 0, // mov eax, 20
		0xcd, 0x80, // int 0x80
		0x31, 0xff, // xor edi, edi
		0xb8, 60, 0, 0, 0, // mov eax, 60
		0x0f, 0x05, // syscall
	}
	const base, hdr = 0x400000, 64 + 56
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	binary.Write(&b, le, struct {
		Type, Machine              uint16
		Version                    uint32
		Entry, Phoff, Shoff        uint64
		Flags                      uint32
		Ehsize, Phentsize, Phnum   uint16
		Shentsize, Shnum, Shstrndx uint16
	}{2 /* ET_EXEC */, 62 /* EM_X86_64 */, 1, base + hdr, 64, 0, 0, 64, 56, 1, 0, 0, 0})
	size := uint64(hdr + len(code))
	binary.Write(&b, le, struct {
		Type, Flags                                uint32
		Offset, Vaddr, Paddr, Filesz, Memsz, Align uint64
	}{1 /* PT_LOAD */, 5 /* R+X */, 0, base, base, size, size, 0x1000})
	b.Write(code)
	return b.Bytes()
}
