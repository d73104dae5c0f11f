//go:build !amd64 && !arm64

package trampoline

// SysSeccomp is the seccomp(2) system call number on this architecture:
// none here, as the filter does not know this architecture. A system call
// with this number fails with ENOSYS.
const SysSeccomp = 0xffffffff

// nativeArch is nil: NewFilter fails, and the sandbox refuses to run
// commands it cannot filter.
var nativeArch *archTable
