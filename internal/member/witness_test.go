package member

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/remote"
)

func auditRequest(t *testing.T, op remote.Op, since uint64) string {
	t.Helper()
	s, err := (&remote.Request{Op: op, Call: remote.NewCallID(), Since: since}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// decodeAudit reads a witness answer: the checkpoint, or the record lines
// and the end count.
func decodeAudit(t *testing.T, b []byte) (note, lines []byte, end uint64, err error) {
	t.Helper()
	end = ^uint64(0)
	dec := remote.NewDecoder(remote.Handler{
		Checkpoint: func(n []byte) error { note = n; return nil },
		Audit:      func(p []byte) error { lines = append(lines, p...); return nil },
		End:        func(n uint64) error { end = n; return nil },
	})
	if _, err := dec.Write(b); err != nil {
		return nil, nil, 0, err
	}
	return note, lines, end, dec.Close()
}

// TestServeWitness: the witness's key gets the log's head, signed as of
// its call, and the record lines after a seq; a witness round on them
// passes. Nothing is written to the log by serving them.
func TestServeWitness(t *testing.T) {
	f := newFixture(t, "")
	for i := 0; i < 5; i++ {
		if _, err := f.rec.Record(context.Background(), audit.Record{Type: "request", Outcome: "allowed", Call: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	witness := func(o *Options) { o.Witness, o.Checkpoint = true, f.rec }
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": auditRequest(t, remote.OpAuditHead, 0)}, witness)
	note, _, _, err := decodeAudit(t, s.stdout)
	if s.code != remote.ExitRan || err != nil {
		t.Fatalf("audit-head: got code %d (%s), %v", s.code, s.stderr, err)
	}
	pub, _ := audit.ReadPublicKey(f.cfg.Audit.Dir)
	cp, err := audit.OpenCheckpoint(note, pub)
	if err != nil || cp.Seq != 6 {
		t.Fatalf("audit-head: got %v, %v; want seq 6 signed", cp, err)
	}
	s = f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": auditRequest(t, remote.OpAuditSince, 3)}, witness)
	_, lines, end, err := decodeAudit(t, s.stdout)
	if s.code != remote.ExitRan || err != nil || end != 3 || bytes.Count(lines, []byte("\n")) != 3 {
		t.Fatalf("audit-since 3: got code %d (%s), %v, %d lines, end %d; want 3", s.code, s.stderr, err, bytes.Count(lines, []byte("\n")), end)
	}
	var want bytes.Buffer
	audit.RecordsSince(audit.Files(f.cfg.Audit.Dir), 3, &want)
	if !bytes.Equal(lines, want.Bytes()) {
		t.Error("audit-since did not serve the log's own lines")
	}
	s = f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": auditRequest(t, remote.OpAuditSince, 6)}, witness)
	if _, lines, end, err := decodeAudit(t, s.stdout); s.code != remote.ExitRan || err != nil || end != 0 || len(lines) != 0 {
		t.Errorf("audit-since the head: got code %d, %v, %d bytes, end %d; want an empty answer", s.code, err, len(lines), end)
	}
	if n := len(f.records(t)); n != 6 {
		t.Errorf("the log holds %d records, want 6: serving the witness wrote to it", n)
	}
}

// TestServeKeysStayApart is the attacker's pair: the hub's key (no
// --witness) asking for the audit log, and the witness's key asking to
// run or list. Each is refused with its own code, no frame is written,
// nothing runs, and the refusal is recorded.
func TestServeKeysStayApart(t *testing.T) {
	f := newFixture(t, "")
	run, _ := request(t, "echo", 100, "hi")
	list, _ := (&remote.Request{Op: remote.OpList, Call: remote.NewCallID()}).Encode()
	witness := func(o *Options) { o.Witness, o.Checkpoint = true, f.rec }
	hub := func(o *Options) { o.Checkpoint = f.rec }
	for _, c := range []struct {
		name string
		req  string
		o    func(*Options)
		code int
	}{
		{"hub key asks audit-head", auditRequest(t, remote.OpAuditHead, 0), hub, remote.ExitNotWitness},
		{"hub key asks audit-since", auditRequest(t, remote.OpAuditSince, 0), hub, remote.ExitNotWitness},
		{"hub key sends audit-witnessed", witnessedRequest(t, headNote(t, f)), hub, remote.ExitNotWitness},
		{"witness key asks to run", run, witness, remote.ExitWitnessOnly},
		{"witness key asks to list", list, witness, remote.ExitWitnessOnly},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(f.records(t))
			s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": c.req}, c.o)
			if s.code != c.code || len(s.stdout) != 0 || strings.Count(s.stderr, "\n") != 1 {
				t.Fatalf("got code %d, %d stdout bytes, stderr %q; want code %d, nothing sent, one line", s.code, len(s.stdout), s.stderr, c.code)
			}
			recs := f.records(t)
			if len(recs) != before+1 || recs[len(recs)-1].Outcome != "denied" {
				t.Errorf("got %d new records, want the refusal recorded", len(recs)-before)
			}
		})
	}
	if f.ran() {
		t.Fatal("the witness's key ran a command")
	}
}

func witnessedRequest(t *testing.T, note []byte) string {
	t.Helper()
	s, err := (&remote.Request{Op: remote.OpAuditWitnessed, Call: remote.NewCallID(), Note: note}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func headNote(t *testing.T, f *fixture) []byte {
	t.Helper()
	cp, err := audit.LatestCheckpoint(f.cfg.Audit.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Note
}

// TestServeWitnessed: the witness's key notes a checkpoint of this log
// beside it and gets it back; a checkpoint of another log (its own key) is
// refused with ExitNotThisLog, sends nothing and leaves the noted one as
// it was. Nothing is written to the log.
func TestServeWitnessed(t *testing.T) {
	f := newFixture(t, "")
	for i := 0; i < 3; i++ {
		if _, err := f.rec.Record(context.Background(), audit.Record{Type: "request", Outcome: "allowed", Call: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	witness := func(o *Options) { o.Witness, o.Checkpoint = true, f.rec }
	note := headNote(t, f)
	s := f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": witnessedRequest(t, note)}, witness)
	got, _, _, err := decodeAudit(t, s.stdout)
	if s.code != remote.ExitRan || err != nil || !bytes.Equal(got, note) {
		t.Fatalf("audit-witnessed: got code %d (%s), %v, note %q", s.code, s.stderr, err, got)
	}
	if w, err := audit.LastWitnessed(f.cfg.Audit.Dir); err != nil || w.Seq != 4 {
		t.Fatalf("noted %v, %v; want seq 4", w, err)
	}
	other := newFixture(t, "")
	if _, err := other.rec.Record(context.Background(), audit.Record{Type: "request", Outcome: "allowed", Call: "c"}); err != nil {
		t.Fatal(err)
	}
	s = f.serve(t, map[string]string{"SSH_ORIGINAL_COMMAND": witnessedRequest(t, headNote(t, other))}, witness)
	if s.code != remote.ExitNotThisLog || len(s.stdout) != 0 || !strings.Contains(s.stderr, "not a checkpoint of this log") {
		t.Errorf("another log's checkpoint: got code %d, %d bytes, %q; want %d, nothing sent", s.code, len(s.stdout), s.stderr, remote.ExitNotThisLog)
	}
	if w, err := audit.LastWitnessed(f.cfg.Audit.Dir); err != nil || w.Seq != 4 {
		t.Errorf("after the refusal: noted %v, %v; want seq 4, as it was", w, err)
	}
	if n := len(f.records(t)); n != 4 {
		t.Errorf("the log holds %d records, want 4", n)
	}
}

func (f *fixture) ran() bool {
	_, err := os.Stat(f.marker)
	return err == nil
}
