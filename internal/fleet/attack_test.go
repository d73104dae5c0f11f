package fleet

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/remote"
	"github.com/relaychat/relay/policy"
)

// TestHostKeyChangedUnderTheHub: the member comes back with another host
// key. The call is refused with the fingerprint ssh saw, the request never
// reaches the impostor's relay, and nothing is retried.
func TestHostKeyChangedUnderTheHub(t *testing.T) {
	m := newMember(t, "nas", memberOpts{})
	h := newHub(t, "", m)
	if r := h.call(t, "nas", "hello", "before"); r.Kind != KindOK {
		t.Fatalf("before: %s %q", r.Kind, r.Reason)
	}
	h.f.Close() // the kept connection goes with the old sshd
	m.stop()
	os.Remove(m.hostKey)
	os.Remove(m.hostKey + ".pub")
	must(t, keygen(m.hostKey, "root@impostor"))
	m.start()
	seen := fingerprint(t, m.hostKey)
	before := len(m.records(t))
	r := h.call(t, "nas", "mark")
	if r.Kind != KindHostKey || r.Fingerprint != seen || !strings.Contains(r.Reason, seen) {
		t.Fatalf("got %s %q (fingerprint %q), want a host key mismatch naming %s", r.Kind, r.Reason, r.Fingerprint, seen)
	}
	if m.ran() || len(m.records(t)) != before {
		t.Error("the request reached the member behind the changed key")
	}
	if strings.Count(m.sshdLog(), "Accepted publickey") > 0 {
		t.Error("the hub authenticated to the impostor")
	}
}

func fingerprint(t testing.TB, key string) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", key+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[1]
}

// TestStricterMemberRefuses: the hub sends what its owner typed; the
// member's own policy decides, argument by argument.
func TestStricterMemberRefuses(t *testing.T) {
	m := newMember(t, "nas", memberOpts{})
	h := newHub(t, "", m)
	for _, c := range []struct {
		cmd  string
		args []string
		say  string
	}{
		{"hello", []string{"Hello!"}, "does not match"},
		{"hello", []string{"--version"}, "must not begin with '-'"},
		{"hello", []string{"a", "b"}, "too many arguments"},
		{"mark", []string{"extra"}, "takes no arguments"},
		{"local", nil, "hub: false"},
		{"reboot", nil, `unknown command "reboot"`},
	} {
		r := h.call(t, "nas", c.cmd, c.args...)
		if r.Kind != KindRefused || !strings.Contains(r.Reason, c.say) || r.Ran() {
			t.Errorf("/%s %q: got %s %q, want refused saying %q", c.cmd, c.args, r.Kind, r.Reason, c.say)
		}
	}
	if m.ran() {
		t.Error("a refused command ran")
	}
	// The hub's log says refused, with the member's reason.
	hubRecs := entries(t, hubFiles(h))
	last := hubRecs[len(hubRecs)-1]
	if last.Type != TypeRemoteEnd || last.Outcome != "refused" || !strings.Contains(last.Reason, "unknown command") {
		t.Errorf("hub's last record %+v", last.Record)
	}
	// The positive control: the marker does show a run.
	if r := h.call(t, "nas", "mark"); r.Kind != KindOK || !m.ran() {
		t.Fatalf("mark: %s %q; the marker must show a command that ran", r.Kind, r.Reason)
	}
}

// TestSmuggling sends what a compromised hub would: the member's sshd is
// real, the requests are written by hand.
func TestSmuggling(t *testing.T) {
	m := newMember(t, "nas", memberOpts{})
	h := newHub(t, "", m)
	c := h.f.conns["nas"]
	raw := func(remoteCmd string) (int, string) {
		t.Helper()
		log := filepath.Join(h.dir, "raw.log")
		argv := c.argv(&h.cfg.Fleet, remoteCmd, log, false)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	good, _ := (&remote.Request{Op: remote.OpRun, Call: remote.NewCallID(), Command: "hello", Args: []string{"x"}, MaxOutput: 100}).Encode()
	for name, cmd := range map[string]string{
		"a second command":       good + "; touch " + m.marker,
		"a second command by &&": good + " && touch " + m.marker,
		"a substitution":         good + "$(touch " + m.marker + ")",
		"an option to serve-ssh": good + " --config /etc/passwd",
		"a plain shell line":     "touch " + m.marker,
		"an interactive shell":   "/bin/sh -i",
	} {
		code, out := raw(cmd)
		if code != remote.ExitMalformed || !strings.Contains(out, "relay serve-ssh: malformed request") {
			t.Errorf("%s: got exit %d %q, want %d and the member's refusal", name, code, out, remote.ExitMalformed)
		}
	}
	// Hostile bytes as an argument stay one argv element of the
	// member's template, and no shell sees them.
	hostile := `a; touch ` + m.marker + ` $(id) "q"`
	r := h.call(t, "nas", "echo", hostile)
	if r.Kind != KindOK || output(r) != "["+hostile+"]\n" {
		t.Errorf("got %s %q output %q", r.Kind, r.Reason, output(r))
	}
	if m.ran() {
		t.Fatal("a smuggled command ran on the member")
	}
}

// TestHubKilledMidRun: relay exec --host, the real binary, is killed
// while the member runs the command; the member notices the channel close
// and kills the job, and records it.
func TestHubKilledMidRun(t *testing.T) {
	m := newMember(t, "nas", memberOpts{})
	h := newHub(t, "", m)
	hubCmd := exec.Command(relayBin, "exec", "--config", h.cfgPath, "--host", "nas", "slow", "297")
	hubCmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + h.dir}
	must(t, hubCmd.Start())
	defer hubCmd.Process.Kill()
	// The member's exec_start record says the command runs.
	var call string
	waitFor(t, 30*time.Second, "the member to start the command", func() bool {
		for _, e := range entries(t, fileList(m.auditDir)) {
			if e.Type == "exec_start" && e.Command == "slow" {
				call = e.Call
				return true
			}
		}
		return false
	})
	// The sandbox's trampoline execs the command a moment after the start.
	waitFor(t, 30*time.Second, "the member's command to run", func() bool { return sleepRunning("297") })
	must(t, hubCmd.Process.Signal(syscall.SIGKILL))
	hubCmd.Wait()
	waitFor(t, 30*time.Second, "the member to record the job's end", func() bool {
		for _, e := range entries(t, fileList(m.auditDir)) {
			if e.Type == "exec_end" && e.Call == call {
				return true
			}
		}
		return false
	})
	recs := m.records(t)
	end := recs[len(recs)-1]
	if end.Type != "exec_end" || end.Outcome != "killed" || !strings.Contains(end.Reason, "hub hung up") {
		t.Errorf("member's end record %+v, want killed because the hub hung up", end.Record)
	}
	if sleepRunning("297") {
		t.Error("the member's command outlived the hub")
	}
	// The hub never wrote its end: its log has the request only, and
	// the member's log shows what became of the call.
	var types []string
	for _, e := range entries(t, hubFiles(h)) {
		if e.Call == call {
			types = append(types, string(e.Type))
		}
	}
	if strings.Join(types, ",") != string(TypeRemoteRequest) {
		t.Errorf("hub's records for the call: %v", types)
	}
}

func fileList(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	return files
}

// sleepRunning reports a /bin/sleep ARG process on this machine.
func sleepRunning(arg string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == "/bin/sleep\x00"+arg+"\x00" {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds: the tests wait on real processes.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRepinnedKeyNeverReusesTheOldConnection: the owner finds the pinned
// key was wrong (an impostor's, say) and pins another of the same type.
// A connection ssh keeps open from before must not carry the next call:
// the next call checks the new pin against the server, and here the
// server still shows the old key, so it is refused as a mismatch.
func TestRepinnedKeyNeverReusesTheOldConnection(t *testing.T) {
	m := newMember(t, "nas", memberOpts{})
	h := newHub(t, "", m)
	if r := h.call(t, "nas", "hello", "before"); r.Kind != KindOK {
		t.Fatalf("before: %s %q", r.Kind, r.Reason)
	}
	// Another key of the same type, pinned by a new config in the same
	// state directory, as a reload or relay exec --host would read it;
	// the first Fleet, and its connection, stay up.
	other := filepath.Join(t.TempDir(), "other")
	must(t, keygen(other, "root@other"))
	cfg, err := os.ReadFile(h.cfgPath)
	must(t, err)
	repinned := strings.Replace(string(cfg), readPub(t, m.hostKey), readPub(t, other), 1)
	if repinned == string(cfg) {
		t.Fatal("the host key is not in the config")
	}
	must(t, os.WriteFile(h.cfgPath, []byte(repinned), 0o600))
	c2, err := policy.Load(h.cfgPath)
	must(t, err)
	f2, err := New(c2, Options{})
	must(t, err)
	defer f2.Close()
	before := len(m.records(t))
	r := f2.Call(context.Background(), "nas", "hello", []string{"after"}, CallOptions{Audit: h.audit})
	defer r.Close()
	if r.Kind != KindHostKey {
		t.Fatalf("after re-pinning: got %s %q, want a host key mismatch (the old connection was reused)", r.Kind, r.Reason)
	}
	if len(m.records(t)) != before {
		t.Error("the call reached the member over the connection made under the old pin")
	}
}

// TestCloseSparesCallsInFlight: closing a Fleet (a reload swaps it, relay
// exec --host and the daemon share its connections) ends the connection
// kept for reuse only once its calls are done: a call in flight over it
// finishes.
func TestCloseSparesCallsInFlight(t *testing.T) {
	m := newMember(t, "nas", memberOpts{})
	h := newHub(t, "", m)
	if r := h.call(t, "nas", "hello", "warm"); r.Kind != KindOK { // the kept connection
		t.Fatalf("warm: %s %q", r.Kind, r.Reason)
	}
	done := make(chan *Result, 1)
	go func() {
		done <- h.f.Call(context.Background(), "nas", "slow", []string{"2"}, CallOptions{Audit: h.audit})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !sleepingFor("2") {
		if time.Now().After(deadline) {
			t.Fatal("the member never started the call")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sock := h.f.conns["nas"].controlPath
	if pidsMentioning(sock) == 0 {
		t.Fatal("no ssh master kept the connection to begin with")
	}
	h.f.Close()
	r := <-done
	defer r.Close()
	if r.Kind != KindOK {
		t.Fatalf("a call in flight across Close: got %s %q, want it to finish", r.Kind, r.Reason)
	}
	// Then the master goes: ssh names it by its socket ("ssh: PATH [mux]").
	for deadline := time.Now().Add(20 * time.Second); pidsMentioning(sock) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("ssh's master outlived its last call after Close")
		}
	}
}

func pidsMentioning(s string) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(b), s) {
			n++
		}
	}
	return n
}

// sleepingFor reports whether a sleep(1) of exactly seconds runs.
func sleepingFor(seconds string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(b) == "/bin/sleep\x00"+seconds+"\x00" {
			return true
		}
	}
	return false
}
