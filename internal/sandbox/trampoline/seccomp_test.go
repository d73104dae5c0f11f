//go:build amd64 || arm64

package trampoline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seccomp filter's tests. Three layers: the program checked the way
// the kernel checks it and run in an emulator against a plain-Go statement
// of the policy (exhaustively and by fuzzing); the tables checked against
// the syscall package and golang.org/x/sys; and real processes that install
// the filter and then try, as a compromised command would, every call it
// refuses.

// wantRefused is the policy's list of plainly refused calls on every
// architecture, written apart from the filter's own so that dropping one
// there fails a test. wantArchRefused (seccomp_GOARCH_test.go) adds the
// architecture's own.
var wantRefused = []string{
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "keyctl", "add_key", "request_key",
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"unshare", "setns", "acct", "swapon", "swapoff", "reboot",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "open_by_handle_at",
	// Beyond the list, justified in seccomp.go.
	"open_tree_attr", "process_madvise", "pidfd_getfd", "quotactl", "quotactl_fd", "syslog",
}

// distinct is what the tests' variant of the filter refuses with instead
// of EPERM: no path of the probed calls returns it, so seeing it proves the
// filter, not the kernel's own permission check, refused the call.
const distinct = syscall.ENOTRECOVERABLE

func allRefused() []string {
	names := append(slices.Clone(wantRefused), wantArchRefused...)
	slices.Sort(names)
	return names
}

func TestFilteredSyscalls(t *testing.T) {
	got := FilteredSyscalls()
	if !slices.IsSorted(got) {
		t.Errorf("FilteredSyscalls() is not sorted: %q", got)
	}
	if want := allRefused(); !slices.Equal(got, want) {
		t.Errorf("FilteredSyscalls():\n got %q\nwant %q", got, want)
	}
	for _, c := range []string{"clone", "clone3", "ioctl", "personality", "read", "execve"} {
		if slices.Contains(got, c) {
			t.Errorf("FilteredSyscalls() holds %q, which must not be re-allowable", c)
		}
	}
	got[0] = "mutated"
	if FilteredSyscalls()[0] == "mutated" {
		t.Error("FilteredSyscalls() returns the filter's own slice")
	}
}

func TestNewFilterRefuses(t *testing.T) {
	for _, tc := range []struct {
		allow []string
		want  string
	}{
		{[]string{"bogus"}, `"bogus"`},
		{[]string{"read"}, `"read"`},
		{[]string{"ptrace", "execve"}, `"execve"`},
		{[]string{""}, `""`},
		{[]string{"clone"}, "clone: only its namespace flags"},
		{[]string{"clone3"}, "clone3: its flags"},
		{[]string{"ioctl"}, "ioctl: only TIOCSTI"},
		{[]string{"personality"}, "personality: only personas"},
	} {
		f, err := NewFilter(tc.allow)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewFilter(%q): got %v, %v; want an error naming %s", tc.allow, f, err, tc.want)
		}
	}
	for _, name := range FilteredSyscalls() {
		if _, err := NewFilter([]string{name}); err != nil {
			t.Errorf("NewFilter([%q]): %v", name, err)
		}
	}

	saved := nativeArch
	nativeArch = nil
	defer func() { nativeArch = saved }()
	if f, err := NewFilter(nil); err == nil || !strings.Contains(err.Error(), runtime.GOARCH) {
		t.Errorf("NewFilter on an unknown architecture: got %v, %v; want an error naming %s", f, err, runtime.GOARCH)
	}
	if err := CheckFilter(); err == nil {
		t.Error("CheckFilter on an unknown architecture: got nil, want an error")
	}
	if n := FilteredSyscalls(); len(n) != 0 {
		t.Errorf("FilteredSyscalls on an unknown architecture: got %q, want none", n)
	}
}

// TestSyscallNumbers checks the table against the syscall package, against
// golang.org/x/sys and, where installed, against the kernel's header.
func TestSyscallNumbers(t *testing.T) {
	a := nativeArch
	if !slices.IsSortedFunc(a.nums, func(x, y sysnum) int { return strings.Compare(x.name, y.name) }) {
		t.Fatal("the table is not sorted by name: lookups would miss")
	}
	for i := 1; i < len(a.nums); i++ {
		if a.nums[i].name == a.nums[i-1].name {
			t.Errorf("%s appears twice", a.nums[i].name)
		}
	}
	used := append(allRefused(), "ioctl", "clone", "clone3", "personality")
	if len(a.nums) != len(used) {
		t.Errorf("the table holds %d names, the filter uses %d", len(a.nums), len(used))
	}
	header := kernelHeader(t)
	for _, name := range used {
		n, ok := a.nr(name)
		if !ok {
			t.Errorf("%s: missing from the table", name)
			continue
		}
		x, ok := xsysNums[name]
		if !ok {
			t.Errorf("%s: no golang.org/x/sys number to check it against", name)
		} else if uintptr(n) != x {
			t.Errorf("%s: table %d, golang.org/x/sys %d", name, n, x)
		}
		if s, ok := syscallPkgNums[name]; ok && uintptr(n) != s {
			t.Errorf("%s: table %d, syscall.SYS_%s %d", name, n, strings.ToUpper(name), s)
		}
		if h, ok := header[name]; ok && n != h {
			t.Errorf("%s: table %d, kernel header %d", name, n, h)
		} else if !ok && header != nil && n < 451 {
			t.Errorf("%s: not in the kernel header", name)
		}
	}
	if SysSeccomp != unix.SYS_SECCOMP {
		t.Errorf("SysSeccomp = %d, golang.org/x/sys says %d", SysSeccomp, unix.SYS_SECCOMP)
	}
	if a.audit != nativeAudit {
		t.Errorf("audit arch %#x, want %#x", a.audit, nativeAudit)
	}
}

// kernelHeader parses the installed kernel header's __NR_ lines, or
// returns nil when linux-libc-dev is not installed.
func kernelHeader(t *testing.T) map[string]uint32 {
	b, err := os.ReadFile(headerPath)
	if err != nil {
		t.Logf("no kernel header to check against: %v", err)
		return nil
	}
	m := map[string]uint32{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "#define" && strings.HasPrefix(f[1], "__NR_") {
			if n, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				m[strings.TrimPrefix(f[1], "__NR_")] = uint32(n)
			}
		}
	}
	if len(m) < 200 {
		t.Fatalf("%s: parsed only %d numbers", headerPath, len(m))
	}
	return m
}

func TestConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"SECCOMP_RET_KILL_PROCESS", retKillProcess, unix.SECCOMP_RET_KILL_PROCESS},
		{"SECCOMP_RET_ERRNO", retErrno, unix.SECCOMP_RET_ERRNO},
		{"SECCOMP_RET_ALLOW", retAllow, unix.SECCOMP_RET_ALLOW},
		{"SECCOMP_SET_MODE_FILTER", seccompSetModeFilter, unix.SECCOMP_SET_MODE_FILTER},
		{"SECCOMP_GET_ACTION_AVAIL", seccompGetActionAvail, unix.SECCOMP_GET_ACTION_AVAIL},
		{"TIOCSTI", tiocsti, unix.TIOCSTI},
		{"TIOCLINUX", tioclinux, unix.TIOCLINUX},
		{"namespace flags", cloneNamespaces, unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
			unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET},
		{"BPF_LD|BPF_W|BPF_ABS", bpfLdWAbs, unix.BPF_LD | unix.BPF_W | unix.BPF_ABS},
		{"BPF_JMP|BPF_JEQ|BPF_K", bpfJeqK, unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K},
		{"BPF_JMP|BPF_JSET|BPF_K", bpfJsetK, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K},
		{"BPF_RET|BPF_K", bpfRetK, unix.BPF_RET | unix.BPF_K},
		{"BPF_MAXINSNS", bpfMaxLen, unix.BPF_MAXINSNS},
		{"offsetof(seccomp_data, nr)", offNr, uint64(unsafe.Offsetof(cSeccompData{}.nr))},
		{"offsetof(seccomp_data, instruction_pointer)", 8, uint64(unsafe.Offsetof(cSeccompData{}.ip))},
		{"offsetof(seccomp_data, arch)", offArch, uint64(unsafe.Offsetof(cSeccompData{}.arch))},
		{"offsetof(seccomp_data, args)", offArgs, uint64(unsafe.Offsetof(cSeccompData{}.args))},
		{"sizeof(sock_filter)", uint64(unsafe.Sizeof(sockFilter{})), uint64(unsafe.Sizeof(unix.SockFilter{}))},
		{"sizeof(sock_fprog)", uint64(unsafe.Sizeof(sockFprog{})), uint64(unsafe.Sizeof(unix.SockFprog{}))},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// TestProgramShape: the longest program (nothing re-allowed) passes the
// kernel's checks with every jump in reach, and so does every other.
func TestProgramShape(t *testing.T) {
	f, err := NewFilter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkProg(f.insns); err != nil {
		t.Fatal(err)
	}
	if int(f.fprog.len) != len(f.insns) || f.fprog.filter != &f.insns[0] || f.Prog() != uintptr(unsafe.Pointer(&f.fprog)) {
		t.Fatal("sock_fprog does not describe the program")
	}
	// Every jump lands within 255 instructions because the whole program
	// is shorter than that: a margin, not luck.
	if len(f.insns) > 255 {
		t.Errorf("the program has %d instructions; the layout relies on fewer than 256", len(f.insns))
	}
	t.Logf("default filter: %d instructions", len(f.insns))
	all, err := NewFilter(FilteredSyscalls())
	if err != nil {
		t.Fatal(err)
	}
	if err := checkProg(all.insns); err != nil {
		t.Fatal(err)
	}
	if d := len(f.insns) - len(all.insns); d != len(FilteredSyscalls()) {
		t.Errorf("re-allowing everything removed %d instructions, want %d", d, len(FilteredSyscalls()))
	}

	var a assembler
	a.jump(bpfJeqK, 0, lAllow, next)
	for range 256 {
		a.op(bpfRetK, retAllow)
	}
	a.place(lAllow)
	a.op(bpfRetK, retAllow)
	if _, err := a.finish(); err == nil {
		t.Error("the assembler accepted a jump of 256 instructions")
	}
}

// cSeccompData is struct seccomp_data as C lays it out.
type cSeccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

// Constants golang.org/x/sys lacks, from <linux/personality.h>,
// <linux/kcmp.h>, <linux/userfaultfd.h> and <asm-generic/ioctls.h>.
const (
	addrNoRandomize  = 0x0040000
	kcmpVM           = 1
	uffdUserModeOnly = 1
	fionread         = 0x541b
)

// seccompData is struct seccomp_data.
type seccompData struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

// word loads the 32-bit word at off as BPF_LD|BPF_W|BPF_ABS does, in the
// byte order of both known architectures.
func (d *seccompData) word(off uint32) uint32 {
	switch {
	case off == offNr:
		return d.nr
	case off == offArch:
		return d.arch
	case off < offArgs:
		return uint32(d.ip >> (8 * (off - 8)))
	}
	a := d.args[(off-offArgs)/8]
	return uint32(a >> (8 * ((off - offArgs) % 8)))
}

// checkProg checks what the kernel's bpf_check_classic and
// seccomp_check_filter check, for the instructions this filter may use.
func checkProg(p []sockFilter) error {
	if len(p) == 0 || len(p) > bpfMaxLen {
		return fmt.Errorf("length %d", len(p))
	}
	for pc, in := range p {
		switch in.code {
		case bpfLdWAbs:
			if in.k >= 64 || in.k%4 != 0 {
				return fmt.Errorf("%d: load of offset %d", pc, in.k)
			}
		case bpfJeqK, bpfJsetK, 0x35 /* jge */, 0x25 /* jgt */ :
			if pc+1+int(in.jt) >= len(p) || pc+1+int(in.jf) >= len(p) {
				return fmt.Errorf("%d: jump out of the program", pc)
			}
		case bpfRetK:
		default:
			return fmt.Errorf("%d: opcode %#x", pc, in.code)
		}
	}
	if p[len(p)-1].code != bpfRetK {
		return errors.New("the program does not end with a return")
	}
	return nil
}

// emulate runs p on d as the kernel would.
func emulate(p []sockFilter, d seccompData) (uint32, error) {
	var acc uint32
	for pc := 0; pc < len(p); pc++ {
		in := p[pc]
		var taken bool
		switch in.code {
		case bpfLdWAbs:
			acc = d.word(in.k)
			continue
		case bpfRetK:
			return in.k, nil
		case bpfJeqK:
			taken = acc == in.k
		case bpfJsetK:
			taken = acc&in.k != 0
		default:
			return 0, fmt.Errorf("%d: opcode %#x", pc, in.code)
		}
		if taken {
			pc += int(in.jt)
		} else {
			pc += int(in.jf)
		}
	}
	return 0, errors.New("ran off the end")
}

// constAllow is the kernel's seccomp_is_const_allow: whether the verdict
// for arch and nr is ALLOW whatever the arguments, so the kernel's action
// cache skips the filter for that call.
func constAllow(p []sockFilter, arch, nr uint32) bool {
	var acc uint32
	for pc := 0; pc < len(p); pc++ {
		in := p[pc]
		switch in.code {
		case bpfLdWAbs:
			switch in.k {
			case offNr:
				acc = nr
			case offArch:
				acc = arch
			default:
				return false
			}
		case bpfRetK:
			return in.k == retAllow
		case bpfJeqK, bpfJsetK:
			taken := acc == in.k
			if in.code == bpfJsetK {
				taken = acc&in.k != 0
			}
			if taken {
				pc += int(in.jt)
			} else {
				pc += int(in.jf)
			}
		default:
			return false
		}
	}
	return false
}

// policy is the intended verdict, stated plainly.
func policy(allow []string, d seccompData) uint32 {
	eperm := uint32(retErrno | uint32(syscall.EPERM))
	if d.arch != nativeAudit {
		return retKillProcess
	}
	if runtime.GOARCH == "amd64" && d.nr&0x40000000 != 0 {
		return eperm
	}
	name := names()[d.nr]
	lo := func(i int) uint32 { return uint32(d.args[i]) } // the kernel's unsigned int
	switch name {
	case "ioctl":
		if lo(1) == unix.TIOCSTI || lo(1) == unix.TIOCLINUX {
			return eperm
		}
		return retAllow
	case "clone":
		if lo(0)&(unix.CLONE_NEWNS|unix.CLONE_NEWCGROUP|unix.CLONE_NEWUTS|unix.CLONE_NEWIPC|
			unix.CLONE_NEWUSER|unix.CLONE_NEWPID|unix.CLONE_NEWNET) != 0 {
			return eperm
		}
		return retAllow
	case "clone3":
		return retErrno | uint32(syscall.ENOSYS)
	case "personality":
		if lo(0) == 0 || lo(0) == 0xffffffff {
			return retAllow
		}
		return eperm
	}
	if name != "" && slices.Contains(allRefused(), name) && !slices.Contains(allow, name) {
		return eperm
	}
	return retAllow
}

// names maps this architecture's numbers back to names.
var names = sync.OnceValue(func() map[uint32]string {
	m := map[uint32]string{}
	for _, s := range nativeArch.nums {
		m[s.nr] = s.name
	}
	return m
})

// interesting are argument values around the filter's comparisons, with
// and without high bits the kernel ignores.
var interesting = []uint64{
	0, 1, 0x11, unix.TIOCSTI, unix.TIOCLINUX, 0x5411, 0x5413, unix.CLONE_NEWUSER, unix.CLONE_NEWUSER | 0x11,
	unix.CLONE_NEWNS, unix.CLONE_NEWNET, unix.CLONE_VM | unix.CLONE_THREAD, unix.CLONE_NEWTIME, 0x40000,
	0xffffffff, 0x100000000, 1<<32 | unix.TIOCSTI, 1<<63 | unix.TIOCLINUX, uint64(unix.CLONE_NEWUSER) << 32,
	0xffffffff00000000, ^uint64(0),
}

// TestEmulatedPolicy runs the program on every number up to 1024 (and
// their x32 twins), every interesting argument in each position, under
// several allow lists, and compares with policy.
func TestEmulatedPolicy(t *testing.T) {
	allows := [][]string{nil, {"ptrace"}, {"mount", "umount2", "unshare"}, FilteredSyscalls()}
	for _, allow := range allows {
		f, err := NewFilter(allow)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for nr := uint32(0); nr < 1024; nr++ {
			for _, nr := range []uint32{nr, nr | 0x40000000} {
				for _, v := range interesting {
					for pos := range 3 {
						d := seccompData{nr: nr, arch: nativeAudit, ip: 0x400000}
						d.args[pos] = v
						got, err := emulate(f.insns, d)
						if err != nil {
							t.Fatal(err)
						}
						if want := policy(allow, d); got != want {
							t.Fatalf("allow %q, nr %d args %#x: got %#x, want %#x", allow, nr, d.args, got, want)
						}
						n++
					}
				}
			}
		}
		for _, arch := range []uint32{unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM, unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_AARCH64, 0, ^uint32(0)} {
			if arch == nativeAudit {
				continue
			}
			for nr := uint32(0); nr < 512; nr++ {
				if got, _ := emulate(f.insns, seccompData{nr: nr, arch: arch}); got != retKillProcess {
					t.Fatalf("arch %#x nr %d: got %#x, want KILL_PROCESS", arch, nr, got)
				}
			}
		}
		if n == 0 {
			t.Fatal("compared nothing")
		}
	}
}

// TestCacheable: every call but the three the filter checks by argument
// is decided on arch and nr alone, so the kernel skips the filter for the
// allowed ones (read, write, futex...) once it has seen them.
func TestCacheable(t *testing.T) {
	f, err := NewFilter(nil)
	if err != nil {
		t.Fatal(err)
	}
	argChecked := map[uint32]bool{}
	for _, c := range []string{"ioctl", "clone", "personality"} {
		n, _ := nativeArch.nr(c)
		argChecked[n] = true
	}
	cached := 0
	for nr := uint32(0); nr < 1024; nr++ {
		want := !argChecked[nr] && policy(nil, seccompData{nr: nr, arch: nativeAudit}) == retAllow
		if got := constAllow(f.insns, nativeAudit, nr); got != want {
			t.Errorf("nr %d: cacheable %v, want %v", nr, got, want)
		}
		if want {
			cached++
		}
	}
	if n, _ := nativeArch.nr("ioctl"); constAllow(f.insns, nativeAudit, n) {
		t.Error("ioctl is cacheable: its arguments are not checked")
	}
	t.Logf("%d of 1024 numbers skip the filter", cached)
}

// FuzzFilter feeds seccomp_data to the emulated program and compares the
// verdict with policy. name, when it names a call in the table, picks its
// number on this architecture, so seeds mean the same on every one;
// allowBits picks calls from FilteredSyscalls to re-allow.
func FuzzFilter(f *testing.F) {
	f.Add(false, uint32(0), "ioctl", uint32(0), uint64(3), uint64(1<<32|unix.TIOCSTI), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0))
	filtered := FilteredSyscalls()
	f.Fuzz(func(t *testing.T, foreign bool, arch uint32, name string, nr uint32, a0, a1, a2, a3, a4, a5, allowBits uint64) {
		var allow []string
		for i, n := range filtered {
			if i < 64 && allowBits&(1<<i) != 0 {
				allow = append(allow, n)
			}
		}
		filter, err := NewFilter(allow)
		if err != nil {
			t.Fatalf("NewFilter(%q): %v", allow, err)
		}
		if err := checkProg(filter.insns); err != nil {
			t.Fatalf("allow %q: %v", allow, err)
		}
		if n, ok := nativeArch.nr(name); ok {
			nr = n
		}
		d := seccompData{nr: nr, arch: nativeAudit, args: [6]uint64{a0, a1, a2, a3, a4, a5}}
		if foreign {
			d.arch = arch
		}
		got, err := emulate(filter.insns, d)
		if err != nil {
			t.Fatal(err)
		}
		if want := policy(allow, d); got != want {
			t.Fatalf("allow %q, %+v: got %#x, want %#x", allow, d, got, want)
		}
	})
}

func TestFuzzFilterSeedCorpusNotEmpty(t *testing.T) {
	ents, err := os.ReadDir("testdata/fuzz/FuzzFilter")
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus: got %d files (%v), want some", len(ents), err)
	}
}

func TestCheckFilter(t *testing.T) {
	avail, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail")
	if err != nil {
		t.Skip("kernel without seccomp filters: ", err)
	}
	want := true
	for _, a := range []string{"kill_process", "errno", "allow"} {
		want = want && slices.Contains(strings.Fields(string(avail)), a)
	}
	if err := CheckFilter(); (err == nil) != want {
		t.Errorf("CheckFilter() = %v with actions %q", err, strings.TrimSpace(string(avail)))
	}
}

// Real processes.

// helperArg runs the test binary as a helper that installs the filter.
const helperArg = "__seccomp-test-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		runtime.LockOSThread()
		os.Exit(helper(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// helper: "probe FILTER" installs FILTER on this thread and prints each
// probe's errno; "exec FILTER ARGV..." installs it and execve's ARGV;
// "workload" exercises threads, fork and exec in a filtered process.
// FILTER is none, eperm (NewFilter(nil)), distinct (refusing with
// distinct) or allow=NAME,NAME.
func helper(args []string) int {
	switch {
	case args[0] == "probe" && len(args) == 2:
		pty, _ := syscall.Open("/dev/ptmx", syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
		if err := installFor(args[1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		w := bufio.NewWriter(os.Stdout)
		for _, p := range probes(pty) {
			if p.skip {
				fmt.Fprintf(w, "%s skip\n", p.name)
				continue
			}
			fmt.Fprintf(w, "%s %d\n", p.name, p.call())
		}
		w.Flush()
		return 0
	case args[0] == "exec" && len(args) > 2:
		if err := installFor(args[1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		err := syscall.Exec(args[2], args[2:], os.Environ())
		fmt.Fprintln(os.Stderr, "exec:", err)
		return 127
	case args[0] == "workload":
		if err := workload(); err != nil {
			fmt.Println("workload:", err)
			return 1
		}
		fmt.Println("ok")
		return 0
	}
	fmt.Fprintln(os.Stderr, "bad helper arguments", args)
	return 2
}

func installFor(spec string) error {
	var insns []sockFilter
	var err error
	switch {
	case spec == "none":
		return nil
	case spec == "eperm":
		insns, err = compile(nativeArch, nil, uint32(syscall.EPERM))
	case spec == "distinct":
		insns, err = compile(nativeArch, nil, uint32(distinct))
	case strings.HasPrefix(spec, "allow="):
		var f *Filter
		if f, err = NewFilter(strings.Split(strings.TrimPrefix(spec, "allow="), ",")); err == nil {
			insns = f.insns
		}
	default:
		err = errors.New("bad filter " + spec)
	}
	if err != nil {
		return err
	}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); e != 0 {
		return e
	}
	return newFilter(insns).Install()
}

type probe struct {
	name string
	skip bool
	call func() syscall.Errno
}

var (
	emptyPath = [1]byte{}
	scratch   [64]byte
)

// plainProbes are harmless calls of each refused system call: invalid
// descriptors, addresses or commands, or queries, so that unfiltered each
// fails (or succeeds) without effect, and not with EPERM when run as root.
func plainProbes() map[string][6]uintptr {
	const bad = 1 // an address in the unmapped first page: EFAULT
	none := ^uintptr(0)
	empty := uintptr(unsafe.Pointer(&emptyPath[0]))
	buf := uintptr(unsafe.Pointer(&scratch[0]))
	pid := uintptr(syscall.Getpid())
	return map[string][6]uintptr{
		"ptrace":            {unix.PTRACE_PEEKDATA, 0}, // pid 0: ESRCH
		"process_vm_readv":  {pid, 0, 0, 0, 0, 1},      // flags: EINVAL
		"process_vm_writev": {pid, 0, 0, 0, 0, 1},
		"process_madvise":   {none, 0, 0, 0, 0},
		"pidfd_getfd":       {none, 0, 0},
		"kcmp":              {pid, pid, kcmpVM}, // compares itself: 0
		"keyctl":            {unix.KEYCTL_GET_KEYRING_ID, none /* thread keyring */, 0},
		"add_key":           {bad, bad, 0, 0, none},
		"request_key":       {bad, bad, 0, 0},
		"bpf":               {0xffff, 0, 0},
		"perf_event_open":   {bad, 0, none, none, 0},
		"userfaultfd":       {uffdUserModeOnly | 2}, // flags: EINVAL
		"io_uring_setup":    {0, bad},
		"io_uring_enter":    {none, 0, 0, 0, 0, 0},
		"io_uring_register": {none, 0, 0, 0},
		"kexec_load":        {0, 0, 0, 0xffffffff},
		"kexec_file_load":   {none, none, 0, 0, 0xffff},
		"init_module":       {bad, 1, bad},
		"finit_module":      {none, empty, 0},
		"delete_module":     {bad, 0},
		"mount":             {0, bad, 0, 0, 0},
		"umount2":           {bad, 0},
		"pivot_root":        {bad, bad},
		"move_mount":        {none, empty, none, empty, 0},
		"open_tree":         {none, empty, 0},
		"open_tree_attr":    {none, empty, 0, 0, 0},
		"fsopen":            {bad, 0},
		"fsconfig":          {none, 0, 0, 0, 0},
		"fsmount":           {none, 0, 0},
		"fspick":            {none, empty, 0},
		"mount_setattr":     {none, empty, 0, 0, 0}, // size 0: EINVAL
		"unshare":           {0},                    // nothing: 0
		"setns":             {none, 0},
		"acct":              {bad}, // not NULL, which would switch accounting off
		"swapon":            {bad, 0},
		"swapoff":           {bad},
		"reboot":            {0, 0, 0, 0}, // no magic: EINVAL
		"settimeofday":      {bad, 0},
		"clock_settime":     {1000, bad}, // no such clock: EINVAL
		"clock_adjtime":     {1000, bad},
		"adjtimex":          {bad},
		"quotactl":          {0, 0, 0, 0}, // no device: ENODEV
		"quotactl_fd":       {none, 0, 0, 0},
		"open_by_handle_at": {none, bad, 0},
		"syslog":            {10 /* SYSLOG_ACTION_SIZE_BUFFER */, 0, 0},
		"iopl":              {4},             // level > 3: EINVAL
		"ioperm":            {0x10000, 1, 1}, // beyond the bitmap: EINVAL
		"modify_ldt":        {0, buf, 0},     // read 0 bytes
	}
}

func sys(name string) uintptr {
	n, ok := nativeArch.nr(name)
	if !ok {
		panic("no number for " + name)
	}
	return uintptr(n)
}

func probes(pty int) []probe {
	var ps []probe
	plain := plainProbes()
	for _, name := range FilteredSyscalls() {
		a, ok := plain[name]
		ps = append(ps, probe{name: name, skip: !ok, call: func() syscall.Errno {
			_, _, e := syscall.RawSyscall6(sys(name), a[0], a[1], a[2], a[3], a[4], a[5])
			return e
		}})
	}
	raw := func(name string, nr uintptr, a ...uintptr) probe {
		a = append(a, 0, 0, 0, 0, 0, 0)
		return probe{name: name, call: func() syscall.Errno {
			_, _, e := syscall.RawSyscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
			return e
		}}
	}
	persona := func(name string, p uintptr) probe {
		return probe{name: name, call: func() syscall.Errno {
			_, _, e := syscall.RawSyscall(sys("personality"), p, 0, 0)
			syscall.RawSyscall(sys("personality"), 0, 0, 0)
			return e
		}}
	}
	none := ^uintptr(0)
	char := uintptr(unsafe.Pointer(&scratch[0]))
	ps = append(ps,
		raw("getpid", syscall.SYS_GETPID),
		raw("unknown-nr", 1000),
		raw("clone3", sys("clone3"), 0, 0), // size 0: EINVAL
		probe{name: "fork", call: func() syscall.Errno { return rawFork(uintptr(syscall.SIGCHLD), false) }},
		probe{name: "clone-newuser", call: func() syscall.Errno {
			return rawFork(unix.CLONE_NEWUSER|uintptr(syscall.SIGCHLD), false)
		}},
		// The kernel ignores clone's high word, so a namespace flag there
		// asks for nothing and must not be refused.
		probe{name: "clone-newuser-high", call: func() syscall.Errno {
			return rawFork(unix.CLONE_NEWUSER<<32|uintptr(syscall.SIGCHLD), false)
		}},
		probe{name: "ptrace-traceme", call: func() syscall.Errno { return rawFork(uintptr(syscall.SIGCHLD), true) }},
		raw("ioctl-tiocsti", sys("ioctl"), none, unix.TIOCSTI, char),
		raw("ioctl-tiocsti-high", sys("ioctl"), none, 1<<32|unix.TIOCSTI, char), // CVE-2019-10063
		raw("ioctl-tioclinux", sys("ioctl"), none, unix.TIOCLINUX, char),
		raw("ioctl-tioclinux-high", sys("ioctl"), none, 0xdead<<32|unix.TIOCLINUX, char),
		raw("ioctl-fionread", sys("ioctl"), none, fionread, char),
		persona("personality-query", 0xffffffff),
		persona("personality-linux", 0),
		persona("personality-linux-high", 1<<32), // the kernel sees PER_LINUX
		persona("personality-norandom", addrNoRandomize),
		persona("personality-norandom-high", 1<<32|addrNoRandomize),
	)
	if pty >= 0 {
		// On a real terminal, to show the kernel runs the high-bit request.
		ps = append(ps,
			raw("pty-tiocsti-high", sys("ioctl"), uintptr(pty), 1<<32|unix.TIOCSTI, char),
			raw("pty-fionread", sys("ioctl"), uintptr(pty), fionread, char))
	} else {
		ps = append(ps, probe{name: "pty-tiocsti-high", skip: true}, probe{name: "pty-fionread", skip: true})
	}
	if runtime.GOARCH == "amd64" {
		ps = append(ps, raw("x32-getpid", 0x40000000|syscall.SYS_GETPID))
	}
	return ps
}

// rawFork forks with clone(flags) and waits. With traceme the child calls
// ptrace(PTRACE_TRACEME), the attach an exploit or debugger would start
// with, and exits with its errno, which rawFork returns. The child runs
// only raw system calls, with every signal blocked.
//
//go:norace
func rawFork(flags uintptr, traceme bool) syscall.Errno {
	all, old := ^uint64(0), uint64(0)
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigSetmask, uintptr(unsafe.Pointer(&all)), uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	pid, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, flags, 0, 0, 0, 0, 0)
	if e == 0 && pid == 0 {
		code := uintptr(0)
		if traceme {
			_, _, c := syscall.RawSyscall(syscall.SYS_PTRACE, syscall.PTRACE_TRACEME, 0, 0)
			code = uintptr(c)
		}
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, code, 0, 0)
	}
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigSetmask, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	if e != 0 {
		return e
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(int(pid), &ws, 0, nil); err != nil {
		return err.(syscall.Errno)
	}
	if !ws.Exited() {
		return syscall.ECHILD
	}
	return syscall.Errno(ws.ExitStatus())
}

// workload runs in a process the filter confines whole (exec'd after the
// install): the Go runtime starts threads, forks and execs, while clone
// with a namespace flag, from any thread, is refused.
func workload() error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	if !bytes.Contains(status, []byte("\nSeccomp:\t2\n")) {
		return errors.New("not in seccomp filter mode")
	}
	// Eight goroutines locked to eight threads at once: the runtime must
	// clone new threads under the filter.
	const n = 8
	var wg, started sync.WaitGroup
	release := make(chan struct{})
	started.Add(n)
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			started.Done()
			<-release
		})
	}
	started.Wait()
	status, _ = os.ReadFile("/proc/self/status")
	close(release)
	wg.Wait()
	var threads int
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:\t"); ok {
			threads, _ = strconv.Atoi(v)
		}
	}
	if threads <= n {
		return fmt.Errorf("%d threads with %d locked goroutines", threads, n)
	}
	runtime.GC()
	if err := exec.Command("/usr/bin/true").Run(); err != nil {
		return fmt.Errorf("run /usr/bin/true: %w", err)
	}
	cmd := exec.Command("/usr/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	if err := cmd.Run(); !errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("clone with CLONE_NEWUSER from the Go runtime: got %v, want EPERM", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err != nil {
		return fmt.Errorf("loopback read: %w", err)
	}
	return nil
}

func helperBinary(t *testing.T) string {
	t.Helper()
	if _, err := NewFilter(nil); err != nil {
		t.Skip(err)
	}
	if err := CheckFilter(); err != nil {
		t.Skip(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self
}

// probeAll runs the probe helper under filter and returns each probe's
// errno; skipped probes are absent.
func probeAll(t *testing.T, filter string) map[string]syscall.Errno {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), helperBinary(t), helperArg, "probe", filter)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe %s: %v: %s", filter, err, stderr.Bytes())
	}
	m := map[string]syscall.Errno{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, v, _ := strings.Cut(line, " ")
		if v == "skip" {
			continue
		}
		e, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("probe %s: bad line %q", filter, line)
		}
		m[name] = syscall.Errno(e)
	}
	return m
}

// argProbes are the probes beyond the plain refusals, with what the filter
// answers them: 0 for a call it lets through to the kernel.
var argProbes = map[string]syscall.Errno{
	"getpid": 0, "unknown-nr": 0,
	"clone3": syscall.ENOSYS, "fork": 0, "clone-newuser": syscall.EPERM, "clone-newuser-high": 0,
	"ptrace-traceme": syscall.EPERM,
	"ioctl-tiocsti":  syscall.EPERM, "ioctl-tiocsti-high": syscall.EPERM,
	"ioctl-tioclinux": syscall.EPERM, "ioctl-tioclinux-high": syscall.EPERM, "ioctl-fionread": 0,
	"pty-tiocsti-high": syscall.EPERM, "pty-fionread": 0,
	"personality-query": 0, "personality-linux": 0, "personality-linux-high": 0,
	"personality-norandom": syscall.EPERM, "personality-norandom-high": syscall.EPERM,
	"x32-getpid": syscall.EPERM,
}

// TestFilterRefusesLive: a process that installed the filter tries every
// call it refuses and gets EPERM (ENOSYS for clone3), while the same calls
// unfiltered reach the kernel; the variant refusing with distinct shows
// the refusal is the filter's even where the kernel would say EPERM too.
func TestFilterRefusesLive(t *testing.T) {
	base := probeAll(t, "none")
	filtered := probeAll(t, "eperm")
	variant := probeAll(t, "distinct")
	// As root, and under no filter of its own, the baseline must not say
	// EPERM: then the filtered EPERM is the filter's. (A container
	// runtime's filter would answer EPERM to some probes itself.)
	status, _ := os.ReadFile("/proc/self/status")
	root := os.Geteuid() == 0 && bytes.Contains(status, []byte("\nSeccomp:\t0\n"))

	want := map[string]syscall.Errno{}
	for k, v := range argProbes {
		want[k] = v
	}
	for _, name := range FilteredSyscalls() {
		want[name] = syscall.EPERM
		if _, ok := base[name]; !ok {
			t.Errorf("%s: refused but never probed", name)
		}
	}
	for name, refusal := range want {
		b, ok := base[name]
		if !ok {
			if name != "x32-getpid" && !strings.HasPrefix(name, "pty-") {
				t.Errorf("%s: not probed", name)
			}
			continue
		}
		f, v := filtered[name], variant[name]
		switch refusal {
		case 0:
			if f != b || v != b {
				t.Errorf("%s: the filter changed the result: %v unfiltered, %v filtered, %v in the variant", name, b, f, v)
			}
		case syscall.EPERM:
			if f != syscall.EPERM || v != distinct {
				t.Errorf("%s: got %v filtered and %v in the variant, want EPERM and %v", name, f, v, distinct)
			}
			if root && b == syscall.EPERM {
				t.Errorf("%s: EPERM even unfiltered, as root: the probe proves nothing", name)
			}
		default:
			if f != refusal || v != refusal || b == refusal {
				t.Errorf("%s: got %v unfiltered, %v filtered, %v in the variant; want %v only filtered", name, b, f, v, refusal)
			}
		}
	}
	// The trap the masked compare avoids: the kernel runs TIOCSTI when
	// the request has high bits set.
	if b, ok := base["pty-tiocsti-high"]; ok && root && b != 0 {
		t.Errorf("ioctl(pty, 1<<32|TIOCSTI) unfiltered as root: got %v, want success", b)
	}
	if b := base["personality-norandom"]; b != 0 {
		t.Errorf("personality(ADDR_NO_RANDOMIZE) unfiltered: got %v, want success", b)
	}
	if b := base["clone-newuser"]; b != 0 {
		t.Logf("clone(CLONE_NEWUSER) unfiltered: %v (user namespaces unavailable); the variant still proves the refusal", b)
	}
}

func TestFilterAllowLive(t *testing.T) {
	base := probeAll(t, "none")
	got := probeAll(t, "allow=ptrace,unshare")
	for _, name := range []string{"ptrace", "ptrace-traceme", "unshare"} {
		if got[name] != base[name] {
			t.Errorf("%s re-allowed: got %v, want %v as unfiltered", name, got[name], base[name])
		}
	}
	if got["ptrace-traceme"] != 0 {
		t.Errorf("PTRACE_TRACEME re-allowed: got %v, want success", got["ptrace-traceme"])
	}
	for _, name := range []string{"keyctl", "mount", "setns", "clone-newuser", "ioctl-tiocsti-high"} {
		if got[name] != syscall.EPERM {
			t.Errorf("%s with ptrace and unshare re-allowed: got %v, want EPERM", name, got[name])
		}
	}
}

// runUnder runs argv with the filter installed (filter "none" for the
// baseline) and returns its exit status and output.
func runUnder(t *testing.T, filter string, argv ...string) (*os.ProcessState, string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), helperBinary(t), append([]string{helperArg, "exec", filter}, argv...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader("")
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %q: %v", argv, err)
	}
	return cmd.ProcessState, stdout.String(), stderr.String()
}

func need(t *testing.T, bin string) {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s is not installed", bin)
	}
}

// TestFilterRefusesRealPrograms: real tools an attacker would reach for
// work unfiltered and are refused under the filter, which execve keeps.
func TestFilterRefusesRealPrograms(t *testing.T) {
	for _, tc := range [][]string{
		{"/usr/bin/unshare", "-U", "/usr/bin/true"},
		{"/usr/bin/unshare", "-Ur", "/usr/bin/true"},
		{"/usr/bin/unshare", "-m", "/usr/bin/true"},
		{"/usr/bin/unshare", "-n", "/usr/bin/true"},
		{"/usr/bin/strace", "-o", "/dev/null", "/usr/bin/true"},
		{"/usr/bin/setarch", "-R", "/usr/bin/true"}, // personality(ADDR_NO_RANDOMIZE)
		{"/usr/bin/nsenter", "-t", "1", "-m", "/usr/bin/true"},
	} {
		t.Run(filepath.Base(tc[0])+" "+tc[1], func(t *testing.T) {
			need(t, tc[0])
			if st, _, stderr := runUnder(t, "none", tc...); !st.Success() {
				t.Skipf("fails even unfiltered here: %s", stderr)
			}
			st, _, stderr := runUnder(t, "eperm", tc...)
			if st.Success() || !strings.Contains(stderr, "Operation not permitted") {
				t.Errorf("under the filter: got %v, %q; want a failure with EPERM", st, stderr)
			}
		})
	}
}

// TestFilterKeepsWorkloads: a whole filtered process still starts threads,
// forks and execs (Go, glibc's clone3 fallback in Python), and a clone
// with a namespace flag from the Go runtime is refused.
func TestFilterKeepsWorkloads(t *testing.T) {
	st, out, stderr := runUnder(t, "eperm", helperBinary(t), helperArg, "workload")
	if !st.Success() || strings.TrimSpace(out) != "ok" {
		t.Errorf("Go workload under the filter: %v, %q, %q", st, out, stderr)
	}
	need(t, "/usr/bin/python3")
	const py = `
import os, subprocess, threading
r = []
ts = [threading.Thread(target=lambda: r.append(os.getpid())) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
subprocess.run(["/usr/bin/true"], check=True)
pid = os.fork()
if pid == 0: os._exit(7)
print(len(r), os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
`
	st, out, stderr = runUnder(t, "eperm", "/usr/bin/python3", "-c", py)
	if !st.Success() || strings.TrimSpace(out) != "4 7" {
		t.Errorf("python threads, subprocess and fork under the filter: %v, %q, %q", st, out, stderr)
	}
}

// TestFilterKeepsOrdinaryPrograms runs everyday programs with and without
// the filter: same exit status, and no refusal in what they print.
func TestFilterKeepsOrdinaryPrograms(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := strconv.Itoa(closed.Addr().(*net.TCPAddr).Port)
	closed.Close()
	big := filepath.Join(t.TempDir(), "lines")
	var lines strings.Builder
	for i := range 200000 {
		lines.WriteString(strconv.Itoa(i*7919%200000) + "\n")
	}
	if err := os.WriteFile(big, []byte(lines.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{
		{"/usr/bin/true"},
		{"/usr/bin/ls", "-la", "/"},
		{"/usr/bin/cat", "/etc/os-release"},
		{"/usr/bin/sh", "-c", "echo a b | tr ' ' '\\n' | sort | uniq -c | wc -l"},
		{"/usr/bin/sort", "--parallel=4", "-S", "1M", "-n", "-o", "/dev/null", big},
		{"/usr/bin/df", "-h"},
		{"/usr/bin/ps", "-ef"},
		{"/usr/bin/id"},
		{"/usr/bin/date"},
		{"/usr/bin/getent", "hosts", "localhost"},
		{"/usr/bin/curl", "-sS", "http://localhost:" + port + "/"},
		{"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", closedPort, "-t", "t", "-m", "m"},
		{"/usr/bin/systemctl", "status", "--no-pager"},
		{"/usr/bin/python3", "-c", "import ssl, sqlite3, json; print(json.dumps([1]))"},
		{"/usr/bin/tar", "-cf", "/dev/null", "/etc/hostname"},
	} {
		t.Run(filepath.Base(argv[0]), func(t *testing.T) {
			need(t, argv[0])
			bst, bout, berr := runUnder(t, "none", argv...)
			fst, fout, ferr := runUnder(t, "eperm", argv...)
			if bst.ExitCode() != fst.ExitCode() {
				t.Errorf("exit status %d under the filter, %d without: %q", fst.ExitCode(), bst.ExitCode(), ferr)
			}
			for _, refusal := range []string{"not permitted", "not implemented", "Bad system call"} {
				if strings.Contains(ferr+fout, refusal) && !strings.Contains(berr+bout, refusal) {
					t.Errorf("under the filter it says %q: %q", refusal, ferr)
				}
			}
		})
	}
}

// BenchmarkNewFilter: the trampoline compiles the filter for every
// sandboxed command.
func BenchmarkNewFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewFilter([]string{"ptrace"}); err != nil {
			b.Fatal(err)
		}
	}
}
