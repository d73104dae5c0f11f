package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/relaychat/relay/internal/atomicfile"
)

// readCredential reads a systemd credential. systemd creates these on a
// private, read-only mount as the unit's user (or root) with mode 0400 or
// 0440; there is nothing for relay to check beyond that it is a regular
// file of sane size, and requiring more would reject what systemd produces.
func readCredential(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read systemd credential: %w (check LoadCredential= in the unit)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read systemd credential: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read systemd credential %q: not a regular file (check LoadCredential= in the unit)", path)
	}
	return readValue(f, "systemd credential", path)
}

// readPrivateFile reads a secret file the way ssh reads a private key: it
// must be a regular file (not a symlink) owned by this user or root, with
// no permission bits for group or others, in a directory that group and
// others cannot write. The checks run on the open descriptor, so the file
// cannot be swapped between check and read.
func readPrivateFile(path string) ([]byte, error) {
	if err := checkDir(filepath.Dir(path)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("secret file %q refused: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("secret file %q refused: it is a symbolic link (point the config at the file itself)", path)
		}
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %q refused: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret file %q refused: mode %04o lets group or others access it (run: chmod 600 %s)", path, perm, path)
	}
	if uid, ok := owner(fi); ok && uid != os.Geteuid() && uid != 0 {
		return nil, fmt.Errorf("secret file %q refused: owned by uid %d, not by this user (uid %d) or root (run: chown %d %s)", path, uid, os.Geteuid(), os.Geteuid(), path)
	}
	return readValue(f, "secret file", path)
}

// checkDir refuses a directory that another user could write into, and so
// replace a secret file in; the sticky bit does not help, since the file
// may not exist yet.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%q is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("directory %q is writable by group or others (mode %04o; run: chmod 700 %s)", dir, perm, dir)
	}
	if uid, ok := owner(fi); ok && uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("directory %q is owned by uid %d, not by this user (uid %d) or root", dir, uid, os.Geteuid())
	}
	return nil
}

func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// readValue reads at most maxSecretSize bytes and trims the trailing
// newline an editor or `echo` leaves. Errors name the path, never the
// contents.
func readValue(r io.Reader, what, path string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecretSize+1))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("read %s %q: %w", what, path, err)
	}
	if len(b) > maxSecretSize {
		clear(b)
		return nil, fmt.Errorf("%s %q refused: larger than %d bytes (is it the right file?)", what, path, maxSecretSize)
	}
	v := bytes.TrimRight(b, "\r\n")
	if len(v) == 0 {
		clear(b)
		return nil, fmt.Errorf("%s %q is empty (store the secret again)", what, path)
	}
	return v, nil
}

// writeFile stores value with a trailing newline, 0600, atomically.
func writeFile(path string, value []byte) error {
	b := make([]byte, 0, len(value)+1)
	b = append(append(b, value...), '\n')
	defer clear(b)
	return atomicfile.WriteFile(path, b, 0o600)
}
