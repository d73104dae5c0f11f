package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultGrace is how long a command has between SIGTERM and SIGKILL.
const DefaultGrace = 2 * time.Second

// drainDelay bounds how long a finished job waits for its output pipe to
// reach EOF: only a descendant that escaped the process group (setsid)
// can hold it open, and it must not hold the job open with it.
const drainDelay = 2 * time.Second

// Spec is everything needed to run one command. Build it with SpecFor.
type Spec struct {
	Argv []string // Argv[0] is an absolute path
	Dir  string
	// Env is the child's entire environment; nil means empty, never the
	// relay's own.
	Env []string
	// Timeout is required; Grace defaults to DefaultGrace.
	Timeout, Grace time.Duration
	// MaxOutput caps the kept output in bytes; required.
	MaxOutput int64
	// SpoolDir holds the private temp file of large output ("" means
	// os.TempDir()); the file is unlinked as soon as it is created.
	SpoolDir string
	// Sandbox wraps the command; nil runs it unsandboxed, which Start
	// refuses when RequireSandbox is set.
	Sandbox Wrapper
	// RequireSandbox is set by SpecFor for every command whose policy does
	// not say "sandbox: none", so a missing Wrapper fails closed.
	RequireSandbox bool
}

// Result is how a job ended.
type Result struct {
	ExitCode    int    // -1 if the process was killed by a signal
	Signal      string // e.g. "SIGKILL"; "" if it exited
	TimedOut    bool   // the timeout fired
	Canceled    bool   // Cancel (or the Start context) stopped it
	Duration    time.Duration
	OutputBytes int64  // total produced, kept or not
	Dropped     int64  // bytes over the cap (or lost to a spool error)
	SHA256      string // hex digest of the whole output stream
	Output      *Spool // the kept output; the receiver must Close it
	// CPU is the user and system time of the command and every
	// descendant that was reaped (inside a sandbox, all of them).
	CPU time.Duration
	// MaxRSS is the largest resident set of any single process of the
	// job, in bytes.
	MaxRSS int64
	// MemoryPeak is the peak memory of the whole job in bytes, and
	// OOMKills how often the kernel killed one of its processes for
	// memory: known only where the job had a cgroup of its own, else -1.
	MemoryPeak, OOMKills int64
}

// LimitError refuses a job over a concurrency limit. Its message is safe
// to show in the chat.
type LimitError struct {
	Key    string // the command, "" for the global limit
	Limit  int
	Global bool
}

func (e *LimitError) Error() string {
	if e.Global {
		return fmt.Sprintf("too many commands running (limit %d); try again when one finishes", e.Limit)
	}
	return fmt.Sprintf("/%s is already running (limit %d); try again when it finishes", e.Key, e.Limit)
}

// SafeToShow is the message: the command's name and the limit.
func (e *LimitError) SafeToShow() string { return e.Error() }

// Runner starts jobs within a global concurrency limit.
type Runner struct {
	mu     sync.Mutex
	max    int // the global limit, at least 1; SetLimit changes it
	seq    uint64
	jobs   map[string]*Job // running jobs by ID
	perKey map[string]int  // running (or starting) jobs per key
	active int             // running or starting jobs overall
}

// NewRunner returns a Runner allowing at most maxConcurrent jobs at once
// (at least 1).
func NewRunner(maxConcurrent int) *Runner {
	return &Runner{max: max(maxConcurrent, 1), jobs: map[string]*Job{}, perKey: map[string]int{}}
}

// SetLimit changes the global limit (at least 1) for every later Start.
// Jobs already running are never stopped: lowering the limit below them
// refuses new jobs until enough have ended.
func (r *Runner) SetLimit(maxConcurrent int) {
	r.mu.Lock()
	r.max = max(maxConcurrent, 1)
	r.mu.Unlock()
}

// Job is one running or finished command.
type Job struct {
	id, key string
	started time.Time
	spool   *Spool
	cancel  chan struct{}
	once    sync.Once
	done    chan struct{}
	res     *Result
}

func (j *Job) ID() string               { return j.id }
func (j *Job) Key() string              { return j.key }
func (j *Job) Started() time.Time       { return j.started }
func (j *Job) Done() <-chan struct{}    { return j.done }
func (j *Job) Tail(maxBytes int) []byte { return j.spool.lastBytes(maxBytes) }

// ReadOutputAt reads the output kept so far from offset off; see
// Spool.ReadAt. The Result's Output is the same spool.
func (j *Job) ReadOutputAt(p []byte, off int64) (int, error) { return j.spool.ReadAt(p, off) }

// Written is the number of output bytes produced so far.
func (j *Job) Written() int64 {
	j.spool.mu.Lock()
	defer j.spool.mu.Unlock()
	return j.spool.total
}

// Wait blocks until the job has ended, every process of its group is gone
// and its output is complete, and returns the result (the same for every
// caller).
func (j *Job) Wait() *Result {
	<-j.done
	return j.res
}

// Cancel stops the job: SIGTERM to its process group, SIGKILL after the
// grace period. It returns at once and may be called any number of times.
func (j *Job) Cancel() { j.once.Do(func() { close(j.cancel) }) }

// Jobs returns the running jobs, oldest first.
func (r *Runner) Jobs() []*Job {
	r.mu.Lock()
	out := make([]*Job, 0, len(r.jobs))
	for _, j := range r.jobs {
		out = append(out, j)
	}
	r.mu.Unlock()
	sort.Slice(out, func(a, b int) bool {
		na, _ := strconv.Atoi(out[a].id[1:])
		nb, _ := strconv.Atoi(out[b].id[1:])
		return na < nb
	})
	return out
}

// Get returns the running job with this ID, or nil.
func (r *Runner) Get(id string) *Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jobs[id]
}

// CancelAll cancels every running job.
func (r *Runner) CancelAll() {
	for _, j := range r.Jobs() {
		j.Cancel()
	}
}

// reserve takes a global and a per-key slot, or refuses: a request over a
// limit is never queued.
func (r *Runner) reserve(key string, perKey int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active >= r.max {
		return &LimitError{Limit: r.max, Global: true}
	}
	if r.perKey[key] >= perKey {
		return &LimitError{Key: key, Limit: perKey}
	}
	r.active++
	r.perKey[key]++
	return nil
}

func (r *Runner) release(key, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active--
	if r.perKey[key]--; r.perKey[key] <= 0 {
		delete(r.perKey, key)
	}
	delete(r.jobs, id)
}

// Start starts spec as a job under key (the command name), within the
// global limit and perKeyLimit jobs of that key (at least 1). It refuses
// with a *LimitError over a limit, and with another error, having run
// nothing, when the spec is incomplete, the sandbox cannot wrap it or the
// program cannot be started. Cancelling ctx cancels the job.
func (r *Runner) Start(ctx context.Context, key string, perKeyLimit int, spec Spec) (*Job, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if err := r.reserve(key, max(perKeyLimit, 1)); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.seq++
	id := "j" + strconv.FormatUint(r.seq, 10)
	r.mu.Unlock()

	j := &Job{id: id, key: key, spool: newSpool(spec.SpoolDir, spec.MaxOutput), cancel: make(chan struct{}), done: make(chan struct{})}
	st, err := start(spec)
	if err != nil {
		r.release(key, id)
		return nil, err
	}
	j.started = time.Now()
	r.mu.Lock()
	r.jobs[id] = j
	r.mu.Unlock()
	go func() {
		j.res = monitor(ctx, j, st, spec)
		if st.done != nil {
			st.done(j.res)
		}
		// Free the slots before Done fires, so a caller that saw the job
		// end can start the next one at once.
		r.release(key, id)
		close(j.done)
	}()
	return j, nil
}

func (s *Spec) check() error {
	switch {
	case len(s.Argv) == 0:
		return errors.New("exec: empty argv")
	case s.Timeout <= 0:
		return errors.New("exec: spec has no timeout")
	case s.MaxOutput <= 0:
		return errors.New("exec: spec has no output limit")
	case s.RequireSandbox && isNil(s.Sandbox):
		return errors.New("exec: command requires a sandbox and none was given; refusing to run it unsandboxed")
	}
	return nil
}

// isNil catches a nil interface and a typed nil pointer in one.
func isNil(w Wrapper) bool {
	if w == nil {
		return true
	}
	v := reflect.ValueOf(w)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// cloexecMu serializes the descriptor sweep with forks, so that a Start
// never forks between another's sweep and fork with fresh stray fds.
var cloexecMu sync.Mutex

// started is a job's process as the runner drives it.
type started struct {
	proc   *os.Process
	out    *os.File      // read end of the pipe on its stdout and stderr
	status *os.File      // read end of the wrapper's status pipe, or nil
	done   func(*Result) // the wrapper's Done, or nil
}

// start forks the command with its output on one pipe whose read end it
// returns. Stdout and stderr are the same *os.File, so os/exec passes the
// descriptor as is and both streams interleave in the order written. When
// the wrapper reports the command's status, status is the read end of the
// pipe it reports on. A wrapper that started its process ahead is adopted.
func start(spec Spec) (*started, error) {
	if !isNil(spec.Sandbox) {
		w, err := spec.Sandbox.Wrap(spec.Argv, spec.Env)
		if err != nil {
			return nil, fmt.Errorf("sandbox refused the command: %w", err)
		}
		if w != nil && w.Started != nil {
			return adopt(w)
		}
		return fork(spec, w)
	}
	return fork(spec, nil)
}

// adopt takes over a wrapper process started ahead of its job and hands it
// the job.
func adopt(w *Wrapped) (*started, error) {
	s := w.Started
	if err := s.Go(); err != nil {
		_ = syscall.Kill(-s.Process.Pid, syscall.SIGKILL)
		_, _ = s.Process.Wait()
		s.Output.Close()
		if s.Status != nil {
			s.Status.Close()
		}
		if w.Done != nil {
			w.Done(&Result{MemoryPeak: -1, OOMKills: -1})
		}
		return nil, fmt.Errorf("exec: hand the job to the sandbox: %w", err)
	}
	st := &started{proc: s.Process, out: s.Output, done: w.Done}
	if w.ReportsStatus {
		st.status = s.Status
	} else if s.Status != nil {
		s.Status.Close()
	}
	return st, nil
}

// fork starts spec, or what w wraps it in.
func fork(spec Spec, w *Wrapped) (*started, error) {
	path, args, env, dir := spec.Argv[0], spec.Argv, spec.Env, spec.Dir
	var wattr *syscall.SysProcAttr
	var extra []*os.File
	var done func(*Result)
	reports := false
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	if !isNil(spec.Sandbox) {
		if w == nil || w.Path == "" || len(w.Args) == 0 {
			return nil, errors.New("sandbox returned an empty command")
		}
		path, args, env, wattr, reports, extra, done = w.Path, w.Args, w.Env, w.SysProcAttr, w.ReportsStatus, w.ExtraFiles, w.Done
		if w.Dir != "" {
			dir = w.Dir
		}
	}
	attr := procAttr(wattr)
	if env == nil {
		env = []string{} // nil would mean the relay's own environment
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("exec: output pipe: %w", err)
	}
	var sr, sw *os.File
	if reports || len(extra) > 0 {
		if sr, sw, err = os.Pipe(); err != nil {
			pr.Close()
			pw.Close()
			return nil, fmt.Errorf("exec: status pipe: %w", err)
		}
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        args,
		Env:         env,
		Dir:         dir,
		Stdin:       nil, // os/exec opens /dev/null
		Stdout:      pw,
		Stderr:      pw,
		SysProcAttr: attr,
		WaitDelay:   drainDelay,
	}
	if sw != nil {
		// Descriptor 3 is the status pipe, the wrapper's own files follow.
		cmd.ExtraFiles = append([]*os.File{sw}, extra...)
	}
	cloexecMu.Lock()
	markCloexec()
	err = cmd.Start()
	cloexecMu.Unlock()
	pw.Close() // the child holds its own copies
	if sw != nil {
		sw.Close()
	}
	if err != nil {
		pr.Close()
		if sr != nil {
			sr.Close()
		}
		return nil, fmt.Errorf("exec: start %s: %w", path, err)
	}
	if !reports && sr != nil {
		sr.Close()
		sr = nil
	}
	return &started{proc: cmd.Process, out: pr, status: sr, done: done}, nil
}

// procAttr returns a copy of the Wrapper's attributes (never modifying
// them) with the runner's own added: a new process group, so a timeout can
// signal the whole tree, and SIGKILL when the relay's forking thread dies.
func procAttr(w *syscall.SysProcAttr) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if w != nil {
		a := *w
		attr = &a
	}
	// A session leader already leads its own process group, and setpgid
	// would fail for it.
	if !attr.Setsid {
		attr.Setpgid, attr.Pgid = true, 0
	}
	attr.Pdeathsig = syscall.SIGKILL
	return attr
}

// markCloexec marks every descriptor above stderr close-on-exec, so none
// leaks into the child even if some library opened one without O_CLOEXEC.
// Go's own descriptors already are; this catches the rest.
func markCloexec() {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// monitor drives one job to its end: copy output, enforce the timeout and
// cancellation, kill what is left of the group, reap, and build the result.
func monitor(ctx context.Context, j *Job, p *started, spec Spec) *Result {
	pr, status := p.out, p.status
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 64<<10)
		_, _ = io.CopyBuffer(j.spool, pr, buf)
	}()

	pid := p.proc.Pid
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		waitExited(pid)
	}()

	grace := spec.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	timeout := time.NewTimer(spec.Timeout)
	defer timeout.Stop()
	res := &Result{MemoryPeak: -1, OOMKills: -1}
	stop := func() {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		kill := time.NewTimer(grace)
		defer kill.Stop()
		select {
		case <-exited:
		case <-kill.C:
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	select {
	case <-exited:
	case <-timeout.C:
		res.TimedOut = true
		stop()
	case <-j.cancel:
		res.Canceled = true
		stop()
	case <-ctx.Done():
		res.Canceled = true
		stop()
	}
	<-exited
	res.Duration = time.Since(j.started)
	// The leader has exited but is not reaped yet, so its pid still names
	// this group and cannot be reused: kill whatever it left behind.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	st, err := p.proc.Wait()
	for err != nil && errors.Is(err, syscall.EINTR) {
		st, err = p.proc.Wait()
	}

	select {
	case <-copied:
	case <-time.After(drainDelay):
		pr.Close() // unblocks the copy; an escaped descendant loses its pipe
		<-copied
	}
	pr.Close()

	var ws syscall.WaitStatus
	if st != nil {
		ws, _ = st.Sys().(syscall.WaitStatus)
	}
	if status != nil {
		// The wrapper wrote the command's own status, or nothing if it
		// failed before the command ran: then its own status stands.
		var b [4]byte
		if n, _ := io.ReadFull(status, b[:]); n == len(b) {
			ws = *(*syscall.WaitStatus)(unsafe.Pointer(&b))
		}
		status.Close()
	}
	res.ExitCode = ws.ExitStatus()
	if ws.Signaled() {
		res.Signal = unix.SignalName(ws.Signal())
		res.ExitCode = -1
	}
	if st != nil {
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok && ru != nil {
			res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			res.MaxRSS = ru.Maxrss << 10
		}
	}
	s := j.spool
	s.mu.Lock()
	res.OutputBytes, res.Dropped = s.total, s.dropped
	s.mu.Unlock()
	res.SHA256 = s.sum()
	res.Output = s
	return res
}

// waitExited blocks until pid has exited without reaping it (WNOWAIT).
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// Status says in a few words how the command ended: "exit 0", "timed out",
// "killed" or "signal SIGSEGV". It is what every report of a result shows.
func (r *Result) Status() string {
	switch r.Ending() {
	case EndTimeout:
		return "timed out"
	case EndKilled:
		return "killed"
	case EndSignal:
		return "signal " + r.Signal
	}
	return fmt.Sprintf("exit %d", r.ExitCode)
}

// Ending is how a job ended: the one classification that the chat's
// footer, the audit record's outcome and relay exec's exit code all derive
// from.
type Ending int

const (
	EndOK      Ending = iota // exit 0
	EndFailed                // a non-zero exit
	EndSignal                // killed by a signal of its own making
	EndTimeout               // stopped by its timeout
	EndKilled                // stopped by /kill, /lock or shutdown
)

// Ending classifies r. A timeout or a cancel wins over the signal that
// carried it out.
func (r *Result) Ending() Ending {
	switch {
	case r.TimedOut:
		return EndTimeout
	case r.Canceled:
		return EndKilled
	case r.Signal != "":
		return EndSignal
	case r.ExitCode != 0:
		return EndFailed
	}
	return EndOK
}

// String is the ending as an audit record's outcome.
func (e Ending) String() string {
	return [...]string{EndOK: "ok", EndFailed: "failed", EndSignal: "signal", EndTimeout: "timeout", EndKilled: "killed"}[e]
}
