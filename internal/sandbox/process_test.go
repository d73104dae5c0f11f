package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/policy"
)

// procSession returns the session id of pid, or -1 if it is gone.
func procSession(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 4 || f[0] == "Z" {
		return -1
	}
	sid, _ := strconv.Atoi(f[3])
	return sid
}

// eventually polls cond; the deadline is only a hang guard.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestForkBombContained(t *testing.T) {
	const procs = 20
	bomb := `(i=0; while [ $i -lt 2000 ]; do /bin/sleep 1000 & i=$((i+1)); done) 2>/dev/null; echo done; exec /bin/sleep 1000`
	{
		{
			p := newProfile(t, policy.Sandbox{Procs: procs}, Options{})
			cmd := command(t, p, sh(bomb), nil)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			killed := false
			kill := func() {
				if !killed {
					killed = true
					syscall.Kill(-pid, syscall.SIGKILL) // what the runner does on timeout
					cmd.Wait()
				}
			}
			defer kill()
			nsLink, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
			// The trampoline's init counts against the limit too.
			count := func() int { return len(nsProcs(t, nsLink)) - 1 }
			waitLine(t, out, "done")

			n := count()
			if n > procs {
				t.Errorf("got %d processes in the sandbox, want at most %d", n, procs)
			}
			if os.Geteuid() == 0 && n < procs/2 {
				t.Errorf("got %d processes in the sandbox: the bomb never reached its limit of %d", n, procs)
			}
			if err := exec.Command("/bin/true").Run(); err != nil {
				t.Errorf("the relay cannot start a process while the bomb is contained: %v", err)
			}

			kill()
			eventually(t, "every process of the bomb is dead", func() bool { return len(nsProcs(t, nsLink)) == 0 })
		}
	}
}

// TestEscapeesDie: a setsid child and a double fork leave the command's
// session and process group, and still die with the job: when the runner
// kills it (a timeout, /kill, /lock), and when the command exits by itself.
func TestEscapeesDie(t *testing.T) {
	for _, how := range []string{"killed", "exits"} {
		t.Run(how, func(t *testing.T) { testEscapeesDie(t, how) })
	}
}

func testEscapeesDie(t *testing.T, how string) {
	p := newProfile(t, policy.Sandbox{}, Options{})
	last := `exec /bin/sleep 1000`
	if how == "exits" {
		last = `read line; exit 0`
	}
	cmd := command(t, p, sh(`(/usr/bin/setsid /bin/sleep 1000 &); ( (/bin/sleep 1000 &) & ); echo started; `+last), nil)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { syscall.Kill(-pid, syscall.SIGKILL); cmd.Wait() }()
	nsLink, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "started")

	// Find the child that escaped the session, and the double-forked one
	// whose parent is gone.
	escaped, orphans := 0, 0
	eventually(t, "the setsid child and the orphan are running", func() bool {
		escaped, orphans = 0, 0
		for _, q := range nsProcs(t, nsLink) {
			if s := procSession(q); s != -1 && s != procSession(pid) {
				escaped = q
			}
			if procParent(q) == pid && procComm(q) == "sleep" {
				orphans++
			}
		}
		return escaped != 0 && orphans >= 1
	})

	if how == "killed" {
		// The timeout: the runner kills the process group.
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	} else {
		stdin.Close()
	}
	cmd.Wait()
	eventually(t, "every process of the job is dead", func() bool {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", escaped))
		return l != nsLink && len(nsProcs(t, nsLink)) == 0
	})
}

// procParent returns the parent pid of pid, or -1 if it is gone.
func procParent(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return -1
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func procComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}
