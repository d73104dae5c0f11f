package trampoline

import (
	"errors"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// Arg is os.Args[1] of a trampoline invocation.
const Arg = "__relay-sandbox"

// ExitSetupFailed is the trampoline's exit status when it could not set up
// the sandbox; the command did not run.
const ExitSetupFailed = 125

// System call numbers and constants the frozen syscall package lacks. The
// numbers from 424 on are the same on every architecture.
const (
	sysCloseRange           = 436
	sysOpenat2              = 437
	sysLandlockCreate       = 444
	sysLandlockAddRule      = 445
	sysLandlockRestrictSelf = 446

	landlockCreateRulesetVersion = 1
	landlockRulePathBeneath      = 1
	landlockRuleNetPort          = 2

	oPath               = 0x200000
	atFDCWD             = -100
	resolveNoMagiclinks = 0x02
	resolveNoSymlinks   = 0x04
	prSetNoNewPrivs     = 38
	rlimitNproc         = 6
	setModeFilter       = 1 // SECCOMP_SET_MODE_FILTER
)

func init() {
	if Is(os.Args) {
		Run(os.Args)
	}
}

// Is reports whether args (os.Args) ask for the trampoline.
func Is(args []string) bool { return len(args) > 1 && args[1] == Arg }

// Run confines the current process as the profile in args says and runs
// the command as its only child, as the init of the command's pid
// namespace. It never returns: it exits with the command's exit status (or
// 128 plus the signal that killed it, whose full wait status goes to the
// profile's status descriptor), or, when it could not set up the sandbox,
// reports one line on stderr and exits with ExitSetupFailed.
func Run(args []string) {
	// Mount and capability changes apply to the calling thread or need
	// it to stay put across the fork.
	runtime.LockOSThread()
	// One P: the trampoline runs one goroutine at a time, and more would
	// only start threads that spin and hand work back and forth.
	runtime.GOMAXPROCS(1)
	err := run(args)
	if err == nil {
		err = errors.New("init returned")
	}
	syscall.Write(2, []byte("relay-sandbox: "+err.Error()+"\n"))
	syscall.Exit(ExitSetupFailed)
}

func errno(what string, e syscall.Errno) error { return errors.New(what + ": " + e.Error()) }

func run(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: " + Arg + " (the profile on descriptor " + strconv.Itoa(ProfileFD) + ")")
	}
	if os.Getpid() != 1 {
		return errors.New("not the init of a new pid namespace (pid " + strconv.Itoa(os.Getpid()) + ")")
	}
	// Forwarded to the whole job; registered before anything runs, since
	// an unhandled SIGTERM would end this init, and with it the job, at
	// once instead of after the job's grace.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	// A warm trampoline waits here, started ahead of its job, until the
	// relay writes the profile into the pipe.
	s, err := readProfile()
	if err != nil {
		return err
	}
	if err := statusPipe(s.StatusFD); err != nil {
		return err
	}
	argv := s.Argv
	if err := identity(s); err != nil {
		return err
	}

	umask := syscall.Umask(0) // the view's directories get the modes asked for
	if err := view(s); err != nil {
		return err
	}
	syscall.Umask(umask)
	rs, err := ruleset(s)
	if err != nil {
		return err
	}
	filter, err := NewFilter(s.Allow)
	if err != nil {
		return err
	}
	p, err := newPlan(s, argv, rs, filter)
	if err != nil {
		return err
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC); err != nil {
		return wrap("exec-error pipe", err)
	}
	p.errFD = uintptr(pipe[1])

	pid, e := forkCommand(p)
	syscall.Close(pipe[1])
	if e != 0 {
		return errno("fork the command", e)
	}
	runtime.KeepAlive(filter)
	runtime.KeepAlive(p)
	var rep [2]uint32
	n, _ := syscall.Read(pipe[0], (*[8]byte)(unsafe.Pointer(&rep))[:])
	syscall.Close(pipe[0])
	syscall.Close(rs)
	if n == 8 {
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		what := "start the command"
		if int(rep[0]) < len(stageNames) && stageNames[rep[0]] != "" {
			what = stageNames[rep[0]]
		}
		if rep[0] == stageExecve {
			what = "execve " + argv[0]
		}
		return errno(what, syscall.Errno(rep[1]))
	}
	// The init keeps the capabilities it built the view with, which hold
	// in the job's own namespaces only: it reads nothing from the command
	// and only reaps and forwards signals, and dropping them on every
	// thread (capabilities are per thread) cost a stop of the world per
	// command.
	go func() {
		for sig := range sigs {
			// From pid 1, -1 is every process of the namespace but
			// this one: setsid and double forks included.
			syscall.Kill(-1, sig.(syscall.Signal))
		}
	}()
	reap(pid, s.StatusFD)
	return nil
}

// ProfileFD is the descriptor the profile arrives on: a sealed memfd, or a
// pipe for a trampoline started before its job; never argv, which the
// command could read in /proc/1/cmdline with the paths the profile masks.
const ProfileFD = 4

// MaxProfile bounds the profile's size.
const MaxProfile = 1 << 20

const (
	fGetSeals  = 1034
	fSealWrite = 0x0008
)

// readProfile reads and decodes the profile from ProfileFD and closes it.
func readProfile() (*Spec, error) {
	defer syscall.Close(ProfileFD)
	var st syscall.Stat_t
	if err := syscall.Fstat(ProfileFD, &st); err != nil {
		return nil, wrap("profile descriptor "+strconv.Itoa(ProfileFD), err)
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFIFO {
		return readPipe()
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size > MaxProfile {
		return nil, errors.New("profile descriptor is neither a pipe nor a sealed memfd of at most 1 MiB")
	}
	seals, _, e := syscall.Syscall(syscall.SYS_FCNTL, ProfileFD, fGetSeals, 0)
	if e != 0 || seals&fSealWrite == 0 {
		return nil, errors.New("profile descriptor is not sealed against writes")
	}
	buf := make([]byte, st.Size)
	n, err := syscall.Pread(ProfileFD, buf, 0)
	if err != nil || int64(n) != st.Size {
		return nil, errors.New("read the profile: short read")
	}
	return Unmarshal(buf)
}

// readPipe reads a profile written into a pipe, up to its end: whoever
// holds the write end is the relay that started this trampoline, as the
// pipe was made for it alone.
func readPipe() (*Spec, error) {
	var buf []byte
	chunk := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(ProfileFD, chunk)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, wrap("read the profile", err)
		}
		if n == 0 {
			break
		}
		if buf = append(buf, chunk[:n]...); len(buf) > MaxProfile {
			return nil, errors.New("profile larger than 1 MiB")
		}
	}
	if len(buf) == 0 {
		return nil, errors.New("no profile: the relay gave up on this trampoline")
	}
	return Unmarshal(buf)
}

// statusPipe checks that the status descriptor is what the runner passes:
// a pipe, never a stray descriptor the runtime happened to open there.
func statusPipe(fd int) error {
	if fd < 0 {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return errors.New("status descriptor " + strconv.Itoa(fd) + " is not a pipe")
	}
	syscall.CloseOnExec(fd)
	return nil
}

// identity refuses to go on unless this process is exactly the command's
// identity: the runner sets it, and a mistake there must not run a
// command as someone else.
func identity(s *Spec) error {
	var r, e, sv, rg, eg, sg uint32
	syscall.RawSyscall(syscall.SYS_GETRESUID, uintptr(unsafe.Pointer(&r)), uintptr(unsafe.Pointer(&e)), uintptr(unsafe.Pointer(&sv)))
	syscall.RawSyscall(syscall.SYS_GETRESGID, uintptr(unsafe.Pointer(&rg)), uintptr(unsafe.Pointer(&eg)), uintptr(unsafe.Pointer(&sg)))
	uid, gid := uint32(s.UID), uint32(s.GID)
	if r != uid || e != uid || sv != uid || rg != gid || eg != gid || sg != gid {
		return errors.New("identity is uid " + strconv.Itoa(int(r)) + " gid " + strconv.Itoa(int(rg)) +
			", the profile wants uid " + strconv.Itoa(s.UID) + " gid " + strconv.Itoa(s.GID))
	}
	if !s.Groups {
		n, _, e := syscall.RawSyscall(syscall.SYS_GETGROUPS, 0, 0, 0)
		if e != 0 || n != 0 {
			return errors.New("the command must have no supplementary groups")
		}
	}
	return nil
}

func newPlan(s *Spec, argv []string, rs int, f *Filter) (*plan, error) {
	argv0, err := syscall.BytePtrFromString(argv[0])
	if err != nil {
		return nil, errors.New("command path holds a NUL byte")
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return nil, errors.New("command arguments hold a NUL byte")
	}
	envp, err := syscall.SlicePtrFromStrings(s.Env)
	if err != nil {
		return nil, errors.New("command environment holds a NUL byte")
	}
	return &plan{
		argv0: argv0, argv: argvp, envp: envp,
		limits: []limit{
			{syscall.RLIMIT_CPU, rlimit{s.CPU, s.CPU + 1}}, // SIGXCPU, then SIGKILL a second later
			{syscall.RLIMIT_NOFILE, rlimit{s.NoFile, s.NoFile}},
			{syscall.RLIMIT_FSIZE, rlimit{s.FSize, s.FSize}},
			{syscall.RLIMIT_CORE, rlimit{0, 0}},
			// RLIMIT_NPROC counts every task of the uid in the job's user
			// namespace, this init's threads included: they must not eat
			// into what the profile gives the command.
			{rlimitNproc, rlimit{s.NProc + initThreads(), s.NProc + initThreads()}},
			{syscall.RLIMIT_AS, rlimit{s.AS, s.AS}},
		},
		ruleset: uintptr(rs),
		prog:    f.Prog(),
		hdr:     capHeader{version: capVersion3},
		all:     ^uint64(0),
	}, nil
}

// initThreads is how many tasks this init counts against the uid's
// RLIMIT_NPROC now. A thread it starts later takes one from the command:
// the command never gets more than its profile says.
func initThreads() uint64 {
	fd, err := syscall.Open("/proc/self/task", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 32
	}
	defer syscall.Close(fd)
	var n uint64
	buf := make([]byte, 4096)
	for {
		m, err := syscall.ReadDirent(fd, buf)
		if err != nil || m <= 0 {
			break
		}
		for b := buf[:m]; len(b) > 0; {
			reclen := int(b[16]) | int(b[17])<<8
			if reclen == 0 || reclen > len(b) {
				break
			}
			if name := b[19]; name != '.' {
				n++
			}
			b = b[reclen:]
		}
	}
	return n
}

// reap waits for the command, reaping whatever else the namespace leaves
// to its init on the way, then kills the rest of the job and exits with
// the command's status. It never returns.
func reap(pid int, statusFD int) {
	var ws syscall.WaitStatus
	for {
		var st syscall.WaitStatus
		w, err := syscall.Wait4(-1, &st, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			syscall.Write(2, []byte("relay-sandbox: wait: "+err.Error()+"\n"))
			syscall.Exit(ExitSetupFailed)
		}
		if w == pid {
			ws = st
			break
		}
	}
	syscall.Kill(-1, syscall.SIGKILL)
	if statusFD >= 0 {
		b := *(*[4]byte)(unsafe.Pointer(&ws))
		syscall.Write(statusFD, b[:])
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	syscall.Exit(code)
}
