package member

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// slots are the member's concurrency limits across processes: every
// serve-ssh is its own process, so an exec.Runner alone would let each
// one run its own limit's worth. A slot is an exclusive flock on one of N
// files; the kernel drops it when the holder dies, so a crash never leaks
// a slot.
type slots struct{ held []*os.File }

// errBusy is a limit reached; its message is safe to show the hub.
type errBusy struct{ msg string }

func (e *errBusy) Error() string { return e.msg }

// take holds one of n slots named name in dir, or fails with *errBusy
// when all n are held.
func (s *slots) take(dir, name string, n int, busy string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("slots: %w", err)
	}
	for i := 0; i < n; i++ {
		f, err := os.OpenFile(filepath.Join(dir, name+"."+strconv.Itoa(i)), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("slots: %w", err)
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			s.held = append(s.held, f)
			return nil
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("slots: %w", err)
		}
	}
	return &errBusy{msg: busy}
}

func (s *slots) release() {
	for _, f := range s.held {
		f.Close()
	}
	s.held = nil
}
