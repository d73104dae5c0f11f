package cgroup

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// kill empties the cgroup open as fd (named dir in errors): with
// cgroup.kill when killFile is set and the kernel has it, else by freezing
// it and signalling each member. It returns once cgroup.events says
// "populated 0": every task has passed cgroup_exit and will never run user
// code again, though its parent may not have reaped it yet.
func kill(fd int, dir string, killFile bool) error {
	ev, err := unix.Openat(fd, "cgroup.events", unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("kill %s: %w", dir, err)
	}
	defer unix.Close(ev)
	deadline := time.Now().Add(killWait)
	empty := func(e events) bool { return !e.populated }
	if killFile {
		err := writeAt(fd, "cgroup.kill", "1")
		if err == nil {
			return wait(ev, dir, deadline, empty)
		}
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("kill %s: %w", dir, err)
		}
	}
	// Before Linux 5.14. A frozen task cannot fork, so once the cgroup
	// reports "frozen 1" its membership only shrinks, and one pass of
	// SIGKILL (which a frozen task still obeys) reaches everyone.
	if err := writeAt(fd, "cgroup.freeze", "1"); err != nil {
		return fmt.Errorf("kill %s: %w", dir, err)
	}
	if err := wait(ev, dir, deadline, func(e events) bool { return e.frozen || !e.populated }); err != nil {
		return err
	}
	if err := signalAll(fd); err != nil {
		return fmt.Errorf("kill %s: %w", dir, err)
	}
	return wait(ev, dir, deadline, empty)
}

// signalAll SIGKILLs every process in the cgroup open as fd and in its
// descendants. A pid read from cgroup.procs may be reused once its process
// dies, so each is pinned with a pidfd first and signalled only if the
// cgroup still lists it afterwards: then the pidfd's process, if alive, is
// that member, and if dead, the signal goes nowhere.
func signalAll(fd int) error {
	pidfds := map[int]int{}
	defer func() {
		for _, p := range pidfds {
			unix.Close(p)
		}
	}()
	s, err := readAt(fd, "cgroup.procs")
	if err != nil {
		return err
	}
	for _, pid := range parsePids(s) {
		p, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pidfd_open %d: %w", pid, err)
		}
		pidfds[pid] = p
	}
	if s, err = readAt(fd, "cgroup.procs"); err != nil {
		return err
	}
	for _, pid := range parsePids(s) {
		if p, ok := pidfds[pid]; ok {
			if err := unix.PidfdSendSignal(p, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("kill %d: %w", pid, err)
			}
		}
	}
	// Descendant cgroups: a job running as the relay's uid may make them.
	d, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(d), ".")
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := unix.Openat(fd, e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		err = signalAll(c)
		unix.Close(c)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
	}
	return nil
}

// events is the state in a cgroup.events file.
type events struct{ populated, frozen bool }

// wait reads the cgroup.events file open as ev until done says yes, or
// fails at deadline. Between reads it polls for POLLPRI, which kernfs
// raises when the file changes after the last read, so no change is missed
// and nothing spins.
func wait(ev int, dir string, deadline time.Time, done func(events) bool) error {
	for {
		s, err := pread(ev)
		if err != nil {
			return fmt.Errorf("%s: cgroup.events: %w", dir, err)
		}
		p, _ := field(s, "populated")
		fz, _ := field(s, "frozen")
		if done(events{populated: p != "0", frozen: fz == "1"}) {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("cgroup %s still has processes %v after SIGKILL", dir, killWait)
		}
		fds := []unix.PollFd{{Fd: int32(ev), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("%s: poll cgroup.events: %w", dir, err)
		}
	}
}
