package trampoline

// SysSeccomp is the seccomp(2) system call number on this architecture.
const SysSeccomp = 317

// nativeArch is x86_64. Numbers from the kernel's
// arch/x86/entry/syscalls/syscall_64.tbl, as installed in
// /usr/include/x86_64-linux-gnu/asm/unistd_64.h (linux-libc-dev 6.1).
var nativeArch = &archTable{
	audit: 0xc000003e, // AUDIT_ARCH_X86_64
	x32:   true,
	// Raw I/O port access and the local descriptor table: hardware and
	// segmentation surfaces (modify_ldt has a history of kernel bugs) that
	// only emulators such as Wine and DOSEMU use.
	extra: []string{"iopl", "ioperm", "modify_ldt"},
	nums: []sysnum{
		{"acct", 163},
		{"add_key", 248},
		{"adjtimex", 159},
		{"bpf", 321},
		{"clock_adjtime", 305},
		{"clock_settime", 227},
		{"clone", 56},
		{"clone3", 435},
		{"delete_module", 176},
		{"finit_module", 313},
		{"fsconfig", 431},
		{"fsmount", 432},
		{"fsopen", 430},
		{"fspick", 433},
		{"init_module", 175},
		{"io_uring_enter", 426},
		{"io_uring_register", 427},
		{"io_uring_setup", 425},
		{"ioctl", 16},
		{"ioperm", 173},
		{"iopl", 172},
		{"kcmp", 312},
		{"kexec_file_load", 320},
		{"kexec_load", 246},
		{"keyctl", 250},
		{"modify_ldt", 154},
		{"mount", 165},
		{"mount_setattr", 442},
		{"move_mount", 429},
		{"open_by_handle_at", 304},
		{"open_tree", 428},
		{"open_tree_attr", 467}, // Linux 6.15: newer than those headers, from golang.org/x/sys
		{"perf_event_open", 298},
		{"personality", 135},
		{"pidfd_getfd", 438},
		{"pivot_root", 155},
		{"process_madvise", 440},
		{"process_vm_readv", 310},
		{"process_vm_writev", 311},
		{"ptrace", 101},
		{"quotactl", 179},
		{"quotactl_fd", 443},
		{"reboot", 169},
		{"request_key", 249},
		{"setns", 308},
		{"settimeofday", 164},
		{"swapoff", 168},
		{"swapon", 167},
		{"syslog", 103},
		{"umount2", 166},
		{"unshare", 272},
		{"userfaultfd", 323},
	},
}
