package audit

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// InitOptions adjust Init.
type InitOptions struct {
	// Force allows replacing a key state and a stored key when the
	// directory holds no records. Init never starts over a log that has
	// records, with or without Force: move that directory aside.
	Force bool
	Now   func() time.Time
	Rand  io.Reader // K0's randomness; nil means crypto/rand
	FS    FS
	// Origin names the log in its signed checkpoints; "" means
	// DefaultOrigin.
	Origin string
	// CheckpointRand is the checkpoint key's randomness; nil means
	// crypto/rand.
	CheckpointRand io.Reader
}

// Init starts a new log in dir with a fresh K0, stores K0 in ks (nil: K0 is
// kept off the host only) and returns it so the owner can keep a copy off
// the host. It seals the first record, "init", so K0 itself is never
// written to the key state.
func Init(dir string, ks KeyStore) ([]byte, error) { return InitWith(dir, ks, InitOptions{}) }

// InitWith is Init with options. Init also makes the log's checkpoint key
// pair (AddCheckpointKey); ReadPublicKey returns the public key to show.
func InitWith(dir string, ks KeyStore, o InitOptions) (k0 []byte, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.FS == nil {
		o.FS = osFS{}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	files, err := ListFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 0 {
			return nil, fmt.Errorf("audit init: %s already holds an audit log (move the directory aside, keeping its K0 to verify it, and run init again)", dir)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil && !o.Force {
		return nil, fmt.Errorf("audit init: %s already has a key state (use --force to replace it; the directory holds no records)", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, CheckpointKeyFile)); err == nil && !o.Force {
		return nil, fmt.Errorf("audit init: %s already has a checkpoint key (use --force to replace it; the directory holds no records)", dir)
	}
	if o.Origin != "" && !validOrigin(o.Origin) {
		return nil, fmt.Errorf("audit init: origin %q must be printable, without spaces or \"+\"", o.Origin)
	}
	if ks != nil {
		if old, err := ks.Get(KeyName); err == nil && len(old) > 0 {
			clear(old)
			if !o.Force {
				return nil, errors.New("audit init: the secret store already holds an audit key (keep it to verify the old log; use --force to replace it)")
			}
		}
	}
	k0 = make([]byte, keySize)
	if _, err := io.ReadFull(o.Rand, k0); err != nil {
		return nil, fmt.Errorf("audit init: generate key: %w", err)
	}
	defer func() {
		if err != nil {
			clear(k0)
			k0 = nil
		}
	}()
	if ks != nil {
		if err := ks.Set(KeyName, k0); err != nil {
			return nil, fmt.Errorf("audit init: store the audit key: %w (check the secret store, or use --no-store and keep K0 off the host)", err)
		}
	}
	name := nameFor(1)
	path := filepath.Join(dir, name)
	w, err := o.FS.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit init: %w (run init again with --force)", err)
	}
	defer w.Close()
	s := newSealer(k0)
	defer s.zero()
	body, _ := encodeBody(&Record{Type: KindInit, Outcome: OutcomeOK, Detail: "new audit log"})
	line, _, err := appendLine(nil, s, newLinkHash(), 1, o.Now(), nil, &[sha256.Size]byte{}, body)
	if err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	if _, err := w.Write(line); err != nil {
		return nil, fmt.Errorf("audit init: write %s: %w (run init again with --force)", name, err)
	}
	if err := w.Sync(); err != nil {
		return nil, fmt.Errorf("audit init: sync %s: %w (run init again with --force)", name, err)
	}
	if err := o.FS.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("audit init: %w", err)
	}
	h, _ := parseHeader(line)
	s.next()
	st := &keyState{Seq: 1, Key: append([]byte(nil), s.key[:]...), MAC: string(h.mac), File: name, Size: int64(len(line))}
	data := st.encode()
	err = o.FS.WriteFileAtomic(filepath.Join(dir, StateFile), data, 0o600)
	clear(data)
	st.zero()
	if err != nil {
		return nil, fmt.Errorf("audit init: write key state: %w (run init again with --force)", err)
	}
	if _, err := AddCheckpointKey(dir, o.Origin, o.CheckpointRand, true); err != nil {
		return nil, fmt.Errorf("audit init: %w (run init again with --force)", err)
	}
	return k0, nil
}
