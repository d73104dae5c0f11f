package e2e

import (
	"os"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFirstCommandHasItsJobCgroup: the relay sets up job cgroups in the
// background while it starts; the very first command after start must
// still run in a cgroup of its own, beside the relay's (not in it), and so
// must the next, from a trampoline started ahead. Seen from the host: the
// command's cgroup v2 path.
func TestFirstCommandHasItsJobCgroup(t *testing.T) {
	if jobCgroups(t) == nil {
		t.Skip("no cgroup v2 the tests can delegate (needs root and a cgroup2 mount)")
	}
	const marker = "31.41592"
	r := startRelay(t, options{commands: `  nap:
    argv: [/bin/sleep, "` + marker + `"]
    timeout: 1m
`})
	r.login()
	var relayCg string
	for i := range 2 {
		r.say("/nap")
		var pid int
		waitUntil(t, "the command running", func() bool {
			pids := pidsWithArg(marker)
			if len(pids) == 1 {
				pid = pids[0]
			}
			return pid != 0
		})
		// The relay has moved itself into a leaf of its cgroup by now.
		relayCg = cgroupOf(t, r.cmd.Process.Pid)
		cg := cgroupOf(t, pid)
		if cg == relayCg || path.Dir(cg) != path.Dir(relayCg) {
			t.Errorf("command %d runs in cgroup %s; the relay is in %s: want a job cgroup of its own beside the relay's", i+1, cg, relayCg)
		}
		r.say("/kill j" + strconv.Itoa(i+1))
		// The result says the job has ended and its slot is free; the
		// process leaving /proc comes before that, and a /nap sent then
		// is refused as already running.
		r.expect("/nap · killed")
		waitUntil(t, "the command gone", func() bool { return len(pidsWithArg(marker)) == 0 })
	}
}

// cgroupOf is pid's cgroup v2 path, as the host sees it.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	t.Fatalf("pid %d has no cgroup v2 path:\n%s", pid, b)
	return ""
}

// pidsWithArg lists the live processes with arg in their command line.
func pidsWithArg(arg string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(b), "\x00"+arg) {
			continue
		}
		if st, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); strings.Contains(string(st), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// waitUntil polls cond, a state another process reaches by itself, for
// up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
