package remote

// Exit codes of relay serve-ssh. They are read by the hub, not a person:
// ssh hands the forced command's status back as its own, and keeps 255 for
// its own failures, so every refusal has a code of its own in a range that
// neither ssh nor a shell uses. A member that refuses writes one line on
// stderr and no frame; nothing runs.
const (
	// ExitRan: the request was served; the stream ends with its trailer,
	// which carries the command's own status.
	ExitRan = 0
	// ExitUsage: serve-ssh was not given a request (no
	// SSH_ORIGINAL_COMMAND): an interactive login, or a run by hand.
	ExitUsage = 64
	// ExitMalformed: not a relay request, or a field out of bounds.
	ExitMalformed = 65
	// ExitVersion: a relay request of a version this member does not speak.
	ExitVersion = 66
	// ExitUnknown: no such command in the member's policy.
	ExitUnknown = 67
	// ExitArgs: the member's policy refused the arguments.
	ExitArgs = 68
	// ExitNotOffered: the command says hub: false.
	ExitNotOffered = 69
	// ExitSandbox: the member's sandbox cannot enforce the command's profile.
	ExitSandbox = 70
	// ExitAudit: the member's audit log is unavailable. Before the command
	// ran, nothing ran; after, the stream has output but no trailer.
	ExitAudit = 71
	// ExitBusy: a concurrency limit of the member's policy; never queued.
	ExitBusy = 72
	// ExitConfig: the member's config is missing or invalid.
	ExitConfig = 73
	// ExitFailed: anything else on the member (the command could not be
	// started, the output could not be written).
	ExitFailed = 74
	// ExitPeer: the hub's key is not among the member's member.hub_keys.
	ExitPeer = 75
	// ExitNotWitness: an audit request (audit-head, audit-since,
	// audit-witnessed) on a key whose forced command is not serve-ssh
	// --witness: a hub's key never reads the audit log, nor notes it
	// witnessed.
	ExitNotWitness = 76
	// ExitWitnessOnly: a run or list request on the witness's key
	// (serve-ssh --witness): a witness's key never runs a command.
	ExitWitnessOnly = 77
	// ExitNotThisLog: an audit-witnessed checkpoint that is not this
	// log's: not signed by its checkpoint key, or naming a seq and hash
	// that no record in the log has, or older than the one noted. Nothing
	// is noted.
	ExitNotThisLog = 78
)

// ExitCodes is the table the docs and `relay serve-ssh -h` print, in order.
var ExitCodes = []struct {
	Code    int
	Meaning string
}{
	{ExitRan, "served: the stream ends with the trailer, which carries the command's own status"},
	{ExitUsage, "no request: SSH_ORIGINAL_COMMAND is not set (an interactive login)"},
	{ExitMalformed, "malformed request: not a relay request, or a field out of bounds"},
	{ExitVersion, "a request version this member does not speak"},
	{ExitUnknown, "unknown command"},
	{ExitArgs, "the member's policy refused the arguments"},
	{ExitNotOffered, "the command is not offered to the hub (hub: false)"},
	{ExitSandbox, "the member's sandbox cannot enforce the command's profile"},
	{ExitAudit, "the member's audit log is unavailable"},
	{ExitBusy, "a concurrency limit of the member's policy (refused, never queued)"},
	{ExitConfig, "the member's config is missing or invalid"},
	{ExitFailed, "the command could not be started, or its output not sent"},
	{ExitPeer, "the hub's key is not in member.hub_keys"},
	{ExitNotWitness, "an audit request on a key whose forced command lacks --witness: nothing is read"},
	{ExitWitnessOnly, "a run or list request on the witness's key (serve-ssh --witness): nothing runs"},
	{ExitNotThisLog, "audit-witnessed: the checkpoint is not this log's (another key, or a seq and hash not in the log): nothing is noted"},
}

// IsRefusal reports whether code is one of serve-ssh's refusals.
func IsRefusal(code int) bool { return code >= ExitUsage && code <= ExitNotThisLog }
