package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

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
	ABI   int      `json:"abi"`   // the Landlock ABI the rules are for; the child needs at least this
	FS    uint64   `json:"fs"`    // handled filesystem rights
	Net   uint64   `json:"net"`   // handled network rights; 0 leaves the network alone
	Scope uint64   `json:"scope"` // Landlock scopes
	Rules []rule   `json:"rules"`
	Ports []uint16 `json:"ports"` // TCP ports connect may reach when Net is set

	CPU    uint64 `json:"cpu"` // seconds
	NoFile uint64 `json:"nofile"`
	FSize  uint64 `json:"fsize"`
	NProc  uint64 `json:"nproc"`
	AS     uint64 `json:"as"`

	// UID and GID, when not -1, are the identity switched to before
	// execve, with no supplementary groups.
	UID int `json:"uid"`
	GID int `json:"gid"`
}

type rule struct {
	Path     string `json:"p"`
	Access   uint64 `json:"a"`
	Optional bool   `json:"o,omitempty"` // skip when missing instead of failing
}

func (s *spec) encode() (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("sandbox: encode profile: %w", err)
	}
	return string(b), nil
}

// decodeSpec parses and checks the trampoline's instructions. Anything
// unexpected is an error: the trampoline fails closed.
func decodeSpec(text string) (*spec, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(text)))
	d.DisallowUnknownFields()
	var s spec
	if err := d.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	if d.More() {
		return nil, errors.New("decode profile: trailing data")
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
	for _, r := range s.Rules {
		if !filepath.IsAbs(r.Path) || filepath.Clean(r.Path) != r.Path {
			return nil, fmt.Errorf("profile: rule path %q is not clean and absolute", r.Path)
		}
		if r.Access == 0 || r.Access&^s.FS != 0 {
			return nil, fmt.Errorf("profile: bad access for %q", r.Path)
		}
	}
	return &s, nil
}
