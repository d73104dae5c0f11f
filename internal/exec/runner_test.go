package exec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/policy"
)

// hangGuard bounds every wait in these tests; it is never what makes a
// test pass.
const hangGuard = 60 * time.Second

func testExe(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func spec(t testing.TB, argv ...string) Spec {
	return Spec{Argv: argv, Dir: "/", Env: []string{"PATH=/usr/bin:/bin"}, Timeout: hangGuard, Grace: time.Second, MaxOutput: 1 << 20, SpoolDir: t.TempDir()}
}

// run starts s and waits for its result, failing the test on a hang.
func run(t *testing.T, r *Runner, s Spec) *Result {
	t.Helper()
	if r == nil {
		r = NewRunner(4)
	}
	j, err := r.Start(context.Background(), "test", 4, s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return wait(t, j)
}

func wait(t *testing.T, j *Job) *Result {
	t.Helper()
	select {
	case <-j.Done():
	case <-time.After(hangGuard):
		j.Cancel()
		t.Fatalf("job %s did not finish within %s", j.ID(), hangGuard)
	}
	res := j.Wait()
	t.Cleanup(func() { res.Output.Close() })
	return res
}

func output(t *testing.T, res *Result) string {
	t.Helper()
	rc, err := res.Output.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEnvIsExactlySpecEnv(t *testing.T) {
	t.Setenv("RELAY_SECRET_IN_PARENT", "hunter2")
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"given", []string{"A=1", "B=two words"}, "A=1\nB=two words\n"},
		{"nil is empty, not inherited", nil, ""},
		{"empty", []string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(t, "/usr/bin/env")
			s.Env = tc.env
			res := run(t, nil, s)
			if got := output(t, res); got != tc.want {
				t.Errorf("child env: got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStdinIsDevNull(t *testing.T) {
	res := run(t, nil, spec(t, "/usr/bin/readlink", "/proc/self/fd/0"))
	if got := output(t, res); got != "/dev/null\n" {
		t.Errorf("stdin: got %q, want /dev/null", got)
	}
}

func TestNoDescriptorsBeyondStderr(t *testing.T) {
	// A descriptor opened without O_CLOEXEC, as a careless library might.
	fd, err := syscall.Open(filepath.Join(t.TempDir(), "leak"), syscall.O_CREAT|syscall.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	// The shell lists its own descriptors through a child ls, so neither
	// ls's directory fd nor a Go runtime's own descriptors get in the way.
	// (No pipeline: the shell's own pipe would be listed.)
	s := spec(t, "/bin/sh", "-c", `/bin/ls /proc/$$/fd`)
	res := run(t, nil, s)
	if got := output(t, res); got != "0\n1\n2\n" {
		t.Errorf("child descriptors: got %q, want \"0 1 2\" (parent had a stray fd %d)", got, fd)
	}
}

func TestOwnProcessGroup(t *testing.T) {
	s := spec(t, testExe(t))
	s.Env = []string{"RELAY_EXEC_HELPER=pgrp"}
	if got := output(t, run(t, nil, s)); got != "true\n" {
		t.Errorf("child leads its own process group: got %q, want true", got)
	}
}

func TestWorkdir(t *testing.T) {
	dir := t.TempDir()
	s := spec(t, "/bin/pwd")
	s.Dir = dir
	if got := output(t, run(t, nil, s)); got != dir+"\n" {
		t.Errorf("pwd: got %q, want %q", got, dir)
	}
}

func TestInterleavedInOrder(t *testing.T) {
	res := run(t, nil, spec(t, "/bin/sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"))
	if got, want := output(t, res), "out1\nerr1\nout2\nerr2\n"; got != want {
		t.Errorf("output: got %q, want %q", got, want)
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		script   string
		code     int
		signal   string
		timedOut bool
	}{
		{"ok", "exit 0", 0, "", false},
		{"code", "exit 3", 3, "", false},
		{"signalled", "kill -KILL $$", -1, "SIGKILL", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, nil, spec(t, "/bin/sh", "-c", tc.script))
			if res.ExitCode != tc.code || res.Signal != tc.signal || res.TimedOut || res.Canceled {
				t.Errorf("got exit %d signal %q timedout %v canceled %v, want exit %d signal %q", res.ExitCode, res.Signal, res.TimedOut, res.Canceled, tc.code, tc.signal)
			}
			if res.Duration <= 0 {
				t.Errorf("duration: got %v, want > 0", res.Duration)
			}
		})
	}
}

func TestTimeoutTerminates(t *testing.T) {
	s := spec(t, "/bin/sleep", "1000")
	s.Timeout = 50 * time.Millisecond
	res := run(t, nil, s)
	if !res.TimedOut || res.Signal != "SIGTERM" || res.ExitCode != -1 {
		t.Errorf("got timedout %v signal %q exit %d, want timed out by SIGTERM", res.TimedOut, res.Signal, res.ExitCode)
	}
}

func TestGraceThenKill(t *testing.T) {
	// The shell ignores SIGTERM (and so does its sleep, which inherits the
	// ignored disposition): only the SIGKILL after the grace period works.
	s := spec(t, "/bin/sh", "-c", `trap "" TERM; echo ready; /bin/sleep 1000`)
	s.Grace = 50 * time.Millisecond
	j, err := NewRunner(1).Start(context.Background(), "t", 1, s)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(string(j.Tail(100)), "ready") })
	j.Cancel()
	j.Cancel() // idempotent
	res := wait(t, j)
	if !res.Canceled || res.Signal != "SIGKILL" {
		t.Errorf("got canceled %v signal %q, want canceled by SIGKILL", res.Canceled, res.Signal)
	}
}

// waitFor polls cond until it holds; the deadline is only a hang guard.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached before the hang guard")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether pid no longer runs: absent, or a zombie waiting for
// whoever inherited it.
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestGrandchildrenDie(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(j *Job, s *Spec)
	}{
		{"cancel", func(j *Job, _ *Spec) { j.Cancel() }},
		{"normal exit leaves no background process", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := `/bin/sleep 1000 & echo $!; wait`
			if tc.stop == nil {
				script = `/bin/sleep 1000 & echo $!`
			}
			s := spec(t, "/bin/sh", "-c", script)
			j, err := NewRunner(1).Start(context.Background(), "t", 1, s)
			if err != nil {
				t.Fatal(err)
			}
			var pid int
			waitFor(t, func() bool {
				line, _, ok := strings.Cut(string(j.Tail(100)), "\n")
				pid, _ = strconv.Atoi(line)
				return ok && pid > 0
			})
			if tc.stop != nil {
				tc.stop(j, &s)
			}
			wait(t, j)
			waitFor(t, func() bool { return gone(pid) })
		})
	}
}

func TestEscapedDescendantDoesNotHoldTheJob(t *testing.T) {
	// setsid leaves the process group; it keeps the output pipe open. The
	// job must still end (after the drain delay) rather than hang.
	s := spec(t, "/bin/sh", "-c", `/usr/bin/setsid /bin/sleep 1000 & echo $!`)
	res := run(t, nil, s)
	pid, _ := strconv.Atoi(strings.TrimSpace(output(t, res)))
	if pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if res.ExitCode != 0 {
		t.Errorf("exit: got %d, want 0", res.ExitCode)
	}
}

func TestOutputCapAndDigest(t *testing.T) {
	const n, limit = 3 << 20, 100 << 10
	dir := t.TempDir()
	s := spec(t, "/usr/bin/head", "-c", strconv.Itoa(n), "/dev/zero")
	s.MaxOutput = limit
	s.SpoolDir = dir
	res := run(t, nil, s)
	want := sha256.Sum256(make([]byte, n))
	if res.SHA256 != hex.EncodeToString(want[:]) {
		t.Errorf("digest: got %s, want the digest of all %d bytes", res.SHA256, n)
	}
	if res.OutputBytes != n || res.Dropped != n-limit {
		t.Errorf("got %d bytes, %d dropped; want %d, %d", res.OutputBytes, res.Dropped, n, n-limit)
	}
	out := output(t, res)
	marker := "\n[relay: output truncated, " + strconv.Itoa(n-limit) + " bytes dropped]\n"
	if !strings.HasSuffix(out, marker) || len(out) != limit+len(marker) {
		t.Errorf("output: got %d bytes ending %q, want %d zero bytes then %q", len(out), out[max(0, len(out)-60):], limit, marker)
	}
	if res.Output.Size() != int64(len(out)) {
		t.Errorf("Size: got %d, want %d", res.Output.Size(), len(out))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spool dir: got %d entries, want the temp file unlinked", len(ents))
	}
	// The spool file is open, private and nameless.
	found := false
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, e := range fds {
		link, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if strings.HasPrefix(link, dir+"/") {
			found = true
			if !strings.HasSuffix(link, " (deleted)") {
				t.Errorf("spool file %s is still linked", link)
			}
			fi, err := os.Stat("/proc/self/fd/" + e.Name())
			if err == nil && fi.Mode().Perm() != 0o600 {
				t.Errorf("spool file mode: got %v, want 0600", fi.Mode().Perm())
			}
		}
	}
	if !found {
		t.Errorf("no spool file open in %s, want output spilled to disk", dir)
	}
	res.Output.Close()
	if _, err := res.Output.Open(); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close: got %v, want ErrClosed", err)
	}
}

func TestSmallOutputStaysInMemory(t *testing.T) {
	dir := t.TempDir()
	s := spec(t, "/bin/echo", "hello")
	s.SpoolDir = dir
	res := run(t, nil, s)
	if got := output(t, res); got != "hello\n" {
		t.Errorf("output: got %q", got)
	}
	if res.Output.f != nil {
		t.Error("a 6-byte output went to a temp file, want memory")
	}
}

func TestSpoolOpenTwiceAndBoundary(t *testing.T) {
	for _, size := range []int{0, 1, memThreshold - 1, memThreshold, memThreshold + 1, 3*memThreshold + 7} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			sp := newSpool(t.TempDir(), 1<<30)
			data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1000)
				sp.Write(rest[:n])
				rest = rest[n:]
			}
			defer sp.Close()
			for i := 0; i < 2; i++ {
				rc, _ := sp.Open()
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, data) {
					t.Fatalf("read %d: got %d bytes, want %d identical", i, len(got), len(data))
				}
			}
			if sp.Size() != int64(size) {
				t.Errorf("Size: got %d, want %d", sp.Size(), size)
			}
		})
	}
}

func TestTail(t *testing.T) {
	sp := newSpool(t.TempDir(), 10)
	sp.Write([]byte("hello "))
	sp.Write(bytes.Repeat([]byte("x"), tailSize))
	sp.Write([]byte("world"))
	defer sp.Close()
	if got := string(sp.lastBytes(5)); got != "world" {
		t.Errorf("tail: got %q, want world (the tail follows output past the cap)", got)
	}
	if got := len(sp.lastBytes(1 << 20)); got != tailSize {
		t.Errorf("tail size: got %d, want %d", got, tailSize)
	}
}

func TestLimitsRefuseNeverQueue(t *testing.T) {
	r := NewRunner(2)
	sleep := func() Spec { return spec(t, "/bin/sleep", "1000") }
	a, err := r.Start(context.Background(), "a", 1, sleep())
	if err != nil {
		t.Fatal(err)
	}
	var le *LimitError
	_, err = r.Start(context.Background(), "a", 1, sleep())
	if !errors.As(err, &le) || le.Global || err.Error() != "/a is already running (limit 1); try again when it finishes" {
		t.Errorf("second /a: got %v, want the per-command limit", err)
	}
	b, err := r.Start(context.Background(), "b", 1, sleep())
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Start(context.Background(), "c", 1, sleep())
	if !errors.As(err, &le) || !le.Global {
		t.Errorf("third job: got %v, want the global limit", err)
	}
	if got := len(r.Jobs()); got != 2 {
		t.Errorf("Jobs: got %d, want 2", got)
	}
	if r.Get(a.ID()) != a || r.Get("nope") != nil {
		t.Error("Get does not find running jobs by ID")
	}
	if a.ID() == b.ID() || a.Key() != "a" {
		t.Errorf("IDs %q %q, key %q", a.ID(), b.ID(), a.Key())
	}
	r.CancelAll()
	wait(t, a)
	wait(t, b)
	waitFor(t, func() bool { return len(r.Jobs()) == 0 })
	c, err := r.Start(context.Background(), "a", 1, spec(t, "/bin/true"))
	if err != nil {
		t.Fatalf("after the others finished: %v, want a free slot", err)
	}
	wait(t, c)
}

// TestSetLimit: a changed limit holds for the very next Start, both ways,
// and never stops what runs.
func TestSetLimit(t *testing.T) {
	r := NewRunner(2)
	a, err := r.Start(context.Background(), "a", 1, spec(t, "/bin/sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.CancelAll(); wait(t, a) }()
	r.SetLimit(1)
	var le *LimitError
	if _, err := r.Start(context.Background(), "b", 1, spec(t, "/bin/true")); !errors.As(err, &le) || !le.Global || le.Limit != 1 {
		t.Fatalf("after SetLimit(1) with one job running: got %v, want the global limit 1", err)
	}
	if r.Get(a.ID()) == nil {
		t.Fatal("lowering the limit stopped a running job")
	}
	r.SetLimit(2)
	b, err := r.Start(context.Background(), "b", 1, spec(t, "/bin/true"))
	if err != nil {
		t.Fatalf("after SetLimit(2): %v, want a free slot", err)
	}
	wait(t, b)
}

func TestContextCancels(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	j, err := NewRunner(1).Start(ctx, "t", 1, spec(t, "/bin/sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if res := wait(t, j); !res.Canceled {
		t.Error("cancelling the context did not cancel the job")
	}
}

type fakeWrapper struct {
	gotArgv, gotEnv []string
	w               *Wrapped
	err             error
}

func (f *fakeWrapper) Wrap(argv, env []string) (*Wrapped, error) {
	f.gotArgv, f.gotEnv = argv, env
	return f.w, f.err
}

func TestStartFailuresRunNothing(t *testing.T) {
	var nilProfile *fakeWrapper
	for _, tc := range []struct {
		name string
		mod  func(s *Spec)
	}{
		{"missing binary", func(s *Spec) { s.Argv = []string{"/nonexistent/prog"} }},
		{"wrap error", func(s *Spec) { s.Sandbox = &fakeWrapper{err: errors.New("no landlock")} }},
		{"sandbox required, none given", func(s *Spec) { s.RequireSandbox = true }},
		{"sandbox required, typed nil", func(s *Spec) { s.RequireSandbox, s.Sandbox = true, nilProfile }},
		{"no timeout", func(s *Spec) { s.Timeout = 0 }},
		{"no output limit", func(s *Spec) { s.MaxOutput = 0 }},
		{"empty argv", func(s *Spec) { s.Argv = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "ran")
			s := spec(t, "/usr/bin/touch", marker)
			tc.mod(&s)
			r := NewRunner(1)
			if _, err := r.Start(context.Background(), "t", 1, s); err == nil {
				t.Fatal("Start succeeded, want an error")
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the command ran")
			}
			if len(r.Jobs()) != 0 || r.active != 0 {
				t.Error("a failed Start kept its slot")
			}
		})
	}
}

func TestWrapperIsUsed(t *testing.T) {
	fw := &fakeWrapper{w: &Wrapped{Path: "/bin/echo", Args: []string{"echo", "wrapped"}, Env: []string{"W=1"},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}}
	s := spec(t, "/bin/echo", "plain")
	s.Sandbox, s.RequireSandbox = fw, true
	res := run(t, nil, s)
	if got := output(t, res); got != "wrapped\n" {
		t.Errorf("output: got %q, want the wrapped command's", got)
	}
	if strings.Join(fw.gotArgv, " ") != "/bin/echo plain" || strings.Join(fw.gotEnv, " ") != "PATH=/usr/bin:/bin" {
		t.Errorf("Wrap got argv %q env %q", fw.gotArgv, fw.gotEnv)
	}
	if a := fw.w.SysProcAttr; a.Setpgid || a.Pdeathsig != 0 {
		t.Error("the runner modified the Wrapper's SysProcAttr")
	}
}

func TestProcAttrMerge(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *syscall.SysProcAttr
	}{
		{"nil", nil},
		{"namespaces", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS, Noctty: true}},
		{"session", &syscall.SysProcAttr{Setsid: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := procAttr(tc.in)
			if got.Pdeathsig != syscall.SIGKILL {
				t.Errorf("Pdeathsig: got %v, want SIGKILL", got.Pdeathsig)
			}
			if tc.in != nil && tc.in.Setsid {
				if got.Setpgid {
					t.Error("Setpgid set on a session leader, which makes setpgid fail")
				}
			} else if !got.Setpgid || got.Pgid != 0 {
				t.Error("Setpgid not set")
			}
			if tc.in != nil && (got.Cloneflags != tc.in.Cloneflags || got.Noctty != tc.in.Noctty || got.Setsid != tc.in.Setsid) {
				t.Error("the Wrapper's fields were cleared")
			}
			if got == tc.in {
				t.Error("procAttr returned the Wrapper's struct, want a copy")
			}
		})
	}
}

func TestWrittenAndDone(t *testing.T) {
	res := run(t, nil, spec(t, "/usr/bin/head", "-c", "12345", "/dev/zero"))
	if res.OutputBytes != 12345 {
		t.Errorf("OutputBytes: got %d, want 12345", res.OutputBytes)
	}
}

func TestSpecFor(t *testing.T) {
	cmd := &policy.Command{Name: "x", Argv: []string{"/bin/echo", "{v}"}, Timeout: 7 * time.Second, MaxOutput: 99,
		Params: []*policy.Param{{Name: "v", Type: policy.TypeEnum, Values: []string{"a"}}}}
	inv, err := cmd.Bind([]string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	s := SpecFor(inv, "/spool", nil)
	if strings.Join(s.Argv, " ") != "/bin/echo a" || s.Timeout != 7*time.Second || s.MaxOutput != 99 || s.SpoolDir != "/spool" || s.Grace != DefaultGrace || s.Dir != "/" {
		t.Errorf("SpecFor: got %+v", s)
	}
	if !s.RequireSandbox {
		t.Error("a command without sandbox: none must require a sandbox")
	}
	if _, err := NewRunner(1).Start(context.Background(), "x", 1, s); err == nil {
		t.Error("a sandboxed command started without a Wrapper")
	}
	cmd.Sandbox.Disabled = true
	if SpecFor(inv, "", nil).RequireSandbox {
		t.Error("sandbox: none still requires a sandbox")
	}
	if strings.Join(s.Env, " ") != "LANG=C.UTF-8 PATH="+policy.FixedPath {
		t.Errorf("env: got %q", s.Env)
	}
}
