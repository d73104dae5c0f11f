package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by every error that means "no cgroup can give
// this here": the caller falls back to per-process rlimits and says why.
var ErrUnavailable = errors.New("no delegated cgroup v2 subtree")

const (
	// LeafName is the child of the delegated cgroup that Delegated moves
	// the relay into, so that its job siblings may have controllers.
	LeafName = "relay"
	// JobPrefix starts the name of every job cgroup. Open kills and
	// removes children with this prefix as leftovers of a crashed relay,
	// and leaves every other child alone.
	JobPrefix = "relay-job-"

	maxName = 64
	// cpuPeriod is the cpu.max period; CPUMax is scaled to it.
	cpuPeriod = 100 * time.Millisecond
	// minCPUMax is the smallest CPUMax: the kernel's minimum quota is 1 ms
	// per period.
	minCPUMax = 10 * time.Millisecond
	// killWait bounds how long a kill waits for the cgroup to empty. A
	// SIGKILLed process only lingers in uninterruptible sleep (a hung NFS
	// server, a dying disk); the caller is then told instead of blocking.
	killWait = 10 * time.Second
)

// Controller names a cgroup v2 controller that a job's limits need.
type Controller string

const (
	Memory Controller = "memory" // memory.max
	Pids   Controller = "pids"   // pids.max
	CPU    Controller = "cpu"    // cpu.max
)

var controllers = []Controller{Memory, Pids, CPU}

// Limits are a job cgroup's limits. Zero means no limit; negative is an
// error.
type Limits struct {
	// MemoryMax is memory.max in bytes. With it, swap is denied
	// (memory.swap.max 0, where swap is accounted) so that the limit
	// bounds the job's memory rather than moving it to swap.
	MemoryMax int64
	// PidsMax is pids.max: tasks (processes and threads) in the job.
	PidsMax int64
	// CPUMax is the CPU time the job may use per second of wall time,
	// written as cpu.max over a 100 ms period: 500ms is half a core,
	// 2s two cores. At least 10ms.
	CPUMax time.Duration
}

// Stats is a job's accounting. A field is -1 when this kernel or tree does
// not account it (its controller or file is missing), never a guess.
type Stats struct {
	MemoryPeak int64         // memory.peak, bytes (Linux 5.19)
	CPU        time.Duration // cpu.stat usage_usec (user and system)
	PidsPeak   int64         // pids.peak (Linux 6.1)
	OOMKills   int64         // memory.events oom_kill
}

// Tree is a delegated cgroup v2 subtree where job cgroups are made. It is
// safe for concurrent use.
type Tree struct {
	dir string // absolute path of the subtree's root cgroup directory
	// why holds, for each controller job cgroups lack, the reason in
	// words a user can act on. Read-only after Open.
	why map[Controller]string
}

// Path is the directory of the subtree's root cgroup.
func (t *Tree) Path() string { return t.dir }

// Has reports whether job cgroups in t can enforce limits of controller c;
// when they cannot, why says why in words a user can act on (for relay
// sandbox check and relay doctor).
func (t *Tree) Has(c Controller) (ok bool, why string) {
	if !slices.Contains(controllers, c) {
		return false, fmt.Sprintf("unknown controller %q", c)
	}
	why, missing := t.why[c]
	return !missing, why
}

// Delegated finds the cgroup v2 subtree this process may manage: the cgroup
// it is in, per the "0::" line of /proc/self/cgroup on the cgroup2 mount
// found in /proc/self/mountinfo (wherever it is mounted), when it is
// writable and delegated. Under systemd, delegated means marked with the
// trusted.delegate or user.delegate xattr, which systemd sets for
// Delegate=yes (versions too old to set them are refused), or, for a
// non-root relay, handed over by a privileged manager: the cgroup is
// writable and its parent is not. Without systemd, writable is enough.
//
// Because of cgroup v2's no-internal-processes rule, it then moves this
// whole process into the child LeafName, so that job cgroups (its siblings)
// may have controllers, and calls Open. A process already in a LeafName
// child of a delegated cgroup (a second call, or after exec) uses that
// parent. It refuses a tree whose LeafName holds another process: that is
// another relay, whose jobs Open would remove as stale. Call it once, at
// daemon start, before starting any other process.
//
// An error wraps ErrUnavailable and says why in words a user can act on.
func Delegated() (*Tree, error) {
	dir, err := Locate()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	leaf := filepath.Join(dir, LeafName)
	if err := unix.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("%w: create %s: %v", ErrUnavailable, leaf, err)
	}
	for _, pid := range readProcs(leaf) {
		if pid != self {
			return nil, fmt.Errorf("%w: cgroup %s is in use by another relay (pid %d)", ErrUnavailable, dir, pid)
		}
	}
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(self)), 0); err != nil {
		return nil, fmt.Errorf("%w: move the relay into %s: %v", ErrUnavailable, leaf, err)
	}
	return Open(dir)
}

// Locate finds the delegated cgroup Delegated would use, without moving
// anything: what relay sandbox check reports for the process it runs in.
func Locate() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	pc, err := parseProcCgroup(string(b))
	if errors.Is(err, errNoV2) {
		return "", fmt.Errorf("%w: cgroup v2 is not mounted", ErrUnavailable)
	}
	if err != nil {
		return "", fmt.Errorf("%w: /proc/self/cgroup: %v", ErrUnavailable, err)
	}
	b, err = os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	ms, err := parseMountinfo(string(b))
	if err != nil {
		return "", fmt.Errorf("%w: /proc/self/mountinfo: %v", ErrUnavailable, err)
	}
	cs := candidates(pc.path, ms)
	if !slices.ContainsFunc(ms, func(m mount) bool { return m.fstype == "cgroup2" }) {
		return "", fmt.Errorf("%w: cgroup v2 is not mounted", ErrUnavailable)
	}
	self := os.Getpid()
	var c candidate
	for _, cand := range cs {
		if isCgroup2(cand.dir) && slices.Contains(readProcs(cand.dir), self) {
			c = cand
			break
		}
	}
	if c.dir == "" {
		return "", fmt.Errorf("%w: the relay's cgroup %s is not visible under any cgroup2 mount", ErrUnavailable, pc.path)
	}
	cg := pc.path
	if filepath.Base(c.dir) == LeafName && c.dir != c.point && delegation(filepath.Dir(c.dir)) == "" {
		cg, c.dir = filepath.Dir(cg), filepath.Dir(c.dir)
	}
	if why := delegation(c.dir); why != "" {
		return "", fmt.Errorf("%w: the relay's cgroup %s %s", ErrUnavailable, cg, why)
	}
	return c.dir, nil
}

// systemdRunning is sd_booted(3): whether systemd manages this host's
// cgroups. A variable so that a test can ask for systemd's rules.
var systemdRunning = func() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// delegation returns why the cgroup dir is not one this process may
// manage, or "" when it is.
func delegation(dir string) string {
	if err := writable(dir); err != nil {
		return fmt.Sprintf("is not delegated to uid %d (%v): set Delegate=yes in the relay's systemd unit", os.Geteuid(), err)
	}
	if !systemdRunning() {
		return ""
	}
	for _, attr := range []string{"trusted.delegate", "user.delegate"} {
		v := make([]byte, 8)
		if n, err := unix.Getxattr(dir, attr, v); err == nil && string(v[:n]) == "1" {
			return ""
		}
	}
	// Only a privileged manager can chown a cgroup to us under a parent we
	// cannot write (or cannot see: a cgroup namespace's root), and systemd
	// does it only for Delegate=yes.
	if os.Geteuid() != 0 && unix.Faccessat(unix.AT_FDCWD, filepath.Join(filepath.Dir(dir), "cgroup.procs"), unix.W_OK, unix.AT_EACCESS) != nil {
		return ""
	}
	return "is managed by systemd but not delegated: set Delegate=yes in the relay's systemd unit"
}

// writable checks what the kernel's delegation model hands a delegatee:
// the directory, its cgroup.procs and its cgroup.subtree_control.
func writable(dir string) error {
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control"} {
		mode := uint32(unix.W_OK)
		if f == "" {
			mode |= unix.X_OK
		}
		p := filepath.Join(dir, f)
		if err := unix.Faccessat(unix.AT_FDCWD, p, mode, unix.AT_EACCESS); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// Open uses dir, a cgroup v2 directory the caller owns alone, as the
// subtree, without moving any process. It kills and removes every JobPrefix
// child (a crashed relay's leftovers, nested cgroups included) and enables
// in dir's cgroup.subtree_control those of the memory, pids and cpu
// controllers it can; Has says which it could not, and why. An error wraps
// ErrUnavailable.
func Open(dir string) (*Tree, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("%w: cgroup %q is not an absolute path", ErrUnavailable, dir)
	}
	dir = filepath.Clean(dir)
	if !isCgroup2(dir) {
		return nil, fmt.Errorf("%w: %s is not a cgroup v2 directory", ErrUnavailable, dir)
	}
	if err := writable(dir); err != nil {
		return nil, fmt.Errorf("%w: cgroup %s is not delegated to uid %d: %v", ErrUnavailable, dir, os.Geteuid(), err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), JobPrefix) {
			if err := destroy(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("%w: remove stale job cgroup: %v", ErrUnavailable, err)
			}
		}
	}
	return &Tree{dir: dir, why: enable(dir)}, nil
}

// enable turns on the controllers jobs need in dir's subtree_control and
// returns why each one it could not is missing.
func enable(dir string) map[Controller]string {
	why := map[Controller]string{}
	avail, err1 := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	on, err2 := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err := errors.Join(err1, err2); err != nil {
		for _, c := range controllers {
			why[c] = err.Error()
		}
		return why
	}
	var v1 []string
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		if pc, err := parseProcCgroup(string(b)); err == nil {
			v1 = pc.v1
		}
	}
	for _, c := range controllers {
		name := string(c)
		switch {
		case slices.Contains(strings.Fields(string(on)), name):
		case !slices.Contains(strings.Fields(string(avail)), name):
			if slices.Contains(v1, name) {
				why[c] = fmt.Sprintf("the %s controller is bound to a cgroup v1 hierarchy (boot with cgroup v2 alone, e.g. systemd.unified_cgroup_hierarchy=1)", c)
			} else {
				why[c] = fmt.Sprintf("the %s controller is not delegated to cgroup %s (set Delegate=yes in the relay's systemd unit)", c, dir)
			}
		default:
			err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+name), 0)
			switch {
			case errors.Is(err, unix.EBUSY):
				why[c] = fmt.Sprintf("cgroup %s holds processes of its own, so its children cannot have the %s controller (cgroup v2's no-internal-processes rule)", dir, c)
			case err != nil:
				why[c] = fmt.Sprintf("cannot enable the %s controller in %s: %v", c, dir, err)
			}
		}
	}
	return why
}

// validName accepts what a job id looks like and nothing that could name
// another path: no '/', no '.', no control characters.
func validName(name string) error {
	ok := name != "" && len(name) <= maxName
	for _, r := range name {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}
	if !ok {
		return fmt.Errorf("job cgroup name %q: want 1 to %d letters, digits, '-' or '_'", name, maxName)
	}
	return nil
}

// setting is one file written into a new job cgroup.
type setting struct {
	file, value string
	need        Controller
	optional    bool // missing from some kernels; not a limit we report
}

func (t *Tree) settings(l Limits) ([]setting, error) {
	if l.MemoryMax < 0 || l.PidsMax < 0 || l.CPUMax < 0 {
		return nil, fmt.Errorf("negative limit in %+v", l)
	}
	if l.CPUMax > 0 && l.CPUMax < minCPUMax {
		return nil, fmt.Errorf("cpu limit %v is below the minimum %v", l.CPUMax, minCPUMax)
	}
	var s []setting
	if _, missing := t.why[Memory]; !missing {
		// An OOM kill takes the whole job, never half of it.
		s = append(s, setting{file: "memory.oom.group", value: "1", need: Memory, optional: true})
	}
	if l.MemoryMax > 0 {
		s = append(s, setting{file: "memory.max", value: strconv.FormatInt(l.MemoryMax, 10), need: Memory},
			setting{file: "memory.swap.max", value: "0", need: Memory, optional: true})
	}
	if l.PidsMax > 0 {
		s = append(s, setting{file: "pids.max", value: strconv.FormatInt(l.PidsMax, 10), need: Pids})
	}
	if l.CPUMax > 0 {
		quota := l.CPUMax.Microseconds() / int64(time.Second/cpuPeriod)
		s = append(s, setting{file: "cpu.max", value: fmt.Sprintf("%d %d", quota, cpuPeriod.Microseconds()), need: CPU})
	}
	for _, x := range s {
		if why, missing := t.why[x.need]; missing {
			return nil, fmt.Errorf("%w: cannot enforce %s: %s", ErrUnavailable, x.file, why)
		}
	}
	return s, nil
}

// NewJob makes the job cgroup JobPrefix+name and writes its limits before
// any process can enter it. It refuses, creating nothing, an invalid name, an
// existing cgroup, and a non-zero limit whose controller is missing (that
// error wraps ErrUnavailable).
func (t *Tree) NewJob(name string, l Limits) (*Job, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	s, err := t.settings(l)
	if err != nil {
		return nil, fmt.Errorf("job cgroup %s: %w", name, err)
	}
	dir := filepath.Join(t.dir, JobPrefix+name)
	if err := unix.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create job cgroup %s: %w", dir, err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		unix.Rmdir(dir)
		return nil, fmt.Errorf("open job cgroup %s: %w", dir, err)
	}
	for _, x := range s {
		err := writeAt(fd, x.file, x.value)
		if err != nil && !(x.optional && errors.Is(err, unix.ENOENT)) {
			unix.Close(fd)
			unix.Rmdir(dir)
			return nil, fmt.Errorf("job cgroup %s: %w", dir, err)
		}
	}
	return &Job{dir: dir, fd: fd, tree: t}, nil
}

// SetLimits writes l into a job cgroup made ahead of its job, before the
// job is handed to the process waiting in it: a limit too low for what
// the process already uses fails, and the caller must then not use it.
func (j *Job) SetLimits(l Limits) error {
	s, err := j.tree.settings(l)
	if err != nil {
		return fmt.Errorf("job cgroup %s: %w", j.dir, err)
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.fd < 0 {
		return fmt.Errorf("job cgroup %s is closed", j.dir)
	}
	for _, x := range s {
		if err := writeAt(j.fd, x.file, x.value); err != nil && !(x.optional && errors.Is(err, unix.ENOENT)) {
			return fmt.Errorf("job cgroup %s: %w", j.dir, err)
		}
	}
	return nil
}

// Job is one job's cgroup. It is safe for concurrent use.
type Job struct {
	dir  string
	tree *Tree
	mu   sync.RWMutex
	// fd is an O_DIRECTORY descriptor of dir, through which every file of
	// the job is reached; -1 once closed. Guarded by mu: Close holds it
	// exclusively so that no one uses a closed (or reused) number.
	fd int
}

// Path is the job cgroup's directory.
func (j *Job) Path() string { return j.dir }

// FD is an O_DIRECTORY|O_CLOEXEC descriptor of the job cgroup for
// syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: FD()}, which starts the
// process inside it (clone3 CLONE_INTO_CGROUP, Linux 5.7), so that not even
// its first instruction runs outside. Valid until Close; -1 after.
func (j *Job) FD() int {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.fd
}

// Kill kills every process in the job cgroup and its descendants, whatever
// their session, process group or parent, and returns once none is left
// (or with an error after a bound). It uses cgroup.kill (Linux 5.14); on
// older kernels it freezes the cgroup and SIGKILLs each member through a
// pidfd. The job must not be given new processes after Kill. Kill after
// Close returns nil: nothing is left.
func (j *Job) Kill() error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.fd < 0 {
		return nil
	}
	return kill(j.fd, j.dir, true)
}

// Stats reads the job's accounting; after Kill it is final. It is an error
// after Close.
func (j *Job) Stats() (Stats, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.fd < 0 {
		return Stats{}, fmt.Errorf("job cgroup %s is closed", j.dir)
	}
	var s Stats
	var cpu int64
	var errs [4]error
	s.MemoryPeak, errs[0] = value(j.fd, "memory.peak", "")
	cpu, errs[1] = value(j.fd, "cpu.stat", "usage_usec")
	s.PidsPeak, errs[2] = value(j.fd, "pids.peak", "")
	s.OOMKills, errs[3] = value(j.fd, "memory.events", "oom_kill")
	s.CPU = -1
	if cpu >= 0 {
		s.CPU = time.Duration(cpu) * time.Microsecond
	}
	if err := errors.Join(errs[:]...); err != nil {
		return Stats{}, fmt.Errorf("job cgroup %s: %w", j.dir, err)
	}
	return s, nil
}

// Close kills whatever is left in the job, waits until it is empty, and
// removes the job cgroup and any cgroup nested in it. It is idempotent; on
// error the job stays open and Close may be retried.
func (j *Job) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fd < 0 {
		return nil
	}
	if err := kill(j.fd, j.dir, true); err != nil {
		return err
	}
	if err := removeAll(j.dir); err != nil {
		return fmt.Errorf("remove job cgroup: %w", err)
	}
	unix.Close(j.fd)
	j.fd = -1
	return nil
}

// destroy kills and removes the cgroup dir.
func destroy(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := kill(fd, dir, true); err != nil {
		return err
	}
	return removeAll(dir)
}

// removeAll removes the empty cgroup dir, its descendants first. cgroupfs
// holds no symlinks, and a name from readdir holds no '/'.
func removeAll(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rmdir %s: %w", dir, err)
	}
	return nil
}

// readProcs lists the pids in dir's cgroup.procs; nil if it cannot.
func readProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	return parsePids(string(b))
}

func parsePids(s string) []int {
	var pids []int
	for _, f := range strings.Fields(s) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// readAt reads the file name in the directory dirfd.
func readAt(dirfd int, name string) (string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	defer unix.Close(fd)
	s, err := pread(fd)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// pread reads fd from offset 0; for cgroup.events it also re-arms poll.
func pread(fd int) (string, error) {
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Pread(fd, buf, int64(len(b)))
		if err != nil {
			return "", err
		}
		if n == 0 {
			return string(b), nil
		}
		b = append(b, buf[:n]...)
	}
}

// writeAt writes value to the file name in the directory dirfd in one
// write, as cgroupfs wants.
func writeAt(dirfd int, name, value string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, name, err)
	}
	return nil
}

// value reads a number from a cgroup file: the whole file when key is "",
// else the "key N" line of a flat-keyed file. It is -1 without error when
// the file or key does not exist.
func value(dirfd int, file, key string) (int64, error) {
	s, err := readAt(dirfd, file)
	if errors.Is(err, unix.ENOENT) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	v, ok := strings.TrimSpace(s), key == ""
	if !ok {
		v, ok = field(s, key)
	}
	if !ok {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1, fmt.Errorf("%s: %q: %w", file, v, err)
	}
	return n, nil
}

// field finds "key value" in a flat-keyed cgroup file.
func field(s, key string) (string, bool) {
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Offered returns which of the controllers job limits need dir's
// cgroup.controllers offers, without changing anything: what relay sandbox
// check can report about a tree it must not touch.
func Offered(dir string) (offered, missing []Controller) {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	have := strings.Fields(string(b))
	for _, c := range controllers {
		if slices.Contains(have, string(c)) {
			offered = append(offered, c)
		} else {
			missing = append(missing, c)
		}
	}
	return offered, missing
}
