// Package remote is the wire format between a hub and a member, the two
// ends of relay's fleet control over OpenSSH: the request a hub sends as
// ssh's remote command, which the member's sshd hands to the forced command
// `relay serve-ssh` in SSH_ORIGINAL_COMMAND; the framed stream the member
// answers with on stdout (a hello, output chunks, keepalives, then a
// trailer); the allowlist document a member offers; and the exit codes by
// which a member refuses.
//
// It owns these formats and their strict parsers, nothing else: it never
// runs anything, never reads the environment and never touches a policy.
//
// # The request
//
//	relay-v1.<base64url, no padding, canonical>
//
// The payload is binary and every field is length-checked:
//
//	op        1 byte   'R' run a command, 'L' list the allowlist;
//	                   'H' audit-head, 'S' audit-since, 'W' audit-witnessed
//	                   (the witness's)
//	call      16 bytes the caller's call ID, recorded in both audit logs
//	op R only:
//	  name      u8 length (1-32), then [a-z0-9_]
//	  nargs     u8 (0-32)
//	  each arg  u16 big-endian length (0-4096), then valid UTF-8 without
//	            control characters
//	  max_out   u64 big-endian, 1 to 2^40: the most output bytes the hub
//	            accepts; the member streams no more than that
//	op S only:
//	  since     u64 big-endian: the seq after which records are asked
//	op W only:
//	  note      u16 big-endian length (1-4096), then the signed checkpoint
//	            the witness stored: valid UTF-8 whose only control
//	            character is the newline
//
// The hub's key is served R and L only, the witness's key (serve-ssh
// --witness) H, S and W only; each refuses the other's with a code of its
// own.
//
// Nothing may follow the last field, the encoding must be the canonical one
// (one string per request), and the whole request is at most
// MaxRequestBytes. The request is made only of [A-Za-z0-9._-], so that if it
// ever reaches a shell instead of relay serve-ssh (a key installed without
// its forced command), the shell sees one word naming no program, and runs
// nothing it was sent: no separator, quote, expansion or option can be
// expressed in it.
//
// # The stream
//
// Each frame is a type byte, a u32 big-endian length and the payload:
//
//	'H' hello     1-256 bytes: "relay-stream-v1 " + the member's version
//	'O' output    1-65536 bytes of the command's output (stdout and stderr
//	              interleaved, as the member's executor captures them)
//	'K' keepalive empty; sent while a command is silent
//	'L' list      1 byte to 1 MiB: the allowlist document (JSON, see List)
//	'T' trailer   1-1024 bytes (see Trailer); the last frame of a run
//	'C' checkpoint 1-4096 bytes: a signed checkpoint (a C2SP signed note)
//	'A' audit     1-65536 bytes of audit record lines, as in the log
//	'E' end       8 bytes: u64 big-endian, the number of record lines sent
//
// A run answers H, then O and K frames, then T; a list answers H, L; an
// audit-head H, C; an audit-since H, A frames (a line may span two), E; an
// audit-witnessed H, C (the checkpoint the member now holds as witnessed). A
// member that refuses writes no frame at all: one line on stderr and one of
// the exit codes below. Anything else (a frame out of order, a length out
// of bounds, bytes after the trailer, a stream that ends before it) is a
// protocol error, never guessed around.
package remote
