package control

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/audit"
)

func TestAuditThroughTheDaemon(t *testing.T) {
	state, l := newDaemonLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	called := 0
	go ServeHandlers(ctx, state, 1<<20, Handlers{Audit: func(_ context.Context, r audit.Record) (audit.Head, error) {
		called++
		return l.Append(r)
	}})
	waitSocket(t, state)

	h, err := Append(ctx, state, audit.Record{Type: "exec_end", Outcome: "ok", Command: "disk", Call: "0123", Peer: "SHA256:x"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != l.Head().Seq || h.MAC != l.Head().MAC || h.Seq != 2 {
		t.Errorf("got head %+v, want the log's %+v at seq 2", h, l.Head())
	}
	// Only a remote call's records pass: a process of the relay's user
	// cannot use the socket to write a login or a checkpoint.
	for _, r := range []audit.Record{
		{Type: "login", Outcome: "ok", Call: "0123"},
		{Type: "exec_end", Outcome: "ok"},
	} {
		if _, err := Append(ctx, state, r); err == nil || !strings.Contains(err.Error(), "only the records of a remote call") {
			t.Errorf("%+v: got %v, want a refusal", r, err)
		}
	}
	if called != 1 {
		t.Errorf("handler called %d times, want once", called)
	}
}

func TestAuditRefusedByAnOlderDaemon(t *testing.T) {
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, state, 1<<20, func(context.Context, Notification) error { return nil })
	waitSocket(t, state)
	_, err := Append(ctx, state, audit.Record{Type: "exec_end", Call: "0123"})
	if err == nil || !strings.Contains(err.Error(), "does not accept audit records") {
		t.Errorf("got %v, want the daemon to refuse audit records it has no handler for", err)
	}
}

// TestCheckpointThroughTheDaemon: serve-ssh --witness gets the head the
// daemon's log holds, signed, and a daemon without the handler says so.
func TestCheckpointThroughTheDaemon(t *testing.T) {
	state, l := newDaemonLog(t)
	if _, err := l.Append(audit.Record{Type: "start", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ServeHandlers(ctx, state, 1<<20, Handlers{Checkpoint: func(context.Context) ([]byte, error) {
		cp, err := l.Checkpoint()
		return cp.Note, err
	}})
	waitSocket(t, state)
	note, err := Checkpoint(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.OpenCheckpoint(note, l.PublicKey())
	if err != nil || cp.Seq != l.Head().Seq || cp.HashHex() != l.Head().Hash {
		t.Errorf("got %v, %v; want the log's head %+v signed", cp, err, l.Head())
	}

	older := t.TempDir()
	go Serve(ctx, older, 1<<20, func(context.Context, Notification) error { return nil })
	waitSocket(t, older)
	if _, err := Checkpoint(ctx, older); err == nil || !strings.Contains(err.Error(), "does not sign checkpoints") {
		t.Errorf("got %v, want a daemon without the handler to refuse", err)
	}
	if _, err := Checkpoint(ctx, t.TempDir()); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("got %v, want ErrNoDaemon", err)
	}
}

// newDaemonLog is a state directory and an open audit log, as a daemon has.
func newDaemonLog(t *testing.T) (state string, l *audit.Log) {
	t.Helper()
	state, logDir := t.TempDir(), t.TempDir()+"/audit"
	if _, err := audit.Init(logDir, nil); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(logDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return state, l
}
