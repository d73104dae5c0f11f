package member

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/control"
	"github.com/relaychat/relay/internal/recorder"
	"github.com/relaychat/relay/internal/remote"
	"github.com/relaychat/relay/policy"
)

// fixture is one member: its config, audit log and a marker file that any
// command that runs creates, so that "nothing ran" is checked on disk.
type fixture struct {
	dir, marker string
	cfg         *policy.Config
	k0          []byte
	rec         *recorder.Recorder
}

func newFixture(t *testing.T, extra string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, marker: filepath.Join(dir, "RAN")}
	src := `member: {}
state_dir: ` + filepath.Join(dir, "state") + `
audit: {dir: ` + filepath.Join(dir, "audit") + `}
limits: {max_concurrent: 2}
` + extra + `
commands:
  echo:
    description: print a word
    argv: [/bin/sh, -c, 'touch "$0"; printf "%s\n" "$1"', ` + f.marker + `, "{word}"]
    params:
      - {name: word, type: string, pattern: "^[a-z]{1,16}$", max_len: 16}
    sandbox: none
  big:
    argv: [/bin/sh, -c, 'touch "$0"; head -c 300000 /dev/zero', ` + f.marker + `]
    sandbox: none
  slow:
    argv: [/bin/sh, -c, 'touch "$0"; sleep 30', ` + f.marker + `]
    sandbox: none
  quiet:
    argv: [/bin/sh, -c, 'touch "$0"; sleep 0.3; echo done', ` + f.marker + `]
    sandbox: none
  local:
    argv: [/bin/sh, -c, 'touch "$0"', ` + f.marker + `]
    hub: false
    sandbox: none
`
	cfg, err := policy.Parse("member.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if f.k0, err = audit.Init(cfg.Audit.Dir, nil); err != nil {
		t.Fatal(err)
	}
	f.rec = &recorder.Recorder{Dir: cfg.Audit.Dir, StateDir: cfg.StateDir}
	return f
}

type served struct {
	code    int
	stdout  []byte
	stderr  string
	output  []byte
	trailer *remote.Trailer
	keep    int
	list    []byte
	decErr  error
}

// serve runs one Serve with env as sshd's environment; during, if set, is
// called with the channel's read end while the command runs.
func (f *fixture) serve(t *testing.T, env map[string]string, o func(*Options)) *served {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	opts := Options{Config: f.cfg, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Stdout: w, Stderr: &stderr, Version: "relay test", Audit: f.rec, Peer: "hub@test"}
	if o != nil {
		o(&opts)
	}
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); io.Copy(&out, r) }()
	s := &served{code: Serve(context.Background(), opts)}
	w.Close()
	wg.Wait()
	r.Close()
	s.stdout, s.stderr = out.Bytes(), stderr.String()
	dec := remote.NewDecoder(remote.Handler{
		Output:    func(p []byte, _ int64) error { s.output = append(s.output, p...); return nil },
		Keepalive: func() error { s.keep++; return nil },
		Trailer:   func(tr *remote.Trailer) error { s.trailer = tr; return nil },
		List:      func(doc []byte) error { s.list = doc; return nil },
	})
	if _, err := dec.Write(s.stdout); err == nil {
		s.decErr = dec.Close()
	} else {
		s.decErr = err
	}
	return s
}

func request(t *testing.T, name string, max int64, args ...string) (string, string) {
	t.Helper()
	r := &remote.Request{Op: remote.OpRun, Call: remote.NewCallID(), Command: name, Args: args, MaxOutput: max}
	s, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s, r.Call.String()
}

func (f *fixture) records(t *testing.T) []audit.Entry {
	t.Helper()
	if _, err := audit.VerifyDir(f.cfg.Audit.Dir, f.k0, nil); err != nil {
		t.Fatalf("member's audit log: %v", err)
	}
	var out []audit.Entry
	lines, err := audit.Summarize(audit.Files(f.cfg.Audit.Dir), audit.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		e, err := audit.ParseRecord(l.Raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestServeRunsAndRecords(t *testing.T) {
	f := newFixture(t, "")
	req, call := request(t, "echo", 1<<20, "hello")
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": req, "SSH_CONNECTION": "192.0.2.7 5555 192.0.2.1 22"}, nil)
	if s.code != remote.ExitRan || s.decErr != nil || s.stderr != "" {
		t.Fatalf("got code %d, stream error %v, stderr %q", s.code, s.decErr, s.stderr)
	}
	if string(s.output) != "hello\n" || s.trailer.Exit != 0 || s.trailer.Bytes != 6 || s.trailer.Sent != 6 {
		t.Errorf("got output %q, trailer %+v", s.output, s.trailer)
	}
	recs := f.records(t)
	var types []string
	for _, e := range recs[1:] {
		types = append(types, string(e.Type)+":"+string(e.Outcome))
		if e.Call != call || e.Peer != "hub@test from 192.0.2.7" {
			t.Errorf("%s record: got call %q peer %q, want %q and the peer", e.Type, e.Call, e.Peer, call)
		}
	}
	if strings.Join(types, " ") != "request:allowed exec_start:ok exec_end:ok" {
		t.Errorf("got records %v, want request, start and end", types)
	}
	last := recs[len(recs)-1]
	if s.trailer.AuditSeq != last.Seq || !strings.HasPrefix(last.MAC, s.trailer.AuditMAC) || last.OutputSHA256 != s.trailer.SHA256 {
		t.Errorf("trailer names head #%d %s, sha %s; the log's end record is #%d %s, sha %s", s.trailer.AuditSeq, s.trailer.AuditMAC, s.trailer.SHA256, last.Seq, last.MAC, last.OutputSHA256)
	}
}

// TestServeRefusesAndRunsNothing: every refusal is one line on stderr, a
// documented code, no frame, and no command run.
func TestServeRefusesAndRunsNothing(t *testing.T) {
	f := newFixture(t, "")
	req := func(name string, args ...string) string { s, _ := request(t, name, 100, args...); return s }
	cases := []struct {
		name string
		env  map[string]string
		code int
		say  string
	}{
		{"interactive login", map[string]string{}, remote.ExitUsage, "SSH_ORIGINAL_COMMAND is not set"},
		{"plain shell command", map[string]string{"SSH_ORIGINAL_COMMAND": "true"}, remote.ExitMalformed, "not a relay request"},
		{"smuggled second command", map[string]string{"SSH_ORIGINAL_COMMAND": req("echo", "hi") + "; touch " + f.marker}, remote.ExitMalformed, "malformed request"},
		{"smuggled option", map[string]string{"SSH_ORIGINAL_COMMAND": req("echo", "hi") + " --config /tmp/evil.yaml"}, remote.ExitMalformed, "malformed request"},
		{"newer hub", map[string]string{"SSH_ORIGINAL_COMMAND": "relay-v2.AAAA"}, remote.ExitVersion, "unsupported request version"},
		{"unknown command", map[string]string{"SSH_ORIGINAL_COMMAND": req("rm")}, remote.ExitUnknown, `unknown command "rm"`},
		{"argument the policy refuses", map[string]string{"SSH_ORIGINAL_COMMAND": req("echo", "$(touch x)")}, remote.ExitArgs, "does not match"},
		{"option as an argument", map[string]string{"SSH_ORIGINAL_COMMAND": req("echo", "--help")}, remote.ExitArgs, "must not begin with '-'"},
		{"too many arguments", map[string]string{"SSH_ORIGINAL_COMMAND": req("echo", "a", "b")}, remote.ExitArgs, "too many arguments"},
		{"not offered to the hub", map[string]string{"SSH_ORIGINAL_COMMAND": req("local")}, remote.ExitNotOffered, "hub: false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := f.serve(t, c.env, nil)
			if s.code != c.code || len(s.stdout) != 0 {
				t.Errorf("got code %d and %d stdout bytes, want %d and none", s.code, len(s.stdout), c.code)
			}
			if !strings.HasPrefix(s.stderr, "relay serve-ssh: ") || !strings.Contains(s.stderr, c.say) || strings.Count(s.stderr, "\n") != 1 {
				t.Errorf("got stderr %q, want one line saying %q", s.stderr, c.say)
			}
			if _, err := os.Stat(f.marker); err == nil {
				t.Fatal("a refused request ran its command")
			}
		})
	}
	// Each refusal of a request is in the member's log, as a denial.
	denied := 0
	for _, e := range f.records(t) {
		if e.Type == "request" && e.Outcome == "denied" && e.Peer != "" {
			denied++
		}
	}
	if denied != len(cases)-1 { // the interactive login is not a request
		t.Errorf("got %d denial records, want %d", denied, len(cases)-1)
	}
}

func TestServeNeedsItsAuditLog(t *testing.T) {
	f := newFixture(t, "")
	os.RemoveAll(f.cfg.Audit.Dir)
	req, _ := request(t, "echo", 100, "hi")
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": req}, nil)
	if s.code != remote.ExitAudit || len(s.stdout) != 0 || !strings.Contains(s.stderr, "audit log unavailable; command not run") {
		t.Errorf("got code %d, %d stdout bytes, stderr %q; want the audit refusal", s.code, len(s.stdout), s.stderr)
	}
	if _, err := os.Stat(f.marker); err == nil {
		t.Fatal("a command ran without its request recorded")
	}
}

func TestServeHubKeys(t *testing.T) {
	f := newFixture(t, "")
	f.cfg.Member.HubKeys = []string{"SHA256:fvCffOV2AHxv8pbq+ywNmYXTyivoBe9Ei7RnJtNSims"}
	auth := filepath.Join(f.dir, "auth")
	// A key that is not the listed one.
	os.WriteFile(auth, []byte("publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMpLJNHU+932ime+EZf037tALTJzRfY498g9E0/pESuk\n"), 0o600)
	req, _ := request(t, "echo", 100, "hi")
	for _, env := range []map[string]string{
		{"SSH_ORIGINAL_COMMAND": req},
		{"SSH_ORIGINAL_COMMAND": req, "SSH_USER_AUTH": auth},
	} {
		s := f.serve(t, env, nil)
		if s.code != remote.ExitPeer || len(s.stdout) != 0 {
			t.Errorf("got code %d, want %d", s.code, remote.ExitPeer)
		}
	}
	if _, err := os.Stat(f.marker); err == nil {
		t.Fatal("ran for a key not in member.hub_keys")
	}
	pub := "AAAAC3NzaC1lZDI1NTE5AAAAIMpLJNHU+932ime+EZf037tALTJzRfY498g9E0/pESuk"
	f.cfg.Member.HubKeys = []string{fingerprintOf(t, pub)}
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": req, "SSH_USER_AUTH": auth}, nil)
	if s.code != remote.ExitRan {
		t.Fatalf("got %d %q, want the listed key served", s.code, s.stderr)
	}
	recs := f.records(t)
	if p := recs[len(recs)-1].Peer; !strings.HasPrefix(p, f.cfg.Member.HubKeys[0]+" ") {
		t.Errorf("got peer %q, want the key's fingerprint first", p)
	}
}

func TestServeBusy(t *testing.T) {
	f := newFixture(t, "")
	var held slots
	defer held.release()
	if err := held.take(filepath.Join(f.cfg.StateDir, "slots"), "cmd-echo", 1, "busy"); err != nil {
		t.Fatal(err)
	}
	req, _ := request(t, "echo", 100, "hi")
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": req}, nil)
	if s.code != remote.ExitBusy || !strings.Contains(s.stderr, "already running on this member") {
		t.Errorf("got %d %q, want busy", s.code, s.stderr)
	}
	if _, err := os.Stat(f.marker); err == nil {
		t.Fatal("ran over the command's concurrency limit")
	}
}

func TestServeCapsOutputToTheHub(t *testing.T) {
	f := newFixture(t, "")
	req, _ := request(t, "big", 1000)
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": req}, nil)
	if s.code != remote.ExitRan || s.decErr != nil {
		t.Fatalf("got %d, %v, %q", s.code, s.decErr, s.stderr)
	}
	if len(s.output) != 1000 || s.trailer.Sent != 1000 || s.trailer.Bytes != 300000 || s.trailer.Kept != 300000 {
		t.Errorf("got %d output bytes and trailer %+v; want 1000 sent of 300000", len(s.output), s.trailer)
	}
}

func TestServeKeepsAlive(t *testing.T) {
	f := newFixture(t, "")
	req, _ := request(t, "quiet", 100)
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": req}, func(o *Options) { o.Keepalive = 50 * time.Millisecond })
	if s.code != remote.ExitRan || s.keep == 0 || string(s.output) != "done\n" {
		t.Errorf("got code %d, %d keepalives, output %q; want keepalives while silent", s.code, s.keep, s.output)
	}
}

// TestHangupKillsTheJob: the channel's reader goes away while the command
// runs; the member kills it and records why, without writing a frame more.
func TestHangupKillsTheJob(t *testing.T) {
	f := newFixture(t, "")
	req, call := request(t, "slow", 100)
	r, w, _ := os.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- Serve(context.Background(), Options{Config: f.cfg, Lookup: func(k string) (string, bool) {
			if k == "SSH_ORIGINAL_COMMAND" {
				return req, true
			}
			return "", false
		}, Stdout: w, Stderr: &stderr, Version: "t", Audit: f.rec,
			// No keepalive writes: the hangup itself must be noticed.
			Keepalive: time.Hour})
	}()
	// Wait for the hello: the command is running.
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(r, hdr); err != nil {
		t.Fatal(err)
	}
	r.Close() // the hub is gone
	code := <-done
	w.Close()
	if code != remote.ExitFailed || !strings.Contains(stderr.String(), "hung up") {
		t.Errorf("got %d %q, want the hangup noticed", code, stderr.String())
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("the job ran on for %v after the hangup", el)
	}
	recs := f.records(t)
	end := recs[len(recs)-1]
	if end.Type != "exec_end" || end.Outcome != "killed" || end.Call != call || !strings.Contains(end.Reason, "hub hung up") {
		t.Errorf("got last record %+v, want the job's end as killed by the hangup", end.Record)
	}
}

func TestList(t *testing.T) {
	f := newFixture(t, "")
	s, _ := (&remote.Request{Op: remote.OpList, Call: remote.NewCallID()}).Encode()
	got := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": s}, nil)
	if got.code != remote.ExitRan || got.decErr != nil {
		t.Fatalf("got %d, %v", got.code, got.decErr)
	}
	l, err := remote.ParseList(got.list)
	if err != nil {
		t.Fatal(err)
	}
	if l.Lookup("local") != nil || l.Lookup("echo") == nil || l.Lookup("echo").Usage != "/echo <word: text, max 16 bytes>" || l.Version != "relay test" {
		t.Errorf("got list %+v, want every command but the hub: false one", l)
	}
	if l.Digest != Offer(f.cfg, "x").Digest {
		t.Error("the digest depends on the version string; it must pin the commands only")
	}
}

func fingerprintOf(t *testing.T, b64 string) string {
	t.Helper()
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return policy.KeyFingerprint(blob)
}

// TestServeSandboxUnavailable: a sandboxed command this member cannot
// enforce (as root, without its command user) is refused with its own
// code, and does not run unsandboxed.
func TestServeSandboxUnavailable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a member running as root without its command_user is the case here")
	}
	f := newFixture(t, `command_user: relay-test-no-such-user`)
	f.cfg.Commands = append(f.cfg.Commands, sandboxedEcho(t, f))
	req, _ := request(t, "boxed", 100)
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": req}, nil)
	if s.code != remote.ExitSandbox || len(s.stdout) != 0 || !strings.Contains(s.stderr, "sandbox unavailable") {
		t.Errorf("got %d %q", s.code, s.stderr)
	}
	if _, err := os.Stat(f.marker); err == nil {
		t.Fatal("a command whose sandbox is unavailable ran")
	}
}

func sandboxedEcho(t *testing.T, f *fixture) *policy.Command {
	t.Helper()
	cfg, err := policy.Parse("x.yaml", []byte(`member: {}
state_dir: `+f.cfg.StateDir+`
audit: {dir: `+f.cfg.Audit.Dir+`}
commands:
  boxed:
    argv: [/usr/bin/touch, `+f.marker+`]
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Lookup("boxed")
}

// daemon stands in for a relay daemon on the member: it holds the audit
// log and serves the control socket, with or without the audit op.
func (f *fixture) daemon(t *testing.T, withAudit bool) *audit.Log {
	t.Helper()
	l, err := audit.Open(f.cfg.Audit.Dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hs := control.Handlers{Notify: func(context.Context, control.Notification) error { return nil }}
	if withAudit {
		hs.Audit = func(_ context.Context, r audit.Record) (audit.Head, error) { return l.Append(r) }
	}
	go control.ServeHandlers(ctx, f.cfg.StateDir, 1<<20, hs)
	t.Cleanup(func() { cancel(); l.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(control.Path(f.cfg.StateDir)); err == nil {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatal("no control socket")
		}
		time.Sleep(5 * time.Millisecond) // a goroutine starting to listen
	}
}

// TestServeThroughTheDaemon: with a daemon holding the member's log, the
// records go through its socket into its chain.
func TestServeThroughTheDaemon(t *testing.T) {
	f := newFixture(t, "")
	l := f.daemon(t, true)
	req, call := request(t, "echo", 100, "hi")
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": req}, nil)
	if s.code != remote.ExitRan || s.trailer == nil {
		t.Fatalf("got %d %q", s.code, s.stderr)
	}
	if h := l.Head(); s.trailer.AuditSeq != h.Seq || !strings.HasPrefix(h.MAC, s.trailer.AuditMAC) || h.Seq != 4 {
		t.Errorf("trailer names #%d, the daemon's head is #%d", s.trailer.AuditSeq, h.Seq)
	}
	l.Close()
	recs := f.records(t)
	if recs[3].Type != "exec_end" || recs[3].Call != call {
		t.Errorf("got %+v", recs[3].Record)
	}
}

// TestServeThroughAnOlderDaemon: a daemon that does not take records
// means no record, so nothing runs.
func TestServeThroughAnOlderDaemon(t *testing.T) {
	f := newFixture(t, "")
	f.daemon(t, false)
	req, _ := request(t, "echo", 100, "hi")
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": req}, nil)
	if s.code != remote.ExitAudit || len(s.stdout) != 0 || !strings.Contains(s.stderr, "does not accept audit records") {
		t.Errorf("got %d %q", s.code, s.stderr)
	}
	if _, err := os.Stat(f.marker); err == nil {
		t.Fatal("ran without a record")
	}
}
