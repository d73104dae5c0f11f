package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Landlock access rights, grouped the way profiles grant them.
const (
	maxKnownABI = 7

	accRead     = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	accReadExec = accRead | unix.LANDLOCK_ACCESS_FS_EXECUTE
	// accReadWrite never includes EXECUTE, MAKE_CHAR or MAKE_BLOCK. It lets
	// a command use unix sockets it makes in its own directories.
	accReadWrite = accRead | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_RESOLVE_UNIX |
		unix.LANDLOCK_ACCESS_FS_REMOVE_FILE | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_SYM |
		unix.LANDLOCK_ACCESS_FS_REFER | unix.LANDLOCK_ACCESS_FS_TRUNCATE
	// fileRights are the rights a rule on a non-directory may carry.
	fileRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

	netTCP = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
	netUDP = unix.LANDLOCK_ACCESS_NET_BIND_UDP | unix.LANDLOCK_ACCESS_NET_CONNECT_SEND_UDP

	landlockRuleNetPort = 2
)

// fsRights returns every filesystem right Landlock ABI abi can handle:
// handling all of them is what makes the rules deny by default.
func fsRights(abi int) uint64 {
	var r uint64
	if abi >= 1 {
		r = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
			unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
			unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
			unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
			unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	}
	if abi >= 2 {
		r |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		r |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		r |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	return r
}

// spec is the trampoline's complete instructions, passed in argv (never in
// the environment, which belongs to the command).
type spec struct {
	ABI   int      // the Landlock ABI the rules are for; the child needs at least this
	FS    uint64   // handled filesystem rights
	Net   uint64   // handled network rights; 0 leaves the network alone
	Scope uint64   // Landlock scopes
	Rules []rule   // one argv element each
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

type rule struct {
	Path     string
	Access   uint64
	Optional bool // skip when missing instead of failing
}

// specVersion starts the header element, so that a relay binary never
// misreads instructions written by a different version of itself.
const specVersion = "v1"

// encode renders s as argv elements: a header of space-separated key=value
// fields, then one element per rule, "<access hex> <o|r> <path>". The path
// is the rest of the element, so it may hold any byte but NUL, which argv
// cannot carry anyway. Neither kind of element can be "--". A hand-written
// format rather than JSON: decoding JSON cost the trampoline about 0.13 ms
// of reflection on every command.
func (s *spec) encode() []string {
	ports := make([]string, len(s.Ports))
	for i, p := range s.Ports {
		ports[i] = strconv.FormatUint(uint64(p), 10)
	}
	out := []string{fmt.Sprintf("%s abi=%d fs=%x net=%x scope=%x cpu=%d nofile=%d fsize=%d nproc=%d as=%d uid=%d gid=%d ports=%s",
		specVersion, s.ABI, s.FS, s.Net, s.Scope, s.CPU, s.NoFile, s.FSize, s.NProc, s.AS, s.UID, s.GID, strings.Join(ports, ","))}
	for _, r := range s.Rules {
		o := "r"
		if r.Optional {
			o = "o"
		}
		out = append(out, strconv.FormatUint(r.Access, 16)+" "+o+" "+r.Path)
	}
	return out
}

// decodeSpec parses and checks the trampoline's instructions. Anything
// unexpected is an error: the trampoline fails closed.
func decodeSpec(elems []string) (*spec, error) {
	if len(elems) == 0 {
		return nil, errors.New("profile: missing")
	}
	fields := strings.Split(elems[0], " ")
	if fields[0] != specVersion {
		return nil, fmt.Errorf("profile: version %.10q, want %s (is the relay binary being replaced?)", fields[0], specVersion)
	}
	var s spec
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || seen[k] {
			return nil, fmt.Errorf("profile: bad field %.40q", f)
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
			for _, p := range strings.Split(v, ",") {
				if p == "" && v == "" {
					break
				}
				n, perr := strconv.ParseUint(p, 10, 16)
				if perr != nil || n == 0 {
					return nil, fmt.Errorf("profile: bad port %.10q", p)
				}
				s.Ports = append(s.Ports, uint16(n))
			}
		default:
			return nil, fmt.Errorf("profile: unknown field %.20q", k)
		}
		if err != nil {
			return nil, fmt.Errorf("profile: field %s: %w", k, err)
		}
	}
	if len(seen) != 12 {
		return nil, errors.New("profile: missing fields")
	}
	switch {
	case s.ABI < minABI || s.ABI > maxKnownABI:
		return nil, fmt.Errorf("profile: landlock ABI %d out of range", s.ABI)
	case s.FS == 0 || s.FS&^(fsRights(s.ABI)|unix.LANDLOCK_ACCESS_FS_RESOLVE_UNIX) != 0:
		return nil, errors.New("profile: bad handled filesystem rights")
	case s.Net&^(netTCP|netUDP) != 0:
		return nil, errors.New("profile: bad handled network rights")
	case s.Net == 0 && len(s.Ports) > 0:
		return nil, errors.New("profile: ports without network rules")
	case s.Scope&^uint64(unix.LANDLOCK_SCOPE_SIGNAL|unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET) != 0:
		return nil, errors.New("profile: bad scope")
	case s.CPU == 0 || s.NoFile < minNoFile || s.FSize == 0 || s.NProc == 0 || s.AS == 0:
		return nil, errors.New("profile: missing rlimit")
	case (s.UID < 0) != (s.GID < 0) || s.UID < -1 || s.GID < -1:
		return nil, errors.New("profile: bad identity")
	}
	for _, e := range elems[1:] {
		acc, rest, ok1 := strings.Cut(e, " ")
		o, path, ok2 := strings.Cut(rest, " ")
		a, err := strconv.ParseUint(acc, 16, 64)
		if !ok1 || !ok2 || err != nil || (o != "o" && o != "r") {
			return nil, fmt.Errorf("profile: bad rule %.60q", e)
		}
		if !filepath.IsAbs(path) || filepath.Clean(path) != path {
			return nil, fmt.Errorf("profile: rule path %q is not clean and absolute", path)
		}
		if a == 0 || a&^s.FS != 0 {
			return nil, fmt.Errorf("profile: bad access for %q", path)
		}
		s.Rules = append(s.Rules, rule{Path: path, Access: a, Optional: o == "o"})
	}
	return &s, nil
}
