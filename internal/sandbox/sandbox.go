package sandbox

import (
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

	"github.com/relaychat/relay/internal/exec"
	tr "github.com/relaychat/relay/internal/sandbox/trampoline"
	"github.com/relaychat/relay/policy"
)

// ErrUnenforceable is wrapped by every error New returns because this
// kernel cannot enforce what a profile asks for. The command must be refused
// and the refusal audited.
var ErrUnenforceable = errors.New("sandbox cannot be enforced on this kernel")

// Defaults for a zero field of policy.Sandbox.
const (
	DefaultNoFile       = 256
	DefaultFileSize     = 64 << 20
	DefaultAddressSpace = 4 << 30
	DefaultProcs        = 256
	minNoFile           = tr.MinNoFile
)

const (
	minABI = tr.MinABI
	// nobodyID is the uid and gid a command runs as when the relay is root.
	nobodyID = 65534
	// nsFlags are the namespaces of namespaces: true, net excepted.
	nsFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP
)

// Options is what the host contributes to every profile.
type Options struct {
	// Protected are paths that must never be readable or writable: the
	// relay's state dir, audit dir, secret files, config and credentials.
	Protected []string
	// TempDir is the parent under which Wrap makes a private temp dir per
	// command, writable by the command; "" means os.TempDir(). The
	// environment is not changed: the policy decides whether TMPDIR points
	// there. Profile.TempDir tells its path.
	TempDir string
	// Timeout is the command's timeout, the default CPU limit.
	Timeout time.Duration
	// SelfExe is the binary that runs the trampoline; "" means this very
	// executable, started as /proc/self/exe so that the trampoline is the
	// running version even after an upgrade replaced the file.
	SelfExe string
	// Probe replaces the kernel probe; nil means Probe. Tests use it to
	// simulate a kernel without Landlock.
	Probe func() Capabilities
}

// Profile is a validated sandbox profile that this kernel can enforce. It
// implements exec.Wrapper.
type Profile struct {
	caps      Capabilities
	exe       string // what Wrap starts
	exeName   string // its argv[0], for ps
	tmpParent string
	protected []string // absolute, symlinks resolved where they exist
	roots     []root   // directories and files to grant, before expansion
	argvRoots []string // where argv[0] may live (granted executable)
	cloneNet  bool     // a fresh network namespace
	ns        bool     // namespaces: true
	spec      tr.Spec  // everything but Rules

	mu  sync.Mutex
	tmp string // the private temp dir once made; removed by Close
}

type root struct {
	path     string
	access   uint64
	optional bool // a default that may be missing on this system
	declared bool // named by the policy: must not touch a protected path
}

var defaultRead = []string{"/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc"}

// New validates p against o and this kernel. It fails, wrapping
// ErrUnenforceable, when the kernel cannot enforce p, and fails when p names
// a path inside a protected one.
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

	tmp := o.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	if pr.tmpParent, err = pr.declared("temp dir", tmp); err != nil {
		return nil, err
	}

	for _, d := range defaultRead {
		r, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue // /lib32 and friends are optional
		}
		pr.roots = append(pr.roots, root{path: r, access: accReadExec, optional: true})
		pr.argvRoots = append(pr.argvRoots, r)
	}
	for _, d := range p.Read {
		r, err := pr.declared("sandbox.read", d)
		if err != nil {
			return nil, err
		}
		pr.roots = append(pr.roots, root{path: r, access: accReadExec, declared: true})
		pr.argvRoots = append(pr.argvRoots, r)
	}
	for _, d := range p.Write {
		r, err := pr.declared("sandbox.write", d)
		if err != nil {
			return nil, err
		}
		pr.roots = append(pr.roots, root{path: r, access: accReadWrite, declared: true})
	}
	pr.roots = append(pr.roots,
		root{path: "/proc", access: accRead, optional: true},
		root{path: "/dev/null", access: accReadWrite & fileRights, optional: true},
		root{path: "/dev/zero", access: accRead & fileRights, optional: true},
		root{path: "/dev/random", access: accRead & fileRights, optional: true},
		root{path: "/dev/urandom", access: accRead & fileRights, optional: true},
	)
	if p.Network || len(p.ConnectPorts) > 0 {
		// /etc/resolv.conf is often a symlink into /run; name resolution
		// is part of having a network.
		if r, err := filepath.EvalSymlinks("/etc/resolv.conf"); err == nil {
			pr.roots = append(pr.roots, root{path: r, access: accRead & fileRights, optional: true})
		}
	}

	s := &pr.spec
	s.ABI = min(pr.caps.LandlockABI, tr.MaxKnownABI)
	s.FS = tr.FSRights(s.ABI)
	if pr.caps.LandlockUnix {
		s.FS |= tr.AccessFSResolveUnix // handled; granted only in write dirs
	}
	s.UID, s.GID = -1, -1
	if pr.caps.Root {
		s.UID, s.GID = nobodyID, nobodyID
	}
	pr.ns = p.Namespaces
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
	if p.FileSize < 0 || p.AddressSpace < 0 {
		return nil, errors.New("sandbox.fsize and sandbox.address_space must not be negative")
	}
	s.FSize = orDefault(uint64(p.FileSize), DefaultFileSize)
	s.AS = orDefault(uint64(p.AddressSpace), DefaultAddressSpace)
	s.NProc = orDefault(p.Procs, DefaultProcs)
	return pr, nil
}

func orDefault(v, d uint64) uint64 {
	if v == 0 {
		return d
	}
	return v
}

// enforceable refuses p when the probed kernel cannot enforce it.
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
	if p.Namespaces && !c.UserNS {
		return fmt.Errorf("%w: namespaces: true needs user namespaces: %s", ErrUnenforceable, c.UserNSErr)
	}
	if !p.Network && len(p.ConnectPorts) == 0 && !c.NetNS {
		return fmt.Errorf("%w: denying the network needs a network namespace (as root, or through a user namespace): %s", ErrUnenforceable, c.NetNSErr)
	}
	// Without a pid namespace only Landlock's signal scope keeps the
	// command from signalling the relay; without a network namespace only
	// its abstract-socket scope keeps it off the host's abstract sockets.
	hostNet := p.Network || len(p.ConnectPorts) > 0
	if (!p.Namespaces || hostNet) && c.LandlockABI < 6 {
		return fmt.Errorf("%w: landlock ABI %d cannot scope signals and abstract unix sockets (needs ABI 6, Linux >= 6.12): set namespaces: true without network, or upgrade the kernel", ErrUnenforceable, c.LandlockABI)
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
	for _, q := range pr.protected {
		if within(r, q) {
			return "", fmt.Errorf("%s path %q is inside the protected path %q: commands may never touch the relay's state, audit, secrets or config", what, p, q)
		}
	}
	return r, nil
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

// TempDir returns the command's private temp dir, making it on first use,
// so a caller can name it in the environment before Wrap. One Profile
// serves one invocation: every Wrap of it shares this directory.
func (pr *Profile) TempDir() (string, error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.tempDirLocked()
}

func (pr *Profile) tempDirLocked() (string, error) {
	if pr.tmp != "" {
		return pr.tmp, nil
	}
	tmp, err := os.MkdirTemp(pr.tmpParent, "relay-sandbox-")
	if err != nil {
		return "", fmt.Errorf("sandbox: make private temp dir: %w", err)
	}
	if pr.spec.UID >= 0 {
		if err := os.Chown(tmp, pr.spec.UID, pr.spec.GID); err != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("sandbox: hand the private temp dir to uid %d: %w", pr.spec.UID, err)
		}
	}
	pr.tmp = tmp
	return tmp, nil
}

// Close removes the private temp dir. Call it after the command
// and everything it started are dead.
func (pr *Profile) Close() error {
	pr.mu.Lock()
	tmp := pr.tmp
	pr.tmp = ""
	pr.mu.Unlock()
	if tmp == "" {
		return nil
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove sandbox temp dir: %w", err)
	}
	return nil
}

// ChildIdentity returns the uid and gid a sandboxed command runs as, so a
// caller can prepare directories it must write.
func (pr *Profile) ChildIdentity() (uid, gid int) {
	if pr.spec.UID >= 0 {
		return pr.spec.UID, pr.spec.GID
	}
	return os.Getuid(), os.Getgid()
}

// Wrap returns the trampoline invocation that runs argv with exactly env
// inside the sandbox. It makes the private temp dir if TempDir has not, and
// snapshots the directory listings it needs to keep protected paths out of
// reach.
func (pr *Profile) Wrap(argv, env []string) (*exec.Wrapped, error) {
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

	tmp, err := pr.TempDir()
	if err != nil {
		return nil, err
	}

	s := pr.spec
	s.Rules = nil
	roots := append(slices.Clone(pr.roots), root{path: tmp, access: accReadWrite})
	for _, r := range roots {
		rs, err := pr.grant(r)
		if err != nil {
			return nil, err
		}
		s.Rules = append(s.Rules, rs...)
	}
	for i := range s.Rules {
		s.Rules[i].Access &= s.FS
	}

	sys := &syscall.SysProcAttr{}
	if pr.ns {
		sys.Cloneflags |= nsFlags
	}
	if pr.cloneNet {
		sys.Cloneflags |= unix.CLONE_NEWNET
		if !pr.caps.Root {
			sys.Cloneflags |= unix.CLONE_NEWUSER
		}
	}
	if sys.Cloneflags&unix.CLONE_NEWUSER != 0 {
		setMappings(sys, pr.caps.Root)
	}
	args := append([]string{pr.exeName, tr.Arg}, s.Encode()...)
	args = append(append(args, "--"), argv...)
	return &exec.Wrapped{
		Path:        pr.exe,
		Args:        args,
		Env:         append([]string{}, env...), // never nil: nil would mean "inherit"
		SysProcAttr: sys,
	}, nil
}

// setMappings maps the ids a user namespace needs. As root, uid 0 stays
// root so the trampoline can exec itself from a root-only directory, and
// nobody is mapped for the switch before execve; otherwise the relay's own
// ids map to themselves, so the trampoline holds no capabilities after exec.
func setMappings(sys *syscall.SysProcAttr, isRoot bool) {
	if isRoot {
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: nobodyID, HostID: nobodyID, Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: nobodyID, HostID: nobodyID, Size: 1}}
		sys.GidMappingsEnableSetgroups = true
		return
	}
	uid, gid := os.Getuid(), os.Getgid()
	sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
	sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
}

func (pr *Profile) executable(bin string) bool {
	for _, q := range pr.protected {
		if within(bin, q) {
			return false
		}
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
