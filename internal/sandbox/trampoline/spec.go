package trampoline

import (
	"errors"
	"path"
	"strconv"
	"strings"
)

// Landlock constants from <linux/landlock.h>, defined here so that this
// package needs no golang.org/x/sys (see the package doc).
const (
	AccessFSExecute     = 1 << 0
	AccessFSWriteFile   = 1 << 1
	AccessFSReadFile    = 1 << 2
	AccessFSReadDir     = 1 << 3
	AccessFSRemoveDir   = 1 << 4
	AccessFSRemoveFile  = 1 << 5
	AccessFSMakeChar    = 1 << 6
	AccessFSMakeDir     = 1 << 7
	AccessFSMakeReg     = 1 << 8
	AccessFSMakeSock    = 1 << 9
	AccessFSMakeFifo    = 1 << 10
	AccessFSMakeBlock   = 1 << 11
	AccessFSMakeSym     = 1 << 12
	AccessFSRefer       = 1 << 13 // ABI 2
	AccessFSTruncate    = 1 << 14 // ABI 3
	AccessFSIoctlDev    = 1 << 15 // ABI 5
	AccessFSResolveUnix = 1 << 16 // newer; probed, never assumed

	AccessNetBindTCP    = 1 << 0 // ABI 4
	AccessNetConnectTCP = 1 << 1 // ABI 4
	AccessNetBindUDP    = 1 << 2 // newer; probed
	AccessNetSendUDP    = 1 << 3 // newer; probed

	ScopeAbstractUnixSocket = 1 << 0 // ABI 6
	ScopeSignal             = 1 << 1 // ABI 6

	// FileRights are the rights a rule on a non-directory may carry.
	FileRights = AccessFSExecute | AccessFSWriteFile | AccessFSReadFile | AccessFSTruncate | AccessFSIoctlDev
	NetTCP     = AccessNetBindTCP | AccessNetConnectTCP
	NetUDP     = AccessNetBindUDP | AccessNetSendUDP

	// MinABI is the oldest Landlock ABI the sandbox accepts: ABI 3 adds
	// truncate rules, without which truncate(2) of a read-only file is
	// allowed, a write outside the read-write set.
	MinABI = 3
	// MaxKnownABI is the newest ABI whose rights this package knows.
	MaxKnownABI = 7
	// MinNoFile leaves the trampoline room for its ruleset and path fds.
	MinNoFile = 16
	// MaxElems bounds the profile's argv elements, so a profile can
	// never be an unbounded amount of work for the trampoline.
	MaxElems = 4096
)

// FSRights returns every filesystem right Landlock ABI abi can handle:
// handling all of them is what makes the rules deny by default.
func FSRights(abi int) uint64 {
	var r uint64
	if abi >= 1 {
		r = 1<<13 - 1 // EXECUTE through MAKE_SYM
	}
	if abi >= 2 {
		r |= AccessFSRefer
	}
	if abi >= 3 {
		r |= AccessFSTruncate
	}
	if abi >= 5 {
		r |= AccessFSIoctlDev
	}
	return r
}

// Spec is the trampoline's complete instructions, passed in argv.
type Spec struct {
	ABI   int      // the Landlock ABI the rules are for; the child needs at least this
	FS    uint64   // handled filesystem rights
	Net   uint64   // handled network rights; 0 leaves the network alone
	Scope uint64   // Landlock scopes
	Rules []Rule   // one argv element each
	Ports []uint16 // TCP ports connect may reach when Net is set

	CPU    uint64 // seconds
	NoFile uint64
	FSize  uint64
	NProc  uint64
	AS     uint64

	// UID and GID are the identity the command must have inside its user
	// namespace. The runner sets it up; the trampoline refuses to run the
	// command under any other, or with supplementary groups when Groups is
	// false.
	UID, GID int
	// Groups allows supplementary groups: an unprivileged relay cannot
	// drop its own inside a user namespace.
	Groups bool

	// The filesystem view. Mounts are made in order, so a parent comes
	// before what is mounted inside it.
	Mounts  []Mount
	Workdir string // the command's working directory inside the view
	TmpSize uint64 // bytes of each private tmpfs (/tmp, /run, /dev/shm)
	Pty     bool   // a private devpts at /dev/pts, with /dev/ptmx

	// Argv is the command, Argv[0] an absolute path, and Env its whole
	// environment: in the profile, not in the trampoline's own argv and
	// environment, so that a trampoline can start before its job is known.
	Argv, Env []string

	// Allow names system calls the seccomp filter lets through.
	Allow []string
	// StatusFD, when not -1, is the descriptor on which the trampoline's
	// init writes the command's raw wait status before it exits: pid 1 of
	// a namespace cannot die of most signals, so its own status cannot
	// carry the command's.
	StatusFD int
}

// Rule grants Access beneath Path.
type Rule struct {
	Path     string
	Access   uint64
	Optional bool // skip when missing instead of failing
}

// MountKind says what a Mount puts at its path.
type MountKind byte

const (
	// BindRO binds the host path at the same path, read-only, nosuid,
	// nodev, recursively.
	BindRO MountKind = 'r'
	// BindRW binds it read-write, nosuid, nodev.
	BindRW MountKind = 'w'
	// BindDev binds one device node read-write (no nodev).
	BindDev MountKind = 'd'
	// BindSocket binds one pathname unix socket; the host path must be a
	// socket.
	BindSocket MountKind = 'k'
	// Mask hides the path: an empty read-only tmpfs over a directory, an
	// empty read-only file over anything else.
	Mask MountKind = 'm'
	// Symlink makes a symbolic link at the path pointing to Target.
	Symlink MountKind = 's'
)

// Mount is one element of the filesystem view.
type Mount struct {
	Kind     MountKind
	Path     string
	Target   string // Symlink only
	Optional bool   // skip a bind whose host path is missing
}

// version starts the header element, so that a relay binary never
// misreads instructions written by a different version of itself.
const version = "v2"

// Encode renders s as argv elements: a header of space-separated key=value
// fields, then one element per rule ("l <access hex> <o|r> <path>"), per
// mount ("b <kind> <o|r> <path>", "s <quoted target> <path>") and the
// workdir ("w <path>"). The path is the rest of its element, so it may hold
// any byte but NUL, which argv cannot carry anyway. No element can be "--".
// A hand-written format rather than JSON: decoding JSON cost the
// trampoline about 0.13 ms of reflection.
func (s *Spec) Encode() []string {
	ports := make([]string, len(s.Ports))
	for i, p := range s.Ports {
		ports[i] = strconv.FormatUint(uint64(p), 10)
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	x := func(v uint64) string { return strconv.FormatUint(v, 16) }
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	out := []string{strings.Join([]string{version,
		"abi=" + strconv.Itoa(s.ABI), "fs=" + x(s.FS), "net=" + x(s.Net), "scope=" + x(s.Scope),
		"cpu=" + u(s.CPU), "nofile=" + u(s.NoFile), "fsize=" + u(s.FSize), "nproc=" + u(s.NProc), "as=" + u(s.AS),
		"uid=" + strconv.Itoa(s.UID), "gid=" + strconv.Itoa(s.GID), "groups=" + b(s.Groups),
		"ports=" + strings.Join(ports, ","), "tmp=" + u(s.TmpSize), "pty=" + b(s.Pty),
		"allow=" + strings.Join(s.Allow, ","), "status=" + strconv.Itoa(s.StatusFD),
	}, " ")}
	opt := func(o bool) string {
		if o {
			return "o"
		}
		return "r"
	}
	for _, m := range s.Mounts {
		if m.Kind == Symlink {
			out = append(out, "s "+strconv.Quote(m.Target)+" "+m.Path)
			continue
		}
		out = append(out, "b "+string(m.Kind)+" "+opt(m.Optional)+" "+m.Path)
	}
	for _, r := range s.Rules {
		out = append(out, "l "+x(r.Access)+" "+opt(r.Optional)+" "+r.Path)
	}
	out = append(out, "w "+s.Workdir)
	for _, a := range s.Argv {
		out = append(out, "a "+a)
	}
	for _, e := range s.Env {
		out = append(out, "e "+e)
	}
	return out
}

// Marshal encodes s for the profile descriptor: Encode's elements joined
// by NUL, which no element can hold.
func (s *Spec) Marshal() ([]byte, error) {
	elems := s.Encode()
	for _, e := range elems {
		if strings.IndexByte(e, 0) >= 0 {
			return nil, errors.New("profile: a path holds a NUL byte")
		}
	}
	return []byte(strings.Join(elems, "\x00")), nil
}

// Unmarshal decodes what Marshal wrote.
func Unmarshal(b []byte) (*Spec, error) {
	return Decode(strings.Split(string(b), "\x00"))
}

func bad(what string, v string) error {
	if len(v) > 60 {
		v = v[:60]
	}
	return errors.New("profile: bad " + what + " " + strconv.Quote(v))
}

// headerFields are the header's keys; every one must be present once.
var headerFields = []string{"abi", "fs", "net", "scope", "cpu", "nofile", "fsize", "nproc", "as",
	"uid", "gid", "groups", "ports", "tmp", "pty", "allow", "status"}

// Decode parses and checks the trampoline's instructions. Anything
// unexpected is an error: the trampoline fails closed.
func Decode(elems []string) (*Spec, error) {
	if len(elems) == 0 {
		return nil, errors.New("profile: missing")
	}
	if len(elems) > MaxElems {
		return nil, errors.New("profile: too many elements")
	}
	fields := strings.Split(elems[0], " ")
	if fields[0] != version {
		return nil, errors.New("profile: not version " + version + " (is the relay binary being replaced?)")
	}
	s := Spec{}
	seen := map[string]bool{}
	flag := func(v string, dst *bool) error {
		switch v {
		case "0":
			*dst = false
		case "1":
			*dst = true
		default:
			return errors.New("not 0 or 1")
		}
		return nil
	}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || seen[k] {
			return nil, bad("field", f)
		}
		seen[k] = true
		var err error
		switch k {
		case "abi":
			s.ABI, err = strconv.Atoi(v)
		case "fs":
			s.FS, err = strconv.ParseUint(v, 16, 64)
		case "net":
			s.Net, err = strconv.ParseUint(v, 16, 64)
		case "scope":
			s.Scope, err = strconv.ParseUint(v, 16, 64)
		case "cpu":
			s.CPU, err = strconv.ParseUint(v, 10, 64)
		case "nofile":
			s.NoFile, err = strconv.ParseUint(v, 10, 64)
		case "fsize":
			s.FSize, err = strconv.ParseUint(v, 10, 64)
		case "nproc":
			s.NProc, err = strconv.ParseUint(v, 10, 64)
		case "as":
			s.AS, err = strconv.ParseUint(v, 10, 64)
		case "uid":
			s.UID, err = strconv.Atoi(v)
		case "gid":
			s.GID, err = strconv.Atoi(v)
		case "groups":
			err = flag(v, &s.Groups)
		case "tmp":
			s.TmpSize, err = strconv.ParseUint(v, 10, 64)
		case "pty":
			err = flag(v, &s.Pty)
		case "status":
			s.StatusFD, err = strconv.Atoi(v)
		case "ports":
			if v == "" {
				break
			}
			for _, p := range strings.Split(v, ",") {
				n, perr := strconv.ParseUint(p, 10, 16)
				if perr != nil || n == 0 {
					return nil, bad("port", p)
				}
				s.Ports = append(s.Ports, uint16(n))
			}
		case "allow":
			if v == "" {
				break
			}
			for _, n := range strings.Split(v, ",") {
				if !syscallName(n) {
					return nil, bad("system call name", n)
				}
				s.Allow = append(s.Allow, n)
			}
		default:
			return nil, bad("field", k)
		}
		if err != nil {
			return nil, bad("field", f)
		}
	}
	switch {
	case len(seen) != len(headerFields):
		return nil, errors.New("profile: missing fields")
	case s.ABI < MinABI || s.ABI > MaxKnownABI:
		return nil, errors.New("profile: landlock ABI out of range")
	case s.FS == 0 || s.FS&^(FSRights(s.ABI)|AccessFSResolveUnix) != 0:
		return nil, errors.New("profile: bad handled filesystem rights")
	case s.Net&^(NetTCP|NetUDP) != 0:
		return nil, errors.New("profile: bad handled network rights")
	case s.Net == 0 && len(s.Ports) > 0:
		return nil, errors.New("profile: ports without network rules")
	case s.Scope&^(ScopeSignal|ScopeAbstractUnixSocket) != 0:
		return nil, errors.New("profile: bad scope")
	case s.CPU == 0 || s.NoFile < MinNoFile || s.FSize == 0 || s.NProc == 0 || s.AS == 0:
		return nil, errors.New("profile: missing rlimit")
	case s.UID < 0 || s.GID < 0 || int64(s.UID) > 1<<32-2 || int64(s.GID) > 1<<32-2:
		return nil, errors.New("profile: bad identity")
	case s.TmpSize == 0:
		return nil, errors.New("profile: missing tmpfs size")
	case s.StatusFD < -1 || s.StatusFD > 1<<20:
		return nil, errors.New("profile: bad status descriptor")
	case s.StatusFD >= 0 && s.StatusFD <= 2:
		return nil, errors.New("profile: status descriptor is a standard stream")
	}
	cleanAbs := func(p string) bool { return strings.HasPrefix(p, "/") && path.Clean(p) == p }
	for _, e := range elems[1:] {
		kind, rest, ok := strings.Cut(e, " ")
		if !ok {
			return nil, bad("element", e)
		}
		switch kind {
		case "w":
			if s.Workdir != "" || !cleanAbs(rest) {
				return nil, bad("workdir", rest)
			}
			s.Workdir = rest
		case "a":
			if len(s.Argv) == 0 && !strings.HasPrefix(rest, "/") {
				return nil, bad("command (not an absolute path)", rest)
			}
			s.Argv = append(s.Argv, rest)
		case "e":
			if !strings.Contains(rest, "=") {
				return nil, bad("environment variable", rest)
			}
			s.Env = append(s.Env, rest)
		case "l":
			acc, rest, ok1 := strings.Cut(rest, " ")
			o, p, ok2 := strings.Cut(rest, " ")
			a, err := strconv.ParseUint(acc, 16, 64)
			if !ok1 || !ok2 || err != nil || (o != "o" && o != "r") {
				return nil, bad("rule", e)
			}
			if !cleanAbs(p) {
				return nil, bad("rule path (not clean and absolute)", p)
			}
			if a == 0 || a&^s.FS != 0 {
				return nil, bad("rule access for", p)
			}
			s.Rules = append(s.Rules, Rule{Path: p, Access: a, Optional: o == "o"})
		case "b":
			k, rest, ok1 := strings.Cut(rest, " ")
			o, p, ok2 := strings.Cut(rest, " ")
			if !ok1 || !ok2 || len(k) != 1 || (o != "o" && o != "r") {
				return nil, bad("mount", e)
			}
			mk := MountKind(k[0])
			switch mk {
			case BindRO, BindRW, BindDev, BindSocket, Mask:
			default:
				return nil, bad("mount kind", k)
			}
			if !cleanAbs(p) || p == "/" {
				return nil, bad("mount path", p)
			}
			s.Mounts = append(s.Mounts, Mount{Kind: mk, Path: p, Optional: o == "o"})
		case "s":
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, bad("symlink", e)
			}
			target, _ := strconv.Unquote(q)
			p, ok := strings.CutPrefix(rest[len(q):], " ")
			if !ok || !cleanAbs(p) || p == "/" || target == "" || strings.IndexByte(target, 0) >= 0 {
				return nil, bad("symlink", e)
			}
			s.Mounts = append(s.Mounts, Mount{Kind: Symlink, Path: p, Target: target})
		default:
			return nil, bad("element", e)
		}
	}
	if s.Workdir == "" {
		return nil, errors.New("profile: missing workdir")
	}
	if len(s.Argv) == 0 {
		return nil, errors.New("profile: missing command")
	}
	return &s, nil
}

// syscallName reports whether n looks like a system call name: what the
// seccomp filter then checks against its own table.
func syscallName(n string) bool {
	if n == "" || len(n) > 32 {
		return false
	}
	for _, c := range []byte(n) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
