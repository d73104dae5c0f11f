package fleet

import "github.com/relaychat/relay/internal/audit"

// The hub's record types for a remote call. A member records the same
// call as request, exec_start and exec_end with the same call ID.
const (
	TypeRemoteRequest = audit.KindRemoteRequest
	TypeRemoteEnd     = audit.KindRemoteEnd
)

// RequestRecord is the hub's record of a call about to be made: written,
// durably, before ssh starts.
func RequestRecord(r *Result, userID, chatID int64) audit.Record {
	return audit.Record{Type: audit.KindRemoteRequest, Outcome: audit.OutcomeAllowed, UserID: userID, ChatID: chatID,
		Host: r.Host, Command: r.Command, Args: r.Args, Call: r.Call}
}

// EndRecord is the hub's record of how a call ended: its Kind as the
// outcome, the member's status, output digest and audit head when the
// member reported them, so that `relay audit verify --host` can find the
// call in the member's log.
func EndRecord(r *Result, userID, chatID int64) audit.Record {
	rec := audit.Record{Type: audit.KindRemoteEnd, Outcome: audit.Outcome(r.Kind), UserID: userID, ChatID: chatID,
		Host: r.Host, Command: r.Command, Call: r.Call, DurationMS: r.Duration.Milliseconds(), Detail: r.Version}
	if r.Kind != KindOK {
		rec.Reason = r.Reason
	}
	if t := r.Trailer; t != nil {
		exit := t.Exit
		rec.Exit, rec.Signal, rec.TimedOut = &exit, t.Signal, t.TimedOut
		rec.OutputBytes, rec.OutputSHA256 = t.Bytes, t.SHA256
		rec.RemoteSeq, rec.RemoteMAC = t.AuditSeq, t.AuditMAC
	}
	return rec
}
