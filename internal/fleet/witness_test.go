package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/control"
	"github.com/relaychat/relay/internal/remote"
	"github.com/relaychat/relay/policy"
)

// The witness's tests: the real relay binary's relay audit witness on
// this side, real sshd and relay serve-ssh --witness (the forced command
// of the witness's own key) on the member's, and a real control socket
// for the notifications. The member's log is changed behind the witness's
// back as an attacker with root on the member would.

var (
	witnessKeyOnce sync.Once
	witnessKeyPath string
	witnessKeyErr  error
)

func witnessKey(t testing.TB) string {
	t.Helper()
	witnessKeyOnce.Do(func() {
		witnessKeyPath = filepath.Join(base, "witness_ed25519")
		witnessKeyErr = keygen(witnessKeyPath, "witness@test")
	})
	must(t, witnessKeyErr)
	return witnessKeyPath
}

// witnessed is a member whose authorized_keys holds the hub's key (plain
// serve-ssh) and the witness's (serve-ssh --witness), each its own line.
func witnessedMember(t *testing.T) *member {
	t.Helper()
	m := newMember(t, "wit", memberOpts{})
	rewriteKeys(t, m,
		`restrict,command="`+relayBin+` serve-ssh --config `+m.cfgPath+` --peer hub-test",from="127.0.0.1" `+readPub(t, hubKey),
		`restrict,command="`+relayBin+` serve-ssh --witness --config `+m.cfgPath+` --peer witness",from="127.0.0.1" `+readPub(t, witnessKey(t)),
	)
	return m
}

// appendRecords writes n records to the member's log as its daemon would
// (root here; the files are given back to the member's account).
func (m *member) appendRecords(t testing.TB, n int, command string) audit.Head {
	t.Helper()
	return m.appendWith(t, n, command, audit.Options{})
}

func (m *member) appendWith(t testing.TB, n int, command string, o audit.Options) audit.Head {
	t.Helper()
	l, err := audit.Open(m.auditDir, o)
	must(t, err)
	for i := 0; i < n; i++ {
		if _, err := l.Append(audit.Record{Type: "request", Outcome: "allowed", Command: command}); err != nil {
			t.Fatal(err)
		}
	}
	h := l.Head()
	must(t, l.Close())
	chownTree(t, filepath.Dir(m.auditDir))
	return h
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	must(t, os.RemoveAll(to))
	must(t, os.MkdirAll(to, 0o700))
	ents, err := os.ReadDir(from)
	must(t, err)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o600))
	}
}

// witnessRun runs relay audit witness with args.
func witnessRun(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runRelay(t, append([]string{"audit", "witness"}, args...)...)
}

// runRelay runs the relay binary with args and returns its exit code and
// output; only a failure to run it at all fails the test.
func runRelay(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(relayBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// notifications is a real relay control socket that keeps what it is sent.
type notifications struct {
	socket string
	got    chan string
}

func listenNotifications(t *testing.T) *notifications {
	t.Helper()
	state, err := os.MkdirTemp(base, "n")
	must(t, err)
	must(t, os.Chmod(state, 0o700))
	t.Cleanup(func() { os.RemoveAll(state) })
	n := &notifications{socket: control.Path(state), got: make(chan string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go control.ServeHandlers(ctx, state, 1<<20, control.Handlers{Notify: func(_ context.Context, msg control.Notification) error {
		n.got <- msg.Text
		return nil
	}})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(n.socket); err == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatal("no control socket")
		}
	}
}

// one returns the notification the last round sent, or "" if none came.
func (n *notifications) one() string {
	select {
	case s := <-n.got:
		return s
	default:
		return ""
	}
}

// witnessStore makes a store pinned to m, its key and identity.
func witnessStore(t *testing.T, m *member, identity string) string {
	t.Helper()
	store := filepath.Join(t.TempDir(), "store")
	pub, err := audit.ReadPublicKey(m.auditDir)
	must(t, err)
	code, out, errOut := witnessRun(t, "--store", store, "--init", "--public-key", pub,
		"--address", account.Username+"@127.0.0.1", "--port", fmt.Sprint(m.port),
		"--host-key", "[127.0.0.1]:1234 "+readPub(t, m.hostKey), "--identity", identity)
	if code != 0 {
		t.Fatalf("init: exit %d %q %q", code, out, errOut)
	}
	return store
}

// witnessSetup is a member witnessed twice: first contact at seq 4 (with
// a backup of its log taken then), extended to seq 9.
func witnessSetup(t *testing.T) (m *member, store, backup string, n *notifications) {
	t.Helper()
	m = witnessedMember(t)
	n = listenNotifications(t)
	if h := m.appendRecords(t, 3, "before"); h.Seq != 4 {
		t.Fatalf("head at seq %d, want 4", h.Seq)
	}
	store = witnessStore(t, m, witnessKey(t))
	code, out, errOut := witnessRun(t, "--store", store, "--notify-socket", n.socket)
	if code != 0 || !strings.Contains(out, "first contact") || !strings.Contains(out, "seq 4 taken on trust") {
		t.Fatalf("first round: exit %d %q %q\n%s", code, out, errOut, m.sshdLog())
	}
	backup = filepath.Join(t.TempDir(), "backup")
	copyDir(t, m.auditDir, backup)
	m.appendRecords(t, 5, "after")
	code, out, errOut = witnessRun(t, "--store", store, "--notify-socket", n.socket)
	if code != 0 || !strings.Contains(out, "extends from seq 4 to seq 9 (5 new record(s) checked)") {
		t.Fatalf("second round: exit %d %q %q", code, out, errOut)
	}
	code, out, _ = witnessRun(t, "--store", store, "--notify-socket", n.socket)
	if code != 0 || !strings.Contains(out, "unchanged at seq 9") {
		t.Fatalf("third round: exit %d %q", code, out)
	}
	if s := n.one(); s != "" {
		t.Fatalf("a notification for a log that passed: %q", s)
	}
	return m, store, backup, n
}

// wantCaught checks a round that must catch the log: exit 1, the kind and
// first bad seq on stderr, the same in the notification received, and
// the evidence kept in the store.
func wantCaught(t *testing.T, store string, n *notifications, kind string, first uint64) {
	t.Helper()
	code, out, errOut := witnessRun(t, "--store", store, "--notify-socket", n.socket)
	at := fmt.Sprintf("%s at seq %d", kind, first)
	if first == 0 {
		at = kind
	}
	if code != 1 || !strings.Contains(errOut, at) || out != "" {
		t.Fatalf("got exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, at)
	}
	if s := n.one(); !strings.Contains(s, "ALERT") || !strings.Contains(s, kind) || (first > 0 && !strings.Contains(s, fmt.Sprintf("at seq %d", first))) {
		t.Errorf("got notification %q, want the alert naming %s", s, at)
	}
	s, err := audit.OpenWitnessStore(store)
	must(t, err)
	defer s.Close()
	rej, err := s.Rejected()
	if err != nil || len(rej) == 0 || string(rej[len(rej)-1].Kind) != kind {
		t.Errorf("got rejected %+v, %v; want the evidence kept", rej, err)
	}
	if cp, _ := s.Latest(); cp.Seq != 9 {
		t.Errorf("the store's newest checkpoint is at seq %d, want 9, as it was", cp.Seq)
	}
}

func TestWitnessCatches(t *testing.T) {
	needHarness(t)
	t.Run("a restored backup", func(t *testing.T) {
		m, store, backup, n := witnessSetup(t)
		// The log and its key state as they were at seq 4: a consistent
		// log, which verifies with K0, and which the member serves.
		copyDir(t, backup, m.auditDir)
		chownTree(t, filepath.Dir(m.auditDir))
		wantCaught(t, store, n, "rollback", 5)
	})
	t.Run("a restored backup that went on", func(t *testing.T) {
		m, store, backup, n := witnessSetup(t)
		copyDir(t, backup, m.auditDir)
		chownTree(t, filepath.Dir(m.auditDir))
		m.appendRecords(t, 8, "forged") // past the witnessed seq 9
		wantCaught(t, store, n, "fork", 5)
	})
	t.Run("a truncated tail", func(t *testing.T) {
		m, store, _, n := witnessSetup(t)
		files := audit.Files(m.auditDir)
		cutAfter(t, files[len(files)-1], 7) // records 8 and 9 are gone
		wantCaught(t, store, n, "rollback", 8)
	})
	t.Run("a forked log", func(t *testing.T) {
		// Records 5-9, witnessed, rewritten: the log re-chained from
		// seq 4 with its own keys and re-signed with its checkpoint key,
		// to the same seq the witness holds.
		m, store, backup, n := witnessSetup(t)
		copyDir(t, backup, m.auditDir)
		chownTree(t, filepath.Dir(m.auditDir))
		if h := m.appendRecords(t, 5, "rewritten"); h.Seq != 9 {
			t.Fatalf("forked head at seq %d, want 9", h.Seq)
		}
		wantCaught(t, store, n, "fork", 5)
	})
	t.Run("a swapped checkpoint key", func(t *testing.T) {
		m, store, _, n := witnessSetup(t)
		if _, err := audit.AddCheckpointKey(m.auditDir, "", nil, true); err != nil {
			t.Fatal(err)
		}
		chownTree(t, filepath.Dir(m.auditDir))
		m.appendRecords(t, 1, "after")
		wantCaught(t, store, n, "bad-signature", 0)
	})
}

// cutAfter truncates an audit file after the record seq, as a cut would.
func cutAfter(t testing.TB, path string, seq uint64) {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	br := bufio.NewReader(f)
	var off int64
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			e, perr := audit.ParseRecord(line)
			must(t, perr)
			if e.Seq > seq {
				break
			}
			off += int64(len(line))
		}
		if err != nil {
			break
		}
	}
	must(t, os.Truncate(path, off))
}

// TestWitnessOverdue: a host that cannot be reached is no round (exit 3),
// and once no round has succeeded for --alert-after, an alert (exit 4).
func TestWitnessOverdue(t *testing.T) {
	m, store, _, n := witnessSetup(t)
	m.stop()
	code, _, errOut := witnessRun(t, "--store", store, "--notify-socket", n.socket)
	if code != 3 || !strings.Contains(errOut, "unreachable") {
		t.Errorf("got exit %d %q, want 3, unreachable", code, errOut)
	}
	if s := n.one(); s != "" {
		t.Errorf("notified %q before --alert-after passed", s)
	}
	code, _, errOut = witnessRun(t, "--store", store, "--notify-socket", n.socket, "--alert-after", "1ms")
	if code != 4 {
		t.Errorf("got exit %d %q, want 4", code, errOut)
	}
	if s := n.one(); !strings.Contains(s, "no successful round") {
		t.Errorf("got notification %q, want the overdue alert", s)
	}
}

// TestWitnessKeysStayApart is the attacker's pair through real sshd: the
// hub's key asking for the audit log, and the witness's key asking to run
// and list. Each is refused with its code; nothing is read, nothing runs.
func TestWitnessKeysStayApart(t *testing.T) {
	m := witnessedMember(t)
	m.appendRecords(t, 2, "before")

	// The hub's key, used as a witness's: its forced command has no
	// --witness.
	store := witnessStore(t, m, hubKey)
	code, out, errOut := witnessRun(t, "--store", store)
	if code != 3 || out != "" || !strings.Contains(errOut, "refused (exit 76)") {
		t.Errorf("hub key asking audit-head: got exit %d %q %q; want 3 and the member's refusal 76", code, out, errOut)
	}
	s, err := audit.OpenWitnessStore(store)
	must(t, err)
	if _, ok := s.Latest(); ok {
		t.Error("the hub's key read a checkpoint")
	}
	s.Close()
	recs := m.records(t)
	if last := recs[len(recs)-1]; last.Outcome != "denied" || !strings.Contains(last.Reason, "audit-head refused") {
		t.Errorf("the member recorded %+v, want the refusal", last)
	}

	// The witness's key, used as a hub's.
	entry := fmt.Sprintf("  %s:\n    address: %s@127.0.0.1\n    port: %d\n    host_key: %q\n    identity: %s\n", m.name, account.Username, m.port, readPub(t, m.hostKey), witnessKey(t))
	h := newHubWith(t, "", entry)
	r := h.call(t, m.name, "mark")
	if r.Kind != KindRefused || !strings.Contains(r.Reason, "witness's key") {
		t.Errorf("witness key asking to run: got %s %q, want refused", r.Kind, r.Reason)
	}
	if m.ran() {
		t.Fatal("the witness's key ran a command")
	}
	l := h.f.List(context.Background(), m.name)
	if l.Kind != KindRefused || l.List != nil {
		t.Errorf("witness key asking to list: got %s %q, want refused", l.Kind, l.Reason)
	}
}

// appendRotating writes n records as appendRecords does, starting a new
// file every few records, so that there are whole files to archive.
func (m *member) appendRotating(t testing.TB, n int, command string) audit.Head {
	t.Helper()
	return m.appendWith(t, n, command, audit.Options{RotateBytes: 2048})
}

// archive runs relay audit archive on the member's log, as its admin
// would, without --force-unwitnessed.
func (m *member) archive(t testing.TB) (code int, stdout, stderr string) {
	t.Helper()
	code, stdout, stderr = runRelay(t, "audit", "archive", "--dir", m.auditDir, "--key", hex.EncodeToString(m.k0),
		"--before", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	chownTree(t, filepath.Dir(m.auditDir))
	return code, stdout, stderr
}

// sendWitnessed sends one audit-witnessed request carrying note to m over
// real ssh with identity, and returns serve-ssh's exit code and stderr.
func sendWitnessed(t *testing.T, m *member, identity string, note []byte) (int, string) {
	t.Helper()
	req, err := (&remote.Request{Op: remote.OpAuditWitnessed, Call: remote.NewCallID(), Note: note}).Encode()
	must(t, err)
	h := &policy.Host{Name: "witness", User: account.Username, Address: "127.0.0.1", Port: m.port, HostKey: readPub(t, m.hostKey), Identity: identity}
	known, err := PinKnownHosts(filepath.Join(t.TempDir(), "known_hosts"), h)
	must(t, err)
	fl := policy.Fleet{SSH: sshPath, ConnectTimeout: 10 * time.Second, AliveInterval: 15 * time.Second, AliveCount: 3}
	argv := SSHArgv(&fl, h, known, req, filepath.Join(t.TempDir(), "ssh.log"))
	cmd := exec.Command(argv[0], argv[1:]...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), errb.String()
}

// signedAt is a checkpoint the member's own checkpoint key signs for any
// seq and hash: what an attacker holding that key, or a forked log of
// the same key, could hand the witness's key to send.
func signedAt(t *testing.T, m *member, seq uint64, h [32]byte) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.auditDir, audit.CheckpointKeyFile))
	must(t, err)
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	must(t, err)
	text := fmt.Sprintf("%s\n%d\n%s\n", s.Name(), seq, base64.StdEncoding.EncodeToString(h[:]))
	msg, err := note.Sign(&note.Note{Text: text}, s)
	must(t, err)
	return msg
}

// TestWitnessTellsHost: a round that stores a checkpoint tells the host
// (audit-witnessed), so that relay audit archive there goes up to the
// witnessed seq without --force-unwitnessed, and refuses to go past it.
func TestWitnessTellsHost(t *testing.T) {
	m := witnessedMember(t)
	first := m.appendRotating(t, 20, "before").Seq
	if code, _, errOut := m.archive(t); code == 0 || !strings.Contains(errOut, "no witness has stored") {
		t.Fatalf("archive before any round: got exit %d %q, want the refusal", code, errOut)
	}
	store := witnessStore(t, m, witnessKey(t))
	code, out, errOut := witnessRun(t, "--store", store)
	if code != 0 || errOut != "" || !strings.Contains(out, "first contact") {
		t.Fatalf("first round: exit %d %q %q", code, out, errOut)
	}
	w, err := audit.LastWitnessed(m.auditDir)
	if err != nil || w.Seq != first {
		t.Fatalf("the host noted %v, %v; want seq %d", w, err, first)
	}
	m.appendRotating(t, 20, "after") // files wholly after the witnessed seq
	code, out, errOut = m.archive(t)
	if code != 0 || !strings.Contains(out, "archived") {
		t.Fatalf("archive after the round: got exit %d %q %q, want it to archive", code, out, errOut)
	}
	var last uint64
	if _, err := fmt.Sscanf(out[strings.Index(out, "records "):], "records 1-%d", &last); err != nil || last > first {
		t.Fatalf("archived %q: want records up to seq %d at most", out, first)
	}
	code, _, errOut = m.archive(t)
	if code == 0 || !strings.Contains(errOut, fmt.Sprintf("last witnessed checkpoint (seq %d)", first)) {
		t.Fatalf("archive past the witnessed seq: got exit %d %q, want the refusal", code, errOut)
	}
	// The next round moves the line: archive follows it.
	if code, out, errOut = witnessRun(t, "--store", store); code != 0 || errOut != "" || !strings.Contains(out, fmt.Sprintf("extends from seq %d", first)) {
		t.Fatalf("second round: exit %d %q %q", code, out, errOut)
	}
	if code, out, errOut = m.archive(t); code != 0 || !strings.Contains(out, "archived") {
		t.Fatalf("archive after the second round: exit %d %q %q", code, out, errOut)
	}
}

// TestWitnessTellFailureKeepsRound: when the host cannot note what was
// witnessed (here its witnessed file is a directory), the round still
// stands: exit 0, the store keeps the checkpoint, a warning says the host
// was not told.
func TestWitnessTellFailureKeepsRound(t *testing.T) {
	m := witnessedMember(t)
	m.appendRecords(t, 3, "before")
	must(t, os.Mkdir(filepath.Join(m.auditDir, audit.WitnessedFile), 0o700))
	chownTree(t, filepath.Dir(m.auditDir))
	store := witnessStore(t, m, witnessKey(t))
	code, out, errOut := witnessRun(t, "--store", store)
	if code != 0 || !strings.Contains(out, "first contact") || !strings.Contains(errOut, "not told") || !strings.Contains(errOut, "exit 71") {
		t.Fatalf("got exit %d %q %q; want 0, the round, and the warning", code, out, errOut)
	}
	s, err := audit.OpenWitnessStore(store)
	must(t, err)
	defer s.Close()
	if cp, ok := s.Latest(); !ok || cp.Seq != 4 {
		t.Errorf("the store holds %v, %v; want seq 4", cp, ok)
	}
}

// TestWitnessRoundLeavesNoMaster: a round's calls share one ssh master,
// and the round ends it: no control socket directory is left in the
// store, and no process still holds one (so no later round, nor anyone
// else, rides on a connection this round checked).
func TestWitnessRoundLeavesNoMaster(t *testing.T) {
	m := witnessedMember(t)
	m.appendRecords(t, 3, "before")
	store := witnessStore(t, m, witnessKey(t))
	for i := 0; i < 2; i++ {
		if code, out, errOut := witnessRun(t, "--store", store); code != 0 || errOut != "" {
			t.Fatalf("round: exit %d %q %q", code, out, errOut)
		}
		m.appendRecords(t, 2, "more")
	}
	left, _ := filepath.Glob(filepath.Join(store, "spool", "mux*"))
	if len(left) > 0 {
		t.Errorf("left in the store: %v", left)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(filepath.Join(store, "spool", "mux"))) {
			t.Errorf("a process still holds the round's master: %s %q", p, b)
		}
	}
}

// TestWitnessedRefusesForgeries is the attacker's table for audit-
// witnessed through real sshd: with the witness's own key, a checkpoint
// signed by another log's key, and one the host's key signed over a seq or
// hash that is not in its log; with the hub's key, a good one. Each is
// refused with its code and the host's noted checkpoint stays as it was.
func TestWitnessedRefusesForgeries(t *testing.T) {
	m := witnessedMember(t)
	m.appendRecords(t, 4, "before")
	store := witnessStore(t, m, witnessKey(t))
	if code, out, errOut := witnessRun(t, "--store", store); code != 0 {
		t.Fatalf("round: exit %d %q %q", code, out, errOut)
	}
	noted, err := os.ReadFile(filepath.Join(m.auditDir, audit.WitnessedFile))
	must(t, err)
	head := m.appendRecords(t, 3, "later")
	var hv [32]byte
	_, err = hex.Decode(hv[:], []byte(head.Hash))
	must(t, err)
	good, err := audit.LatestCheckpoint(m.auditDir)
	must(t, err)
	other := t.TempDir()
	must(t, os.Chmod(other, 0o700))
	_, err = audit.Init(other, nil)
	must(t, err)
	ol, err := audit.Open(other, audit.Options{})
	must(t, err)
	_, err = ol.Append(audit.Record{Type: "request", Outcome: "allowed"})
	must(t, err)
	must(t, ol.Close())
	foreign, err := audit.LatestCheckpoint(other)
	must(t, err)
	flipped := hv
	flipped[0] ^= 1
	for _, c := range []struct {
		name     string
		identity string
		note     []byte
		code     int
	}{
		{"another log's key", witnessKey(t), foreign.Note, remote.ExitNotThisLog},
		{"a seq after the head", witnessKey(t), signedAt(t, m, head.Seq+5, hv), remote.ExitNotThisLog},
		{"a hash not in the log", witnessKey(t), signedAt(t, m, head.Seq, flipped), remote.ExitNotThisLog},
		{"the hub's key", hubKey, good.Note, remote.ExitNotWitness},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, errOut := sendWitnessed(t, m, c.identity, c.note)
			if code != c.code {
				t.Errorf("got exit %d %q, want %d", code, errOut, c.code)
			}
			if b, err := os.ReadFile(filepath.Join(m.auditDir, audit.WitnessedFile)); err != nil || !bytes.Equal(b, noted) {
				t.Errorf("the noted checkpoint changed: %q, %v", b, err)
			}
		})
	}
	// The same good checkpoint with the witness's key is taken.
	if code, errOut := sendWitnessed(t, m, witnessKey(t), good.Note); code != 0 {
		t.Fatalf("a good checkpoint: exit %d %q", code, errOut)
	}
	if w, err := audit.LastWitnessed(m.auditDir); err != nil || w.Seq != head.Seq {
		t.Errorf("noted %v, %v; want seq %d", w, err, head.Seq)
	}
}

// BenchmarkWitnessCatchUp is a witness's cost per 10k new records: each
// iteration appends 10k records to a real member's log, then alternates
// the library-only round (audit.WitnessStore with the host's RecordsSince
// called directly) with the full round (the relay binary, ssh, sshd,
// serve-ssh --witness, the framed stream), each catching up the same
// records on a store of its own, and reports both and their ratio.
//
//	go test -run '^$' -bench WitnessCatchUp -benchtime 3x ./internal/fleet
func BenchmarkWitnessCatchUp(b *testing.B) {
	needHarness(b)
	m := newMember(b, "wbench", memberOpts{})
	rewriteKeys(b, m,
		`restrict,command="`+relayBin+` serve-ssh --witness --config `+m.cfgPath+`",from="127.0.0.1" `+readPub(b, witnessKey(b)))
	pub, err := audit.ReadPublicKey(m.auditDir)
	must(b, err)
	lib, err := audit.CreateWitnessStore(filepath.Join(b.TempDir(), "lib"), pub)
	must(b, err)
	defer lib.Close()
	fetch := func(since uint64) (io.ReadCloser, error) {
		var buf bytes.Buffer
		files, _ := audit.ListFiles(m.auditDir)
		if _, err := audit.RecordsSince(files, since, &buf); err != nil {
			return nil, err
		}
		return io.NopCloser(&buf), nil
	}
	head := func() []byte {
		cp, err := audit.LatestCheckpoint(m.auditDir)
		must(b, err)
		return cp.Note
	}
	store := filepath.Join(b.TempDir(), "store")
	code, out, errOut := witnessRun(b, "--store", store, "--init", "--public-key", pub,
		"--address", account.Username+"@127.0.0.1", "--port", fmt.Sprint(m.port),
		"--host-key", readPub(b, m.hostKey), "--identity", witnessKey(b))
	if code != 0 {
		b.Fatalf("init: %d %s %s", code, out, errOut)
	}
	round := func() {
		if code, out, errOut := witnessRun(b, "--store", store); code != 0 {
			b.Fatalf("round: %d %s %s", code, out, errOut)
		}
	}
	// First contact for both, outside the measurement.
	if _, err := lib.Witness(head(), fetch); err != nil {
		b.Fatal(err)
	}
	round()
	var libTime, sshTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m.appendRecords(b, 10000, "bench")
		b.StartTimer()
		start := time.Now()
		res, err := lib.Witness(head(), fetch)
		if err != nil || res.Records != 10000 {
			b.Fatalf("library round: %+v %v", res, err)
		}
		libTime += time.Since(start)
		start = time.Now()
		round()
		sshTime += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(libTime.Nanoseconds())/float64(b.N), "ns/library-round")
	b.ReportMetric(float64(sshTime.Nanoseconds())/float64(b.N), "ns/ssh-round")
	b.ReportMetric(float64(sshTime)/float64(libTime), "ssh/library")
}
