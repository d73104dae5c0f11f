package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/relaychat/relay/internal/atomicfile"
)

const (
	stateVersion = 1
	maxStateSize = 1 << 20
	// StateFile is the auth state file's name inside the state directory.
	StateFile = "auth.json"
)

// state is everything auth keeps across restarts. Sessions and pending
// confirmations are deliberately absent: a restart ends them.
type state struct {
	// LastStep is the newest TOTP step ever accepted (login, step-up,
	// enrolment) or, after /lock, the step current at the lock. Only a
	// code from a strictly later step is accepted. 0 = none yet.
	LastStep int64
	// Locked is the /lock flag: nothing but a TOTP login clears it.
	Locked bool
	limit  limitState
	// Salt keys the recovery-code hashes; fresh at every enrolment.
	Salt     []byte
	Recovery []recoveryEntry
}

type recoveryEntry struct {
	Hash []byte // hashRecovery(Salt, code), 32 bytes
	Used bool
}

// stateJSON is the file format. Kept apart from state so that the
// in-memory types can change without breaking old files silently: the
// version field and strict decoding catch that.
type stateJSON struct {
	Version        int            `json:"version"`
	LastStep       int64          `json:"last_step"`
	Locked         bool           `json:"locked"`
	Failures       int            `json:"failures"`
	RecentAttempts []time.Time    `json:"recent_attempts"`
	LockedUntil    time.Time      `json:"locked_until,omitzero"`
	RecoverySalt   string         `json:"recovery_salt,omitempty"`
	Recovery       []recoveryJSON `json:"recovery"`
}

type recoveryJSON struct {
	SHA256 string `json:"hmac_sha256"`
	Used   bool   `json:"used"`
}

func (s *state) marshal() ([]byte, error) {
	j := stateJSON{
		Version:        stateVersion,
		LastStep:       s.LastStep,
		Locked:         s.Locked,
		Failures:       s.limit.Failures,
		RecentAttempts: s.limit.Recent,
		LockedUntil:    s.limit.LockedUntil,
		Recovery:       []recoveryJSON{},
	}
	if j.RecentAttempts == nil {
		j.RecentAttempts = []time.Time{}
	}
	if len(s.Salt) > 0 {
		j.RecoverySalt = base64.StdEncoding.EncodeToString(s.Salt)
	}
	for _, r := range s.Recovery {
		j.Recovery = append(j.Recovery, recoveryJSON{SHA256: hex.EncodeToString(r.Hash), Used: r.Used})
	}
	b, err := json.MarshalIndent(j, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func unmarshalState(b []byte, maxAttempts int) (*state, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j stateJSON
	if err := dec.Decode(&j); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	if j.Version != stateVersion {
		return nil, fmt.Errorf("unsupported version %d, want %d", j.Version, stateVersion)
	}
	if j.LastStep < 0 || j.Failures < 0 {
		return nil, errors.New("negative last_step or failures")
	}
	if len(j.RecentAttempts) > max(maxAttempts, 100) {
		return nil, fmt.Errorf("%d recent attempts recorded, more than the limiter allows", len(j.RecentAttempts))
	}
	s := &state{
		LastStep: j.LastStep,
		Locked:   j.Locked,
		limit: limitState{
			Recent:      j.RecentAttempts,
			Failures:    j.Failures,
			LockedUntil: j.LockedUntil,
		},
	}
	if j.RecoverySalt != "" {
		salt, err := base64.StdEncoding.DecodeString(j.RecoverySalt)
		if err != nil || len(salt) != saltSize {
			return nil, errors.New("recovery_salt is not 32 bytes of base64")
		}
		s.Salt = salt
	}
	if len(j.Recovery) > maxRecovery {
		return nil, fmt.Errorf("%d recovery codes, at most %d", len(j.Recovery), maxRecovery)
	}
	if len(j.Recovery) > 0 && s.Salt == nil {
		return nil, errors.New("recovery hashes without a recovery_salt")
	}
	seen := map[string]bool{}
	for i, r := range j.Recovery {
		h, err := hex.DecodeString(r.SHA256)
		if err != nil || len(h) != 32 {
			return nil, fmt.Errorf("recovery[%d]: not a 32-byte hex hash", i)
		}
		if seen[r.SHA256] {
			return nil, fmt.Errorf("recovery[%d]: duplicate hash", i)
		}
		seen[r.SHA256] = true
		s.Recovery = append(s.Recovery, recoveryEntry{Hash: h, Used: r.Used})
	}
	return s, nil
}

// loadState reads the state file at path. A missing file is a fresh state
// (first start after a secret was installed without 'relay totp enroll');
// anything unreadable, too open or malformed is an error, never a reset.
func loadState(path string, maxAttempts int) (*state, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &state{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read auth state %q: %w (hint: check the state directory's owner and permissions)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read auth state %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("auth state %q is not a regular file (hint: remove it)", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		// Anyone who can write it can reset the lockout and reopen replay.
		return nil, fmt.Errorf("auth state %q has mode %04o, want 0600 (hint: chmod 600 %s and check who else could have changed it)", path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("read auth state %q: %w", path, err)
	}
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("%w: %q is larger than %d bytes", ErrStateCorrupt, path, maxStateSize)
	}
	s, err := unmarshalState(b, maxAttempts)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrStateCorrupt, path, err)
	}
	return s, nil
}

// saveState writes s to path atomically, 0600, creating the directory 0700
// if needed (enrolment may run before the daemon ever created it).
func saveState(path string, s *state) error {
	b, err := s.marshal()
	if err != nil {
		return fmt.Errorf("encode auth state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write auth state: %w (hint: check state_dir and its permissions)", err)
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write auth state: %w (hint: check free space and the permissions of %s)", err, filepath.Dir(path))
	}
	return nil
}

func (s *state) recoveryLeft() int {
	n := 0
	for _, r := range s.Recovery {
		if !r.Used {
			n++
		}
	}
	return n
}
