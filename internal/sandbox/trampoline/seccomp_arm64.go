package trampoline

// SysSeccomp is the seccomp(2) system call number on this architecture.
const SysSeccomp = 277

// nativeArch is AArch64, which uses the generic table
// (include/uapi/asm-generic/unistd.h, as installed in
// /usr/include/asm-generic/unistd.h by linux-libc-dev 6.1). arm32 compat
// calls carry AUDIT_ARCH_ARM and are killed.
var nativeArch = &archTable{
	audit: 0xc00000b7, // AUDIT_ARCH_AARCH64
	nums: []sysnum{
		{"acct", 89},
		{"add_key", 217},
		{"adjtimex", 171},
		{"bpf", 280},
		{"clock_adjtime", 266},
		{"clock_settime", 112},
		{"clone", 220},
		{"clone3", 435},
		{"delete_module", 106},
		{"finit_module", 273},
		{"fsconfig", 431},
		{"fsmount", 432},
		{"fsopen", 430},
		{"fspick", 433},
		{"init_module", 105},
		{"io_uring_enter", 426},
		{"io_uring_register", 427},
		{"io_uring_setup", 425},
		{"ioctl", 29},
		{"kcmp", 272},
		{"kexec_file_load", 294},
		{"kexec_load", 104},
		{"keyctl", 219},
		{"mount", 40},
		{"mount_setattr", 442},
		{"move_mount", 429},
		{"open_by_handle_at", 265},
		{"open_tree", 428},
		{"open_tree_attr", 467}, // Linux 6.15: newer than those headers, from golang.org/x/sys
		{"perf_event_open", 241},
		{"personality", 92},
		{"pidfd_getfd", 438},
		{"pivot_root", 41},
		{"process_madvise", 440},
		{"process_vm_readv", 270},
		{"process_vm_writev", 271},
		{"ptrace", 117},
		{"quotactl", 60},
		{"quotactl_fd", 443},
		{"reboot", 142},
		{"request_key", 218},
		{"setns", 268},
		{"settimeofday", 170},
		{"swapoff", 225},
		{"swapon", 224},
		{"syslog", 116},
		{"umount2", 39},
		{"unshare", 97},
		{"userfaultfd", 282},
	},
}
