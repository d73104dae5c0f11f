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

	// UID and GID, when not -1, are the identity switched to before
	// execve, with no supplementary groups.
	UID int
	GID int
}

// Rule grants Access beneath Path.
type Rule struct {
	Path     string
	Access   uint64
	Optional bool // skip when missing instead of failing
}

// version starts the header element, so that a relay binary never
// misreads instructions written by a different version of itself.
const version = "v1"

// Encode renders s as argv elements: a header of space-separated key=value
// fields, then one element per rule, "<access hex> <o|r> <path>". The path
// is the rest of the element, so it may hold any byte but NUL, which argv
// cannot carry anyway. No element can be "--". A hand-written format rather
// than JSON: decoding JSON cost the trampoline about 0.13 ms of reflection.
func (s *Spec) Encode() []string {
	ports := make([]string, len(s.Ports))
	for i, p := range s.Ports {
		ports[i] = strconv.FormatUint(uint64(p), 10)
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	x := func(v uint64) string { return strconv.FormatUint(v, 16) }
	out := []string{strings.Join([]string{version,
		"abi=" + strconv.Itoa(s.ABI), "fs=" + x(s.FS), "net=" + x(s.Net), "scope=" + x(s.Scope),
		"cpu=" + u(s.CPU), "nofile=" + u(s.NoFile), "fsize=" + u(s.FSize), "nproc=" + u(s.NProc), "as=" + u(s.AS),
		"uid=" + strconv.Itoa(s.UID), "gid=" + strconv.Itoa(s.GID), "ports=" + strings.Join(ports, ","),
	}, " ")}
	for _, r := range s.Rules {
		o := "r"
		if r.Optional {
			o = "o"
		}
		out = append(out, x(r.Access)+" "+o+" "+r.Path)
	}
	return out
}

func bad(what string, v string) error {
	if len(v) > 60 {
		v = v[:60]
	}
	return errors.New("profile: bad " + what + " " + strconv.Quote(v))
}

// Decode parses and checks the trampoline's instructions. Anything
// unexpected is an error: the trampoline fails closed.
func Decode(elems []string) (*Spec, error) {
	if len(elems) == 0 {
		return nil, errors.New("profile: missing")
	}
	fields := strings.Split(elems[0], " ")
	if fields[0] != version {
		return nil, errors.New("profile: not version " + version + " (is the relay binary being replaced?)")
	}
	var s Spec
	seen := map[string]bool{}
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
		default:
			return nil, bad("field", k)
		}
		if err != nil {
			return nil, bad("field", f)
		}
	}
	switch {
	case len(seen) != 12:
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
	case (s.UID < 0) != (s.GID < 0) || s.UID < -1 || s.GID < -1 || int64(s.UID) > 1<<32-2 || int64(s.GID) > 1<<32-2:
		return nil, errors.New("profile: bad identity")
	}
	for _, e := range elems[1:] {
		acc, rest, ok1 := strings.Cut(e, " ")
		o, p, ok2 := strings.Cut(rest, " ")
		a, err := strconv.ParseUint(acc, 16, 64)
		if !ok1 || !ok2 || err != nil || (o != "o" && o != "r") {
			return nil, bad("rule", e)
		}
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
			return nil, bad("rule path (not clean and absolute)", p)
		}
		if a == 0 || a&^s.FS != 0 {
			return nil, bad("rule access for", p)
		}
		s.Rules = append(s.Rules, Rule{Path: p, Access: a, Optional: o == "o"})
	}
	return &s, nil
}
