package cli

import (
	"sort"

	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/fleet"
)

// auditTypes and auditOutcomes are the values relay writes into an audit
// record's type and outcome, so that relay audit show can refuse a filter
// that can never match (--type nosuch used to print an empty table and
// exit 0) and suggest the value meant.
//
// The vocabulary belongs to internal/audit, next to Record, and to the
// writers that use it; until it lives there, this is its one copy in the
// CLI, and TestAuditVocabularyCoversWriters fails when a writer in the
// tree records a type or outcome missing here. Login outcomes are taken
// from auth, which defines them.
var (
	auditTypes = sorted(
		// Written by internal/audit itself.
		"init", "rotate", "recovery", "archive",
		// Written by the daemon and by relay notify.
		"start", "stop", "config", "update", "unauthorized", "stale",
		"login", "session", "request", "confirm", "exec_start", "exec_end",
		"kill", "delivery", "notify",
		// Written by a hub for each remote call (internal/fleet).
		fleet.TypeRemoteRequest, fleet.TypeRemoteEnd,
	)
	auditOutcomes = sorted(
		"ok", "failed", "denied", "ignored", "sent", "requested", "allowed",
		"confirm_pending", "confirmed", "cancelled", "expired", "ended",
		"locked", "timeout", "killed", "signal",
		auth.EventLoginOK, auth.EventLoginFailed, auth.EventLockout,
		auth.EventRecoveryUsed, auth.EventReplay, auth.EventLocked,
		auth.EventStepUpOK, auth.EventStepUpFailed, auth.EventStateError,
	)
)

// A hub's remote_end records a call's fleet.Kind as its outcome.
func init() {
	for _, k := range fleet.Kinds {
		auditOutcomes = append(auditOutcomes, string(k))
	}
	auditOutcomes = sorted(auditOutcomes...)
}

// sorted returns the distinct words, sorted, for messages that list them.
func sorted(words ...string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range words {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}
