package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/relaychat/relay/internal/cgroup"
	"github.com/relaychat/relay/internal/exec"
	tr "github.com/relaychat/relay/internal/sandbox/trampoline"
)

// A Launcher keeps one trampoline started ahead of its job for each kind of
// sandbox a relay has used ("warm"): the clone into fresh namespaces, the
// exec of the relay binary and Go's start-up then happen off the job's
// path, and the job only pays for building its view and starting the
// command. Each warm trampoline serves exactly one job: it waits, in its own
// new namespaces and its own job cgroup, for the profile the relay writes
// into a pipe only the relay holds, and nothing of it is ever shared with
// another job. It is safe for concurrent use.
type Launcher struct {
	mu     sync.Mutex
	idle   map[warmKey]*warm
	coming map[warmKey]bool // refills in flight, one per key at most
	closed bool
	wg     sync.WaitGroup // refills in flight
	// started counts the trampolines started ahead, for the tests.
	started atomic.Int64
}

// warmKey is everything a trampoline gets when it starts, before its job is
// known: a warm one fits a job only if all of it matches.
type warmKey struct {
	exe, exeName string
	id           Identity
	asRoot       bool
	cloneNet     bool
	cgroups      *cgroup.Tree
}

// warm is one trampoline waiting for its job.
type warm struct {
	key    warmKey
	proc   *os.Process
	out    *os.File    // stdout and stderr
	status *os.File    // the command's wait status
	prof   *os.File    // the write end of the profile pipe
	job    *cgroup.Job // its cgroup, or nil
}

// NewLauncher returns a Launcher with nothing started yet.
func NewLauncher() *Launcher {
	return &Launcher{idle: map[warmKey]*warm{}, coming: map[warmKey]bool{}}
}

// Close kills the trampolines still waiting and waits for refills in flight.
// Jobs already handed out are not affected.
func (l *Launcher) Close() {
	l.mu.Lock()
	l.closed = true
	idle := l.idle
	l.idle = map[warmKey]*warm{}
	l.mu.Unlock()
	l.wg.Wait()
	l.mu.Lock()
	for k, w := range l.idle {
		idle[k] = w
	}
	l.idle = map[warmKey]*warm{}
	l.mu.Unlock()
	for _, w := range idle {
		w.discard()
	}
}

// take returns a waiting trampoline for k, or starts one now.
func (l *Launcher) take(k warmKey) (*warm, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("sandbox: the launcher is closed")
	}
	w := l.idle[k]
	delete(l.idle, k)
	l.mu.Unlock()
	if w != nil && w.proc.Signal(syscall.Signal(0)) == nil {
		return w, nil
	}
	if w != nil {
		w.discard() // died while it waited
	}
	return spawn(k)
}

// refill starts the next trampoline for k in the background. It is called
// when a job ends rather than when it starts, so that starting the next
// one never competes with a job for the CPU.
func (l *Launcher) refill(k warmKey) {
	l.mu.Lock()
	if l.closed || l.idle[k] != nil || l.coming[k] {
		l.mu.Unlock()
		return
	}
	l.coming[k] = true
	l.wg.Add(1)
	l.mu.Unlock()
	go l.start(k)
}

func (l *Launcher) start(k warmKey) {
	defer l.wg.Done()
	l.started.Add(1)
	w, err := spawn(k)
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.coming, k)
	if err != nil {
		return // the next job starts one itself, and reports why it cannot
	}
	if l.closed || l.idle[k] != nil {
		go w.discard()
		return
	}
	l.idle[k] = w
}

// spawn starts a trampoline for k, waiting for its profile.
func spawn(k warmKey) (w *warm, err error) {
	w = &warm{key: k}
	var closers []*os.File
	defer func() {
		for _, f := range closers {
			f.Close()
		}
		if err != nil {
			w.discard()
		}
	}()
	var outW, statusW, profR *os.File
	if w.out, outW, err = os.Pipe(); err != nil {
		return w, err
	}
	if w.status, statusW, err = os.Pipe(); err != nil {
		return w, err
	}
	if profR, w.prof, err = os.Pipe(); err != nil {
		return w, err
	}
	closers = append(closers, outW, statusW, profR)
	// What the runner adds to a process it starts itself.
	sys := k.sysProcAttr()
	sys.Setpgid, sys.Pdeathsig = true, syscall.SIGKILL
	if k.cgroups != nil {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return w, err
		}
		if w.job, err = k.cgroups.NewJob(hex.EncodeToString(b[:]), cgroup.Limits{}); err != nil {
			return w, fmt.Errorf("sandbox: job cgroup: %w", err)
		}
		sys.UseCgroupFD, sys.CgroupFD = true, w.job.FD()
	}
	cmd := &osexec.Cmd{
		Path: k.exe, Args: []string{k.exeName, tr.Arg}, Env: trampolineEnv(), Dir: "/",
		Stdout: outW, Stderr: outW, ExtraFiles: []*os.File{statusW, profR}, SysProcAttr: sys,
	}
	if err := cmd.Start(); err != nil {
		return w, fmt.Errorf("sandbox: start the trampoline: %w", err)
	}
	w.proc = cmd.Process
	return w, nil
}

// discard kills a trampoline that will never get its job.
func (w *warm) discard() {
	for _, f := range []*os.File{w.out, w.status, w.prof} {
		if f != nil {
			f.Close()
		}
	}
	if w.proc != nil {
		_ = syscall.Kill(-w.proc.Pid, syscall.SIGKILL)
		_, _ = w.proc.Wait()
	}
	if w.job != nil {
		_ = w.job.Close()
	}
}

// Prewarm starts, in the background, a trampoline of pr's kind for its
// first job, unless one waits already: without it the first command of
// each kind after start pays the trampoline's start-up (a relay has one or
// two kinds: with and without network). A profile without a launcher does
// nothing.
func (pr *Profile) Prewarm() {
	if pr.launcher != nil {
		pr.launcher.refill(pr.key())
	}
}

// wrapWarm is Wrap through the launcher: a warm trampoline gets the job.
func (pr *Profile) wrapWarm(s *tr.Spec) (*exec.Wrapped, error) {
	b, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	w, err := pr.launcher.take(pr.key())
	if err != nil {
		return nil, err
	}
	k := w.key
	done := func(*exec.Result) { pr.launcher.refill(k) }
	if w.job != nil {
		if err := w.job.SetLimits(pr.limits); err != nil {
			w.discard()
			return nil, fmt.Errorf("sandbox: job cgroup: %w", err)
		}
		pr.mu.Lock()
		pr.jobs = append(pr.jobs, w.job)
		pr.mu.Unlock()
		job := w.job
		done = func(r *exec.Result) {
			pr.finish(job, r)
			pr.launcher.refill(k)
		}
	}
	prof := w.prof
	return &exec.Wrapped{
		ReportsStatus: true,
		Done:          done,
		Started: &exec.Started{
			Process: w.proc, Output: w.out, Status: w.status,
			Go: func() error {
				defer prof.Close()
				if _, err := prof.Write(b); err != nil {
					return fmt.Errorf("write the profile: %w", err)
				}
				return nil
			},
		},
	}, nil
}
