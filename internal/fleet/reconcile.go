package fleet

import (
	"fmt"
	"strings"

	"github.com/relaychat/relay/internal/audit"
)

// Reconciliation is what a cross-check of the hub's log against one
// member's found. Every remote call the hub recorded for the host falls in
// exactly one count, or is a problem.
type Reconciliation struct {
	Host string
	// Calls is the number of the hub's remote_end records for Host.
	Calls int
	// Found: the member's end record is where the hub's record says (the
	// seq and MAC prefix of the trailer), for the same call, command,
	// exit status and output digest.
	Found int
	// Refused: the member refused the call before running it, and its log
	// holds that refusal under the call's ID.
	Refused int
	// Cut: the hub cut the call (its timeout, a lost connection) and the
	// member's log holds the call's records.
	Cut int
	// Unreached: the call never reached the member's relay (unreachable,
	// host key, the hub's own failure), or its audit log was unavailable;
	// there is nothing to find.
	Unreached int
	// Open: remote_request records with no remote_end (the hub stopped
	// mid-call); informational.
	Open int
	// Problems: each call the member's log lacks or contradicts.
	Problems []string
}

func (r *Reconciliation) String() string {
	s := fmt.Sprintf("%s: %d remote calls in the hub's log: %d found in the member's log as recorded, %d refused there, %d cut by the hub, %d never reached it",
		r.Host, r.Calls, r.Found, r.Refused, r.Cut, r.Unreached)
	if r.Open > 0 {
		s += fmt.Sprintf("; %d without an end on the hub", r.Open)
	}
	if len(r.Problems) > 0 {
		s += fmt.Sprintf("; %d PROBLEMS", len(r.Problems))
	}
	return s
}

// Reconcile checks that every remote call the hub's log records for host
// is in the member's log as recorded. It reads both logs without
// verifying them: verify each chain first (audit.Verify), then this
// proves the two agree.
func Reconcile(hubFiles []string, host string, memberFiles []string) (*Reconciliation, error) {
	bySeq := map[uint64]audit.Entry{}
	byCall := map[string][]audit.Entry{}
	err := audit.Scan(memberFiles, audit.Filter{}, func(l audit.Line) error {
		if l.Raw == nil {
			return nil
		}
		e, err := audit.ParseRecord(l.Raw)
		if err != nil {
			return nil
		}
		bySeq[e.Seq] = e
		if e.Call != "" {
			byCall[e.Call] = append(byCall[e.Call], e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the member's log: %w", err)
	}
	rc := &Reconciliation{Host: host}
	requested := map[string]bool{}
	ended := map[string]bool{}
	err = audit.Scan(hubFiles, audit.Filter{Types: []string{string(TypeRemoteRequest), string(TypeRemoteEnd)}}, func(l audit.Line) error {
		if l.Raw == nil {
			return nil
		}
		e, err := audit.ParseRecord(l.Raw)
		if err != nil || e.Host != host {
			return nil
		}
		if e.Type == TypeRemoteRequest {
			requested[e.Call] = true
			return nil
		}
		ended[e.Call] = true
		rc.Calls++
		rc.check(e, bySeq, byCall[e.Call])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the hub's log: %w", err)
	}
	for c := range requested {
		if !ended[c] {
			rc.Open++
		}
	}
	return rc, nil
}

func (rc *Reconciliation) check(e audit.Entry, bySeq map[uint64]audit.Entry, member []audit.Entry) {
	what := fmt.Sprintf("call %s (/%s, hub #%d, %s)", e.Call, e.Command, e.Seq, e.Time.UTC().Format("2006-01-02 15:04:05Z"))
	problem := func(format string, a ...any) {
		rc.Problems = append(rc.Problems, what+": "+fmt.Sprintf(format, a...))
	}
	if e.RemoteSeq != 0 {
		m, ok := bySeq[e.RemoteSeq]
		var diffs []string
		switch {
		case !ok:
			problem("the member's log has no record #%d", e.RemoteSeq)
			return
		case !strings.HasPrefix(m.MAC, e.RemoteMAC) || e.RemoteMAC == "":
			diffs = append(diffs, "its MAC is not the one the member reported")
		}
		if m.Type != audit.KindExecEnd {
			diffs = append(diffs, "it is a "+string(m.Type)+" record")
		}
		if m.Call != e.Call {
			diffs = append(diffs, "it is another call's")
		}
		if m.Command != e.Command {
			diffs = append(diffs, fmt.Sprintf("it is /%s", m.Command))
		}
		if m.OutputSHA256 != e.OutputSHA256 {
			diffs = append(diffs, "its output digest differs")
		}
		if (m.Exit == nil) != (e.Exit == nil) || (m.Exit != nil && *m.Exit != *e.Exit) {
			diffs = append(diffs, "its exit status differs")
		}
		if len(diffs) > 0 {
			problem("the member's record #%d does not match: %s", e.RemoteSeq, strings.Join(diffs, ", "))
			return
		}
		rc.Found++
		return
	}
	switch Kind(e.Outcome) {
	case KindRefused, KindSandbox:
		for _, m := range member {
			if m.Type == audit.KindRequest && m.Outcome == audit.OutcomeDenied {
				rc.Refused++
				return
			}
		}
		problem("the hub says the member refused it (%s), and the member's log has no refusal of it", e.Reason)
	case KindTimeout, KindCanceled, KindUnreachable, KindProtocol:
		if len(member) > 0 {
			rc.Cut++
			return
		}
		rc.Unreached++
	default:
		// host_key, auth, hub, audit: the member's relay never answered,
		// or could not record.
		rc.Unreached++
	}
}
