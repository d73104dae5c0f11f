package audit

import (
	"slices"
	"sort"
)

// Kind is a record's type: what happened. The constants below are every
// kind relay writes; TestVocabularyCoversWriters fails when a writer in
// the tree records one that is not here, and TestDocListsEveryKind when
// the package doc's list and this one differ.
type Kind string

// Outcome is how what a record describes went.
type Outcome string

// Kinds written by the log itself.
const (
	KindInit     Kind = "init"     // the first record of a new log
	KindRotate   Kind = "rotate"   // the first record of each later file
	KindRecovery Kind = "recovery" // the writer healed after a failed append
	KindArchive  Kind = "archive"  // files were archived and removed
)

// Kinds written by the daemon, relay notify and members.
const (
	KindStart        Kind = "start"        // the daemon started
	KindStop         Kind = "stop"         // the daemon stopped
	KindConfig       Kind = "config"       // a reload, applied or refused
	KindUpdate       Kind = "update"       // an update of the owner's that ran no command
	KindUnauthorized Kind = "unauthorized" // an update from anyone else
	KindStale        Kind = "stale"        // an update too old to act on
	KindLogin        Kind = "login"        // a login or step-up attempt
	KindSession      Kind = "session"      // a session ended, expired or was locked
	KindRequest      Kind = "request"      // a command asked for: allowed or denied
	KindConfirm      Kind = "confirm"      // a Run/Cancel press
	KindExecStart    Kind = "exec_start"   // a job started, or could not
	KindExecEnd      Kind = "exec_end"     // a job ended
	KindKill         Kind = "kill"         // /kill or the stop button
	KindDelivery     Kind = "delivery"     // a result or notification sent, or not
	KindNotify       Kind = "notify"       // relay notify asked to send a message
)

// Kinds written by a hub for each remote call.
const (
	KindRemoteRequest Kind = "remote_request"
	KindRemoteEnd     Kind = "remote_end"
)

// Outcomes.
const (
	OutcomeOK             Outcome = "ok"
	OutcomeFailed         Outcome = "failed"
	OutcomeDenied         Outcome = "denied"
	OutcomeIgnored        Outcome = "ignored"
	OutcomeSent           Outcome = "sent"
	OutcomeRequested      Outcome = "requested"
	OutcomeAllowed        Outcome = "allowed"
	OutcomeConfirmPending Outcome = "confirm_pending"
	OutcomeConfirmed      Outcome = "confirmed"
	OutcomeCancelled      Outcome = "cancelled"
	OutcomeExpired        Outcome = "expired"
	OutcomeEnded          Outcome = "ended"
	OutcomeLocked         Outcome = "locked"
	OutcomeTimeout        Outcome = "timeout"
	OutcomeKilled         Outcome = "killed"
	OutcomeSignal         Outcome = "signal"
)

// Outcomes of a login record (auth returns them).
const (
	OutcomeLoginOK      Outcome = "login_ok"
	OutcomeLoginFailed  Outcome = "login_failed"     // verified and wrong
	OutcomeLockout      Outcome = "lockout"          // refused by the limiter, code not verified
	OutcomeRecoveryUsed Outcome = "recovery_used"    // login with a recovery code, now spent
	OutcomeReplay       Outcome = "replay"           // a code from an already used step, or a spent recovery code
	OutcomeStepUpOK     Outcome = "stepup_ok"        // a fresh code for a reauth command
	OutcomeStepUpFailed Outcome = "stepup_failed"    // verified and wrong
	OutcomeStateError   Outcome = "auth_state_error" // the auth state could not be persisted: refused
)

// Outcomes of a hub's remote_end record beyond the ones above: how a call
// ended (internal/fleet's Kind, whose values these are).
const (
	OutcomeRefused     Outcome = "refused"
	OutcomeSandbox     Outcome = "sandbox"
	OutcomeAudit       Outcome = "audit"
	OutcomeUnreachable Outcome = "unreachable"
	OutcomeHostKey     Outcome = "host_key"
	OutcomeAuth        Outcome = "auth"
	OutcomeProtocol    Outcome = "protocol"
	OutcomeHub         Outcome = "hub"
)

// Kinds is every Kind relay writes, sorted.
var Kinds = sortedSet([]Kind{
	KindInit, KindRotate, KindRecovery, KindArchive,
	KindStart, KindStop, KindConfig, KindUpdate, KindUnauthorized, KindStale, KindLogin, KindSession,
	KindRequest, KindConfirm, KindExecStart, KindExecEnd, KindKill, KindDelivery, KindNotify,
	KindRemoteRequest, KindRemoteEnd,
})

// Outcomes is every Outcome relay writes, sorted.
var Outcomes = sortedSet([]Outcome{
	OutcomeOK, OutcomeFailed, OutcomeDenied, OutcomeIgnored, OutcomeSent, OutcomeRequested, OutcomeAllowed,
	OutcomeConfirmPending, OutcomeConfirmed, OutcomeCancelled, OutcomeExpired, OutcomeEnded, OutcomeLocked,
	OutcomeTimeout, OutcomeKilled, OutcomeSignal,
	OutcomeLoginOK, OutcomeLoginFailed, OutcomeLockout, OutcomeRecoveryUsed, OutcomeReplay,
	OutcomeStepUpOK, OutcomeStepUpFailed, OutcomeStateError,
	OutcomeRefused, OutcomeSandbox, OutcomeAudit, OutcomeUnreachable, OutcomeHostKey, OutcomeAuth,
	OutcomeProtocol, OutcomeHub,
})

// KindNames and OutcomeNames are Kinds and Outcomes as strings, for a
// reader that refuses a filter no record can match and suggests the word
// meant.
var (
	KindNames    = names(Kinds)
	OutcomeNames = names(Outcomes)
)

// Known reports whether k is a kind relay writes.
func (k Kind) Known() bool { return slices.Contains(Kinds, k) }

// Known reports whether o is an outcome relay writes.
func (o Outcome) Known() bool { return slices.Contains(Outcomes, o) }

func sortedSet[T ~string](v []T) []T {
	v = slices.Clone(v)
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return slices.Compact(v)
}

func names[T ~string](v []T) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = string(x)
	}
	return out
}

// New is a record of kind k with outcome o; the caller fills in the rest.
func New(k Kind, o Outcome) Record { return Record{Type: k, Outcome: o} }

// Denied is a record of kind k denied for reason.
func Denied(k Kind, reason string) Record {
	return Record{Type: k, Outcome: OutcomeDenied, Reason: reason}
}

// Failed is a record of kind k that failed for reason.
func Failed(k Kind, reason string) Record {
	return Record{Type: k, Outcome: OutcomeFailed, Reason: reason}
}
