package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/control"
	"github.com/relaychat/relay/internal/recorder"
	"github.com/relaychat/relay/internal/remote"
)

// waitControl waits until the daemon's control socket exists.
func (h *harness) waitControl() {
	h.t.Helper()
	h.waitFor("the control socket", func() bool {
		_, err := os.Stat(control.Path(filepath.Join(h.dir, "state")))
		return err == nil
	})
}

// TestRemoteRecordsThroughTheDaemon: while the daemon holds the audit
// log, relay serve-ssh and relay exec --host append through its control
// socket (internal/recorder finds it), into the daemon's one chain; what
// the control socket does not take is refused and leaves the log as it
// was, and the bot token in another process's record is redacted, as in
// the daemon's own.
func TestRemoteRecordsThroughTheDaemon(t *testing.T) {
	h := newHarness(t, hopts{})
	h.waitControl()
	rec := &recorder.Recorder{Dir: filepath.Join(h.dir, "audit"), StateDir: filepath.Join(h.dir, "state")}
	ctx := ctxT(t)
	call := remote.NewCallID().String()
	head, err := rec.Record(ctx, audit.Record{Type: "remote_request", Outcome: "allowed", Host: "nas", Command: "disk", Call: call})
	if err != nil {
		t.Fatalf("a remote call's record: %v", err)
	}
	if got := h.d.audit.Head(); head.Seq != got.Seq || head.MAC != got.MAC {
		t.Errorf("the recorder got head #%d, the daemon's log is at #%d", head.Seq, got.Seq)
	}
	if n := len(h.find("type", "remote_request", "call", call)); n != 1 {
		t.Fatalf("the record is %d times in the daemon's log, want once", n)
	}

	before := h.d.audit.Head().Seq
	for name, r := range map[string]audit.Record{
		"a record of another type": {Type: "login", Outcome: "login_ok", Call: call},
		"a record of no call":      {Type: "exec_end", Outcome: "ok"},
	} {
		if _, err := rec.Record(ctx, r); err == nil {
			t.Errorf("%s: appended, want it refused", name)
		}
	}
	if after := h.d.audit.Head().Seq; after != before {
		t.Errorf("the log went from #%d to #%d on refused records", before, after)
	}
	if _, err := rec.Record(ctx, audit.Record{Type: "remote_end", Outcome: "ok", Call: call, Detail: "leak " + testToken}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.auditText(), testToken) || len(h.find("type", "remote_end", "redacted", "true")) != 1 {
		t.Error("the bot token in a remote record is not redacted")
	}
}

// TestStartWaitsForTheAuditLog: another relay process holding the log
// for a moment (serve-ssh's one batch) delays the daemon's start, on the
// daemon's clock, instead of failing it.
func TestStartWaitsForTheAuditLog(t *testing.T) {
	var held *audit.Log
	sleeps := 0
	h := newHarness(t, hopts{
		before: func(h *harness) {
			var err error
			if held, err = audit.Open(filepath.Join(h.dir, "audit"), audit.Options{}); err != nil {
				t.Fatal(err)
			}
		},
		options: func(h *harness, o *Options) {
			o.Sleep = func(d time.Duration) {
				h.clk.Add(d)
				if sleeps++; sleeps == 3 {
					held.Close()
				}
			}
		},
	})
	if sleeps != 3 {
		t.Errorf("the daemon started after %d pauses, want 3 (the third released the log)", sleeps)
	}
	h.login()
}

// TestStartGivesUpOnAHeldLog: a log that stays held is an error after
// AuditWait, saying so; the daemon does not start without its log.
func TestStartGivesUpOnAHeldLog(t *testing.T) {
	h := newHarness(t, hopts{})
	if err := h.shutdown(); err != nil {
		t.Fatal(err)
	}
	held, err := audit.Open(filepath.Join(h.dir, "audit"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	start := h.clk.Now()
	h.o.options = func(h *harness, o *Options) {
		o.AuditWait = 3 * time.Second
		o.Sleep = func(d time.Duration) { h.clk.Add(d) }
	}
	_, err = h.newDaemon()
	if !errors.Is(err, ErrAuditUnavailable) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("got %v, want the audit log unavailable, in use", err)
	}
	if waited := h.clk.Now().Sub(start); waited < 3*time.Second || waited > 4*time.Second {
		t.Errorf("gave up after %s on the daemon's clock, want about 3s", waited)
	}
}
