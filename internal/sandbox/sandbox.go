package sandbox

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaychat/relay/internal/cgroup"
	"github.com/relaychat/relay/internal/exec"
	tr "github.com/relaychat/relay/internal/sandbox/trampoline"
	"github.com/relaychat/relay/policy"
)

// ErrUnenforceable is wrapped by every error New returns because this host
// cannot enforce what a profile asks for. The command must be refused and
// the refusal audited.
var ErrUnenforceable = errors.New("sandbox cannot be enforced on this host")

// Defaults for a zero field of policy.Sandbox.
const (
	DefaultNoFile       = 256
	DefaultFileSize     = 64 << 20
	DefaultAddressSpace = 4 << 30
	DefaultProcs        = 256
	DefaultTmpSize      = 64 << 20
	DefaultMemory       = 1 << 30
	DefaultCPUs         = 1.0
	minNoFile           = tr.MinNoFile
)

const (
	minABI = tr.MinABI
	// nsFlags are the namespaces every sandboxed command gets; net is
	// added unless the profile has network.
	nsFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP
	// statusFD is where the trampoline's init reports the command's wait
	// status: the first of exec.Wrapped's ExtraFiles.
	statusFD = 3
)

// setupCaps are the capabilities the trampoline holds inside the command's
// user namespace, and only there, to build its world: mounts and
// pivot_root, and dropping the bounding set. It drops them all before the
// command starts.
var setupCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP}

// Identity is the account a command runs as.
type Identity struct{ UID, GID int }

// Options is what the host contributes to every profile.
type Options struct {
	// Protected are paths that must never be readable or writable: the
	// relay's state dir, audit dir, secret files, config and credentials.
	// Where one lies inside the command's view it is masked.
	Protected []string
	// Workdir is the command's working directory; it must lie inside the
	// view. "" means /.
	Workdir string
	// Timeout is the command's timeout, the default CPU limit.
	Timeout time.Duration
	// CommandUser is who commands run as when the relay runs as root;
	// nil refuses every sandboxed command as root. It must be neither 0
	// nor 65534, which other processes share.
	CommandUser *Identity
	// SelfExe is the binary that runs the trampoline; "" means this very
	// executable, started as /proc/self/exe so that the trampoline is the
	// running version even after an upgrade replaced the file.
	SelfExe string
	// Cgroups is the relay's delegated cgroup v2 subtree, where each job
	// gets a cgroup of its own with memory, pids and cpu limits; nil
	// leaves only the per-process rlimits.
	Cgroups *cgroup.Tree
	// Launcher, when set, keeps trampolines started ahead of their jobs.
	Launcher *Launcher
	// Probe replaces the host probe; nil means Probe. Tests use it to
	// simulate a host without a feature.
	Probe func() Capabilities
}

// Profile is a validated sandbox profile that this host can enforce. It
// implements exec.Wrapper. One Profile serves one invocation.
type Profile struct {
	caps      Capabilities
	exe       string // what Wrap starts
	exeName   string // its argv[0], for ps
	protected []string
	binds     []string // host paths bound into the view (the trees a mask may lie in)
	argvRoots []string // where argv[0] may live (granted executable)
	roots     []root   // Landlock grants, before expansion
	cloneNet  bool
	id        Identity
	asRoot    bool
	spec      tr.Spec // everything but Rules
	cgroups   *cgroup.Tree
	limits    cgroup.Limits
	launcher  *Launcher

	mu   sync.Mutex
	jobs []*cgroup.Job // made by Wrap, closed when their job is done or by Close
}

type root struct {
	path     string
	access   uint64
	optional bool // a default that may be missing on this system
	declared bool // named by the policy: must not touch a protected path
	private  bool // made by the trampoline: no host path shows through it
}

// defaultRead are the host trees every command sees, read-only.
var defaultRead = []string{"/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc"}

// hostDefault is one of defaultRead as this host has it.
type hostDefault struct {
	path     string
	target   string // the link's target, when path is a symlink
	resolved string // where the link leads, "" if nowhere
}

// hostDefaults looks at defaultRead once per process: /lib and /bin do not
// change from one command to the next, and a New per command paid a
// dozen system calls for them.
var hostDefaults = sync.OnceValue(func() []hostDefault {
	var out []hostDefault
	for _, d := range defaultRead {
		fi, err := os.Lstat(d)
		if err != nil {
			continue // /lib32 and friends are optional
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				continue
			}
			r, _ := filepath.EvalSymlinks(d)
			out = append(out, hostDefault{path: d, target: target, resolved: r})
		case fi.IsDir():
			out = append(out, hostDefault{path: d})
		}
	}
	return out
})

// scratch are the private, writable tmpfs directories of every view. A
// Landlock rule covers everything beneath its path, binds included, so no
// host path may be declared under them: the rule would make it writable
// for Landlock, and only the mount layer would stand in the way.
var scratch = []string{"/tmp", "/var/tmp", "/dev/shm"}

// skeleton are the parts of the view the trampoline makes itself, with
// what Landlock grants on them. /run is private too, but read-only and
// without a rule of its own, so that sockets and files bound beneath it
// keep rules of their own.
var skeleton = []root{
	{private: true, path: "/tmp", access: accReadWrite},
	{private: true, path: "/var/tmp", access: accReadWrite},
	{private: true, path: "/dev/shm", access: accReadWrite},
	{private: true, path: "/dev", access: tr.AccessFSReadDir},
	{private: true, path: "/proc", access: accRead},
	{private: true, path: "/dev/null", access: accReadWrite & fileRights},
	{private: true, path: "/dev/full", access: accReadWrite & fileRights},
	{private: true, path: "/dev/zero", access: accRead & fileRights},
	{private: true, path: "/dev/random", access: accRead & fileRights},
	{private: true, path: "/dev/urandom", access: accRead & fileRights},
}

// New validates p against o and this host. It fails, wrapping
// ErrUnenforceable, when the host cannot enforce p, and fails when p names
// a path inside a protected one or a workdir outside the view.
func New(p policy.Sandbox, o Options) (*Profile, error) {
	if p.Disabled {
		return nil, errors.New("sandbox profile is disabled (sandbox: none): run the command without a wrapper")
	}
	probe := o.Probe
	if probe == nil {
		probe = Probe
	}
	pr := &Profile{caps: probe()}
	if err := pr.enforceable(p); err != nil {
		return nil, err
	}
	if err := pr.identity(o.CommandUser); err != nil {
		return nil, err
	}
	if _, err := tr.NewFilter(p.AllowSyscalls); err != nil {
		return nil, fmt.Errorf("sandbox.allow_syscalls: %w", err)
	}

	var err error
	if o.SelfExe == "" {
		// The running binary itself, even after an upgrade replaced the
		// file: a different version could misread the profile.
		pr.exe, pr.exeName = "/proc/self/exe", "relay"
		if e, err := os.Executable(); err == nil {
			pr.exeName = e
		}
	} else if pr.exe, err = filepath.EvalSymlinks(o.SelfExe); err != nil {
		return nil, fmt.Errorf("resolve sandbox trampoline %q: %w", o.SelfExe, err)
	} else {
		pr.exeName = pr.exe
	}
	if _, err := os.Stat(pr.exe); err != nil {
		return nil, fmt.Errorf("sandbox trampoline: %w", err)
	}

	for _, q := range o.Protected {
		if !filepath.IsAbs(q) {
			return nil, fmt.Errorf("protected path %q is not absolute", q)
		}
		c := filepath.Clean(q)
		pr.protected = append(pr.protected, c)
		if r := resolve(c); r != c {
			pr.protected = append(pr.protected, r)
		}
	}

	s := &pr.spec
	for _, d := range hostDefaults() {
		if pr.isProtected(d.path) {
			continue // a default such as /etc itself protected: leave it out
		}
		if d.target != "" {
			// Merged /usr: /lib is usr/lib. The link is recreated; what
			// it points to is visible through its own tree.
			s.Mounts = append(s.Mounts, tr.Mount{Kind: tr.Symlink, Path: d.path, Target: d.target})
			if d.resolved == "" {
				continue
			}
			if !pr.visible(d.resolved) {
				pr.bind(tr.BindRO, d.resolved, true)
			}
			pr.roots = append(pr.roots, root{path: d.resolved, access: accReadExec, optional: true})
			pr.argvRoots = append(pr.argvRoots, d.resolved)
			continue
		}
		pr.bind(tr.BindRO, d.path, true)
		pr.roots = append(pr.roots, root{path: d.path, access: accReadExec, optional: true})
		pr.argvRoots = append(pr.argvRoots, d.path)
	}
	// Declared paths: read ones read-only (already visible ones, under
	// /usr say, need no bind of their own), write ones read-write; a
	// device node gets file rights only.
	for _, g := range []struct {
		key   string
		paths []string
		write bool
	}{{"sandbox.read", p.Read, false}, {"sandbox.write", p.Write, true}} {
		kind, access, devAccess := tr.BindRO, uint64(accReadExec), uint64(accRead)
		if g.write {
			kind, access, devAccess = tr.BindRW, accReadWrite, accReadWrite
		}
		for _, d := range g.paths {
			r, err := pr.declared(g.key, d)
			if err != nil {
				return nil, err
			}
			if dev, err := isDevice(r); err != nil {
				return nil, err
			} else if dev {
				pr.bind(tr.BindDev, r, false)
				pr.roots = append(pr.roots, root{path: r, access: devAccess & fileRights, declared: true})
				continue
			}
			if g.write || !pr.visible(r) {
				pr.bind(kind, r, false)
			}
			pr.mirror(d)
			pr.roots = append(pr.roots, root{path: r, access: access, declared: true})
			if !g.write {
				pr.argvRoots = append(pr.argvRoots, r)
			}
		}
	}
	for _, d := range p.Sockets {
		r, err := pr.declared("sandbox.sockets", d)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(r)
		if err != nil {
			return nil, fmt.Errorf("sandbox.sockets path %q: %w", d, err)
		}
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("sandbox.sockets path %q is not a unix socket", d)
		}
		pr.bind(tr.BindSocket, r, false)
		pr.mirror(d)
		if pr.caps.LandlockUnix {
			pr.roots = append(pr.roots, root{path: r, access: tr.AccessFSResolveUnix | tr.AccessFSWriteFile | tr.AccessFSReadFile, declared: true})
		}
	}
	if p.Network || len(p.ConnectPorts) > 0 {
		// /etc/resolv.conf is often a symlink into /run, which the view
		// replaces: name resolution is part of having a network.
		if r, err := filepath.EvalSymlinks("/etc/resolv.conf"); err == nil && !pr.isProtected(r) {
			if !pr.visible(r) {
				pr.bind(tr.BindRO, r, true)
			}
			pr.roots = append(pr.roots, root{path: r, access: accRead & fileRights, optional: true})
		}
	}
	pr.roots = append(pr.roots, skeleton...)
	if p.Pty {
		s.Pty = true
		pr.roots = append(pr.roots, root{private: true, path: "/dev/pts", access: accReadWrite | tr.AccessFSIoctlDev})
	}
	// Protected paths inside a bound tree are masked: the command finds an
	// empty directory or file there, whatever Landlock would say.
	for _, q := range pr.protected {
		for _, b := range pr.binds {
			if within(q, b) && q != b {
				s.Mounts = append(s.Mounts, tr.Mount{Kind: tr.Mask, Path: q})
				break
			}
		}
	}
	slices.SortStableFunc(s.Mounts, func(a, b tr.Mount) int { return strings.Compare(a.Path, b.Path) })
	s.Mounts = slices.CompactFunc(s.Mounts, func(a, b tr.Mount) bool { return a == b })

	wd := o.Workdir
	if wd == "" {
		wd = "/"
	}
	if s.Workdir, err = pr.workdir(wd); err != nil {
		return nil, err
	}

	s.ABI = min(pr.caps.LandlockABI, tr.MaxKnownABI)
	s.FS = tr.FSRights(s.ABI)
	if pr.caps.LandlockUnix {
		s.FS |= tr.AccessFSResolveUnix // handled; granted only in write dirs and declared sockets
	}
	s.UID, s.GID = pr.id.UID, pr.id.GID
	s.Groups = !pr.asRoot
	s.StatusFD = statusFD
	s.Allow = slices.Clone(p.AllowSyscalls)
	pr.cloneNet = !p.Network && len(p.ConnectPorts) == 0
	switch {
	case p.Network:
	case len(p.ConnectPorts) > 0:
		s.Net = tr.NetTCP
		if pr.caps.LandlockUDP {
			s.Net |= tr.NetUDP
		}
		s.Ports = slices.Clone(p.ConnectPorts)
	default:
		if s.ABI >= 4 {
			s.Net = tr.NetTCP // defence in depth behind the network namespace
		}
	}
	if s.ABI >= 6 {
		s.Scope = tr.ScopeSignal | tr.ScopeAbstractUnixSocket
	}

	cpu := p.CPU
	if cpu == 0 {
		cpu = o.Timeout
	}
	if cpu <= 0 {
		return nil, errors.New("sandbox needs a cpu limit: set sandbox.cpu or the command's timeout")
	}
	s.CPU = uint64((cpu + time.Second - 1) / time.Second)
	s.NoFile = orDefault(p.NoFile, DefaultNoFile)
	if s.NoFile < minNoFile {
		return nil, fmt.Errorf("sandbox.nofile %d is too low: the sandbox needs at least %d", s.NoFile, minNoFile)
	}
	if p.FileSize < 0 || p.AddressSpace < 0 || p.TmpSize < 0 {
		return nil, errors.New("sandbox.fsize, sandbox.address_space and sandbox.tmp_size must not be negative")
	}
	s.FSize = orDefault(uint64(p.FileSize), DefaultFileSize)
	s.AS = orDefault(uint64(p.AddressSpace), DefaultAddressSpace)
	s.NProc = orDefault(p.Procs, DefaultProcs)
	s.TmpSize = orDefault(uint64(p.TmpSize), DefaultTmpSize)
	if p.Memory < 0 || p.CPUs < 0 {
		return nil, errors.New("sandbox.memory and sandbox.cpus must not be negative")
	}
	pr.cgroups, pr.launcher = o.Cgroups, o.Launcher
	pr.limits = cgroup.Limits{
		MemoryMax: int64(orDefault(uint64(p.Memory), DefaultMemory)),
		PidsMax:   int64(s.NProc),
		CPUMax:    time.Duration(cmp.Or(p.CPUs, DefaultCPUs) * float64(time.Second)),
	}
	if pr.cgroups != nil {
		// A limit this tree cannot enforce is left to the rlimits, as
		// relay sandbox check reports; the others hold for the job.
		for c, zero := range map[cgroup.Controller]*int64{cgroup.Memory: &pr.limits.MemoryMax, cgroup.Pids: &pr.limits.PidsMax} {
			if ok, _ := pr.cgroups.Has(c); !ok {
				*zero = 0
			}
		}
		if ok, _ := pr.cgroups.Has(cgroup.CPU); !ok {
			pr.limits.CPUMax = 0
		}
	}
	return pr, nil
}

func orDefault(v, d uint64) uint64 {
	if v == 0 {
		return d
	}
	return v
}

// identity decides who the command runs as: the relay's own uid inside
// its user namespace, or, as root, the configured command user.
func (pr *Profile) identity(u *Identity) error {
	if !pr.caps.Root {
		pr.id = Identity{UID: os.Getuid(), GID: os.Getgid()}
		return nil
	}
	if u == nil {
		return fmt.Errorf("%w: relay runs as root but no command user is set up: create one with `useradd --system --no-create-home --shell /usr/sbin/nologin relay-cmd`, or set command_user", ErrUnenforceable)
	}
	switch {
	case u.UID <= 0 || u.GID <= 0:
		return fmt.Errorf("%w: command user %d:%d is root: commands must never run as root", ErrUnenforceable, u.UID, u.GID)
	case u.UID == 65534 || u.GID == 65534:
		return fmt.Errorf("%w: command user %d:%d is nobody, which other processes share: create a dedicated user such as relay-cmd", ErrUnenforceable, u.UID, u.GID)
	}
	pr.id, pr.asRoot = *u, true
	return nil
}

// enforceable refuses p when the probed host cannot enforce it, naming
// the fix.
func (pr *Profile) enforceable(p policy.Sandbox) error {
	c := pr.caps
	if c.LandlockABI == 0 {
		return fmt.Errorf("%w: landlock: %s", ErrUnenforceable, c.LandlockErr)
	}
	if c.LandlockABI < minABI {
		return fmt.Errorf("%w: landlock ABI %d is too old, the sandbox needs ABI %d (Linux >= 6.2) to deny truncating read-only files", ErrUnenforceable, c.LandlockABI, minABI)
	}
	if len(p.ConnectPorts) > 0 && !p.Network && c.LandlockABI < 4 {
		return fmt.Errorf("%w: connect_ports needs landlock ABI 4 (Linux >= 6.7), have %d: use network: true or upgrade the kernel", ErrUnenforceable, c.LandlockABI)
	}
	if !c.UserNS {
		return fmt.Errorf("%w: every sandboxed command runs in its own namespaces, and this host cannot create them: %s", ErrUnenforceable, c.UserNSErr)
	}
	if !c.Seccomp {
		return fmt.Errorf("%w: seccomp: %s", ErrUnenforceable, c.SeccompErr)
	}
	// With the host's network the command shares the host's abstract
	// unix sockets; only Landlock's scope keeps it off them.
	if (p.Network || len(p.ConnectPorts) > 0) && c.LandlockABI < 6 {
		return fmt.Errorf("%w: landlock ABI %d cannot scope abstract unix sockets (needs ABI 6, Linux >= 6.12), which a command with the host's network could reach: drop network and connect_ports, or upgrade the kernel", ErrUnenforceable, c.LandlockABI)
	}
	return nil
}

// declared resolves a path named by the policy and refuses one that is, or
// is inside, a protected path.
func (pr *Profile) declared(what, p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s path %q is not absolute", what, p)
	}
	r, err := filepath.EvalSymlinks(filepath.Clean(p))
	if err != nil {
		return "", fmt.Errorf("%s path %q: %w (create it or remove it from the policy)", what, p, err)
	}
	for _, d := range scratch {
		if within(r, d) {
			return "", fmt.Errorf("%s path %q is under %s, which every command gets fresh and private: keep what a command shares with the host somewhere else", what, p, d)
		}
	}
	for _, q := range pr.protected {
		if within(r, q) {
			return "", fmt.Errorf("%s path %q is inside the protected path %q: commands may never touch the relay's state, audit, secrets or config", what, p, q)
		}
	}
	return r, nil
}

func (pr *Profile) isProtected(p string) bool {
	for _, q := range pr.protected {
		if within(p, q) {
			return true
		}
	}
	return false
}

// bind adds a host path to the view.
func (pr *Profile) bind(k tr.MountKind, p string, optional bool) {
	pr.spec.Mounts = append(pr.spec.Mounts, tr.Mount{Kind: k, Path: p, Optional: optional})
	pr.binds = append(pr.binds, p)
}

// visible reports whether host path p already shows through a tree the
// view binds read-only or read-write.
func (pr *Profile) visible(p string) bool {
	for _, m := range pr.spec.Mounts {
		if (m.Kind == tr.BindRO || m.Kind == tr.BindRW) && within(p, m.Path) {
			return true
		}
	}
	return false
}

// mirror recreates, for a declared path that went through symlinks, the
// link at the path the policy wrote, where that link would otherwise be
// missing from the view: /var/run/x still works when /var/run is /run.
func (pr *Profile) mirror(declared string) {
	cur := "/"
	for _, c := range strings.Split(strings.TrimPrefix(filepath.Clean(declared), "/"), "/") {
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil {
			return
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if !pr.visible(next) && !pr.skeletonHolds(next) {
				if target, err := os.Readlink(next); err == nil {
					pr.spec.Mounts = append(pr.spec.Mounts, tr.Mount{Kind: tr.Symlink, Path: next, Target: target})
				}
			}
			r, err := filepath.EvalSymlinks(next)
			if err != nil {
				return
			}
			next = r
		}
		cur = next
	}
}

// skeletonHolds reports whether p is a directory the trampoline makes
// itself, where no link may be created.
func (pr *Profile) skeletonHolds(p string) bool {
	switch p {
	case "/proc", "/dev", "/tmp", "/var", "/var/tmp", "/run", "/dev/shm":
		return true
	}
	return false
}

// workdir resolves wd and checks that the command can enter it in the view.
func (pr *Profile) workdir(wd string) (string, error) {
	if !filepath.IsAbs(wd) {
		return "", fmt.Errorf("workdir %q is not absolute", wd)
	}
	r, err := filepath.EvalSymlinks(filepath.Clean(wd))
	if err != nil {
		return "", fmt.Errorf("workdir %q: %w", wd, err)
	}
	if pr.isProtected(r) {
		return "", fmt.Errorf("workdir %q is inside a protected path", wd)
	}
	if r == "/" || slices.Contains(scratch, r) {
		return r, nil // the view's root, or a private directory: empty, but there
	}
	for _, b := range pr.binds {
		if within(r, b) {
			return r, nil
		}
	}
	return "", fmt.Errorf("workdir %q is not inside the sandbox's view: add it to sandbox.read or sandbox.write", wd)
}

func isDevice(p string) (bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	return fi.Mode()&fs.ModeDevice != 0, nil
}

// resolve resolves the symlinks of the longest existing prefix of p, so a
// protected path that does not exist yet is still compared correctly.
func resolve(p string) string {
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// within reports whether p is dir or inside it. Both are clean and absolute.
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// Identity returns who the command runs as: inside its user namespace, and,
// as the same numbers, on the host.
func (pr *Profile) Identity() Identity { return pr.id }

// Close releases what the profile holds for its invocation: the cgroups of
// jobs that never started or whose end was not reported. Call it after the
// command and everything it started are dead.
func (pr *Profile) Close() error {
	pr.mu.Lock()
	jobs := pr.jobs
	pr.jobs = nil
	pr.mu.Unlock()
	var errs []error
	for _, j := range jobs {
		errs = append(errs, j.Close())
	}
	return errors.Join(errs...)
}

// jobCgroup makes the cgroup one Wrap's job runs in, or returns nil when
// the relay has none to give.
func (pr *Profile) jobCgroup() (*cgroup.Job, error) {
	if pr.cgroups == nil {
		return nil, nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	j, err := pr.cgroups.NewJob(hex.EncodeToString(b[:]), pr.limits)
	if err != nil {
		return nil, fmt.Errorf("sandbox: job cgroup: %w", err)
	}
	pr.mu.Lock()
	pr.jobs = append(pr.jobs, j)
	pr.mu.Unlock()
	return j, nil
}

// finish is a job's end: whatever is left in its cgroup is killed (the pid
// namespace died with its init, so nothing should be), the cgroup's
// accounting goes into the result, and the cgroup is removed.
func (pr *Profile) finish(j *cgroup.Job, res *exec.Result) {
	if err := j.Kill(); err == nil {
		if st, err := j.Stats(); err == nil {
			res.MemoryPeak, res.OOMKills = st.MemoryPeak, st.OOMKills
			if st.CPU >= 0 {
				res.CPU = st.CPU
			}
		}
	}
	if j.Close() == nil {
		pr.mu.Lock()
		pr.jobs = slices.DeleteFunc(pr.jobs, func(x *cgroup.Job) bool { return x == j })
		pr.mu.Unlock()
	}
}

// Cgroup says what the job cgroup limits of this profile are, and which
// hold only per process, for relay sandbox check.
func (pr *Profile) Cgroup() (cgroup.Limits, bool) { return pr.limits, pr.cgroups != nil }

// Wrap returns the trampoline invocation that runs argv with exactly env
// inside the sandbox: a trampoline started ahead by the profile's Launcher,
// or one to start now.
func (pr *Profile) Wrap(argv, env []string) (*exec.Wrapped, error) {
	s, err := pr.jobSpec(argv, env)
	if err != nil {
		return nil, err
	}
	if pr.launcher != nil {
		return pr.wrapWarm(s)
	}
	return pr.wrapCold(s)
}

// jobSpec is the trampoline's whole profile for one command.
func (pr *Profile) jobSpec(argv, env []string) (*tr.Spec, error) {
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		return nil, errors.New("sandbox: argv[0] must be an absolute path")
	}
	bin, err := filepath.EvalSymlinks(argv[0])
	if err != nil {
		return nil, fmt.Errorf("sandbox: resolve %q: %w", argv[0], err)
	}
	if !pr.executable(bin) {
		return nil, fmt.Errorf("sandbox: %q is not executable inside the sandbox: add its directory to sandbox.read", argv[0])
	}
	s := pr.spec
	s.Rules = nil
	for _, r := range pr.roots {
		rs, err := pr.grant(r)
		if err != nil {
			return nil, err
		}
		s.Rules = append(s.Rules, rs...)
	}
	for i := range s.Rules {
		s.Rules[i].Access &= s.FS
	}
	s.Rules = slices.DeleteFunc(s.Rules, func(r tr.Rule) bool { return r.Access == 0 })
	s.Argv, s.Env = slices.Clone(argv), slices.Clone(env)
	return &s, nil
}

// key is what a trampoline for this profile gets when it starts.
func (pr *Profile) key() warmKey {
	return warmKey{exe: pr.exe, exeName: pr.exeName, id: pr.id, asRoot: pr.asRoot, cloneNet: pr.cloneNet, cgroups: pr.cgroups}
}

// sysProcAttr is how a trampoline for k is cloned: into every namespace,
// with one uid mapped, and the capabilities it needs to build the view.
func (k warmKey) sysProcAttr() *syscall.SysProcAttr {
	sys := &syscall.SysProcAttr{Cloneflags: nsFlags, AmbientCaps: setupCaps}
	if k.cloneNet {
		sys.Cloneflags |= unix.CLONE_NEWNET
	}
	sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: k.id.UID, HostID: k.id.UID, Size: 1}}
	sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: k.id.GID, HostID: k.id.GID, Size: 1}}
	if k.asRoot {
		// Root may drop its supplementary groups in the new namespace,
		// and must: they would still count on the host.
		sys.Credential = &syscall.Credential{Uid: uint32(k.id.UID), Gid: uint32(k.id.GID), Groups: []uint32{}}
		sys.GidMappingsEnableSetgroups = true
	}
	return sys
}

// wrapCold is Wrap without a launcher: the runner starts the trampoline,
// with its profile in a sealed memfd.
func (pr *Profile) wrapCold(s *tr.Spec) (*exec.Wrapped, error) {
	sys := pr.key().sysProcAttr()
	prof, err := profileFile(s)
	if err != nil {
		return nil, err
	}
	job, err := pr.jobCgroup()
	if err != nil {
		prof.Close()
		return nil, err
	}
	var done func(*exec.Result)
	if job != nil {
		// Born in its cgroup (clone3 CLONE_INTO_CGROUP), which the cgroup
		// namespace then makes the job's root.
		sys.UseCgroupFD, sys.CgroupFD = true, job.FD()
		done = func(r *exec.Result) { pr.finish(job, r) }
	}
	return &exec.Wrapped{
		Path:          pr.exe,
		Args:          []string{pr.exeName, tr.Arg},
		Env:           trampolineEnv(), // the command's own is in the profile
		Dir:           "/",             // the trampoline enters the workdir inside the view
		SysProcAttr:   sys,
		ReportsStatus: true,
		ExtraFiles:    []*os.File{prof},
		Done:          done,
	}, nil
}

// profileFile writes s into a sealed memfd, the trampoline's descriptor
// tr.ProfileFD: out of argv, where the command could read it in
// /proc/1/cmdline.
func profileFile(s *tr.Spec) (*os.File, error) {
	b, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("relay-sandbox-profile", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("sandbox: profile memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "relay-sandbox-profile")
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: write the profile: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: seal the profile: %w", err)
	}
	return f, nil
}

func (pr *Profile) executable(bin string) bool {
	if pr.isProtected(bin) {
		return false
	}
	for _, r := range pr.argvRoots {
		if within(bin, r) {
			return true
		}
	}
	return false
}

// grant turns one root into rules that never cover a protected path: a
// directory containing one is replaced by its other children, recursively.
func (pr *Profile) grant(r root) ([]tr.Rule, error) {
	if r.private {
		return []tr.Rule{{Path: r.path, Access: r.access, Optional: r.optional}}, nil
	}
	var inner []string
	for _, q := range pr.protected {
		if within(r.path, q) {
			if r.declared {
				return nil, fmt.Errorf("sandbox: %q is inside the protected path %q", r.path, q)
			}
			return nil, nil // a default such as /etc itself protected: drop it
		}
		if within(q, r.path) {
			inner = append(inner, q)
		}
	}
	if len(inner) == 0 {
		return []tr.Rule{{Path: r.path, Access: r.access, Optional: r.optional}}, nil
	}
	var out []tr.Rule
	var walk func(dir string) error
	walk = func(dir string) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("sandbox: list %q to keep protected paths out: %w", dir, err)
		}
		for _, e := range ents {
			child := filepath.Join(dir, e.Name())
			if e.Type()&fs.ModeSymlink != 0 {
				continue // Landlock checks where it leads
			}
			leads, is := false, false
			for _, q := range inner {
				is = is || child == q
				leads = leads || within(q, child)
			}
			switch {
			case is:
			case leads && e.IsDir():
				if err := walk(child); err != nil {
					return err
				}
			case leads:
			default:
				a := r.access
				if !e.IsDir() {
					a &= fileRights
				}
				out = append(out, tr.Rule{Path: child, Access: a, Optional: true})
			}
		}
		return nil
	}
	if err := walk(r.path); err != nil {
		return nil, err
	}
	return out, nil
}
