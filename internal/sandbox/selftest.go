package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// SelfTest runs true(1) inside p, through the real trampoline, and reports
// why it failed. It proves what Probe cannot: that no seccomp filter or LSM
// blocks landlock_restrict_self or the namespaces at run time.
func (pr *Profile) SelfTest() error {
	bin := ""
	for _, c := range []string{"/usr/bin/true", "/bin/true"} {
		if r, err := filepath.EvalSymlinks(c); err == nil && pr.executable(r) {
			bin = c
			break
		}
	}
	if bin == "" {
		return errors.New("self-test: no true(1) in /usr/bin or /bin")
	}
	s, err := pr.jobSpec([]string{bin}, nil)
	if err != nil {
		return err
	}
	w, err := pr.wrapCold(s)
	if err != nil {
		return err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("self-test: %w", err)
	}
	defer devnull.Close()
	r, wr, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("self-test: %w", err)
	}
	defer r.Close()
	sr, sw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("self-test: %w", err)
	}
	defer sr.Close()
	sys := *w.SysProcAttr
	sys.Setpgid = true
	sys.Pdeathsig = syscall.SIGKILL
	files := []uintptr{devnull.Fd(), devnull.Fd(), wr.Fd(), sw.Fd()}
	for _, f := range w.ExtraFiles {
		files = append(files, f.Fd())
	}
	pid, err := syscall.ForkExec(w.Path, w.Args, &syscall.ProcAttr{
		Dir:   w.Dir,
		Env:   w.Env,
		Files: files,
		Sys:   &sys,
	})
	wr.Close()
	sw.Close()
	for _, f := range w.ExtraFiles {
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("self-test: start the trampoline: %w", err)
	}
	var msg strings.Builder
	buf := make([]byte, 512)
	for msg.Len() < 4096 {
		n, err := r.Read(buf)
		msg.Write(buf[:n])
		if err != nil {
			break
		}
	}
	ws, err := wait(pid)
	if err != nil {
		return fmt.Errorf("self-test: wait: %w", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("self-test: %s (status %v)", strings.TrimSpace(msg.String()), ws)
	}
	return nil
}
