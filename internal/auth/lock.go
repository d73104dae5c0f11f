package auth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrStateInUse means another process holds the auth state: a running
// relay, or an enrolment in progress.
var ErrStateInUse = errors.New("the auth state is in use by another relay process")

// stateLock is an exclusive flock on a file beside the state file, held by
// whoever may write the state: a running relay for its whole life, and
// 'relay totp enroll' while it saves. Without it, an enrolment while the
// relay runs would be undone by the relay's next write (the new recovery
// codes lost, the old replay floor back) while the relay kept accepting
// the old secret until a restart, the opposite of what someone re-enrolling
// after losing a phone needs; and two relays on one state directory would
// each keep their own replay floor, so a code used on one would still log
// in on the other.
type stateLock struct{ f *os.File }

// lockState takes the lock for the state file at statePath, without
// waiting: whoever holds it is a long-running process.
func lockState(statePath string) (*stateLock, error) {
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		return nil, fmt.Errorf("lock auth state: %w (hint: check state_dir and its permissions)", err)
	}
	path := statePath + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock auth state: %w (hint: check the permissions of %s)", err, filepath.Dir(path))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := lockHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w%s (hint: stop the running relay first, for example 'systemctl stop relay', then try again)", ErrStateInUse, holder)
		}
		return nil, fmt.Errorf("lock auth state %s: %w", path, err)
	}
	// The pid is only for the message above; the flock is the lock.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &stateLock{f: f}, nil
}

// lockHolder names the process recorded in the lock file, if the file
// holds nothing but a pid.
func lockHolder(f *os.File) string {
	b, _ := io.ReadAll(io.LimitReader(f, 16))
	s := strings.TrimSpace(string(b))
	if pid, err := strconv.Atoi(s); err == nil && pid > 0 {
		return fmt.Sprintf(" (pid %d)", pid)
	}
	return ""
}

func (l *stateLock) release() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the last descriptor drops the flock
		l.f = nil
	}
}

// CheckStateFree reports ErrStateInUse (wrapped, with a hint) when a
// running relay holds the auth state at statePath. 'relay totp enroll'
// asks before showing a new secret, so that the owner does not scan a
// code that cannot be saved; Save checks again under the lock.
func CheckStateFree(statePath string) error {
	l, err := lockState(statePath)
	if err != nil {
		return err
	}
	l.release()
	return nil
}
