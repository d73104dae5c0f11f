// Package audit owns relay's audit log: an append-only, forward-secure,
// tamper-evident record of what the relay did, and the tools to read and
// verify it. No audit means no execution: every Append that fails returns an
// error and leaves the log unhealthy, and the caller must not perform the
// action the record describes.
//
// It must never truncate, rewrite or rename a log file, never remove one
// that it has not verified and archived with a copy that reads back the
// same (Archive), never write a record that contains a registered secret
// or the checkpoint key, and never keep an evolving key longer than needed:
// after sealing record i with K(i-1), K(i) replaces it in memory (the old
// slice is zeroed) and in the key state file.
//
// # Files
//
// A log lives in one 0700 directory:
//
//	audit-000001.jsonl, audit-000002.jsonl, ...   records, JSON Lines, 0600
//	state.json                                     evolving key state, 0600
//	checkpoint.key                                 Ed25519 checkpoint signing key, 0600
//	checkpoint.pub                                 its public key (the owner keeps a copy)
//	witnessed                                      the newest checkpoint a witness stored
//	archive/audit-000001.jsonl.zst, ...            archived files (Archive)
//
// Record files are opened O_APPEND and each record is one write(2) of one
// line, fsynced before Append returns. Files rotate by size: a new file
// starts with a "rotate" record whose prev links the previous file's last
// record, so the chain runs unbroken across files. Nothing else touches them,
// so the log works when its files carry chattr +a.
//
// # Record format, h and MAC
//
// Every line is a JSON object whose first keys are fixed and whose last
// keys are h and the MAC:
//
//	{"seq":N,"ts":"2006-01-02T15:04:05.000000000Z","prev":"<hex>","type":"...",...,"h":"<64 hex>","mac":"<64 hex>"}\n
//
// seq counts from 1 with no gaps; ts is UTC with exactly nine fractional
// digits (30 bytes); prev is the previous record's mac ("" for seq 1); type
// always follows prev. T is the JSON object the writer serialized before it
// added h and the mac: the line without its trailing newline and without
// the 146-byte suffix `,"h":"<64 hex>","mac":"<64 hex>"}` plus "\n", with
// a closing "}" put back. Formally, for a line L of length n:
//
//	T   = L[:n-146] + "}"
//	h   = SHA-256(hprev || T)                  (32 bytes; the field is its hex)
//	mac = hex(HMAC-SHA256(K(seq-1), h))
//
// where hprev is the previous record's h, or 32 zero bytes for seq 1 and
// for the first record after format-1 records. h is an unkeyed hash chain:
// anyone can recompute it from the log, without K0, so a checkpoint can
// name it (see Checkpoints). The MAC covers h, and h covers T and hprev,
// so verifying the MAC verifies the hash chain in the same pass: one
// SHA-256 over the record and two short HMACs per record.
//
// This is format 2. Format 1 (relay before audit v2) has no h field and
// its MAC covers the object itself, S = L[:n-75] + "}" (the line without
// `,"mac":"<64 hex>"}` and "\n", brace put back): mac =
// hex(HMAC-SHA256(K(seq-1), S)). A line is format 2 exactly when its S ends
// in `,"h":"<64 hex>"`: Record has no field h and a quote inside a JSON
// string is always escaped, so no format-1 line does. The reader verifies
// both; a log may start in format 1 (written before the upgrade) and go on
// in format 2, never back: a format-1 record after a format-2 one is a
// broken chain. The writer only writes format 2; a relay older than audit
// v2 cannot verify format-2 records.
//
// verify recomputes h and the MAC from the raw bytes without
// re-serializing anything, and no two distinct lines share a T and h.
//
// # Record kinds
//
// A record's type is a Kind and its outcome an Outcome, constants of this
// package (vocab.go); writers name them, never spell them. The kinds:
//
//	init, rotate, recovery, archive          written by the log itself
//	start, stop, config                      the daemon's life and reloads
//	update, unauthorized, stale              updates that ran no command
//	login, session                           logins, step-ups, sessions
//	request, confirm, exec_start, exec_end   a command, from asking to its end
//	kill, delivery, notify                   /kill, what was sent, relay notify
//	remote_request, remote_end               a hub's record of a remote call
//
// # Keys
//
// K0 is 32 random bytes made by Init, shown to the owner once to keep off
// the host, and stored in the secret store for verification on the host.
// K(i) = HMAC-SHA256(K(i-1), "next"); record i is sealed with K(i-1). The
// key state file holds only the newest key, so after record i the host
// holds K(i) and nothing older. Init seals record 1 itself, so K0 is never
// written to the state file.
//
// # What forward security catches, and what it does not
//
// An attacker who takes the host after record n was written holds K(n) (from
// the state file or memory). Verified with K0:
//   - editing, deleting, reordering or forging any record 1..n is caught:
//     resealing record i needs K(i-1), which no longer exists on the host,
//     and HMAC is one-way, so K(n) does not yield it ("bad mac");
//   - records from another log fail the MAC (a different K0), and records
//     replayed from this log break seq and prev;
//   - the attacker CAN append well-formed records after n, and CAN cut the
//     tail (delete records k..n) leaving a shorter, valid chain, or restore
//     an older copy of the files and the key state (a backup) and let the
//     relay go on from there. That is what checkpoints cover (below): the
//     daemon sends the head's seq with its h, signed, and the legacy line
//     with a 64-bit MAC prefix, to the owner's chat; verify reports a log
//     that ends before a checkpointed seq, or whose MAC or h there
//     differs. Because every MAC covers prev and every h covers the h
//     before it, a checkpoint at seq c pins records 1..c, even against
//     someone holding K0.
//   - On the host, VerifyDir also compares the key state with the log: a
//     cut tail leaves the state ahead of the log, and an attacker cannot make
//     the matching older key. A restored backup of both passes.
//
// # Checkpoints
//
// Init makes an Ed25519 checkpoint key pair beside the log (AddCheckpointKey
// gives one to an older log). A checkpoint is a C2SP signed note
// (c2sp.org/signed-note) of a C2SP checkpoint body (c2sp.org/tlog-checkpoint):
// the origin ("<host>/relay-audit/<8 hex>", also the key's name), the record
// count (the head's seq) and the base64 of the head's h. The hash is the head
// of the unkeyed chain, not a Merkle root. Anyone with the public key can
// check a checkpoint, and, with the log, that the log reaches it
// (VerifyFiles with Signed), without K0.
//
// A checkpoint in the chat proves the log up to it only while the message
// survives: the bot token on the host can delete the bot's own messages for
// 48 hours. A witness on another machine (WitnessStore) keeps every
// checkpoint it accepted, checks each new one by replaying the records since
// the last (Extends), and names the first record that is not what it
// witnessed. What no checkpoint covers: a host compromised before the first
// checkpoint a witness stored.
//
// # Archive
//
// Archive moves whole old files to an archive directory, zstd-compressed,
// after verifying the log with K0 and reading each copy back, and writes an
// "archive" record naming the last archived record's seq, mac and h (and a
// signed checkpoint of it). The live log then starts with a rotate record
// after seq 1; verify accepts that only when an archive record in the log
// names the record before it with that mac and an h its first record chains
// from, and verify over archived and live files together checks the whole
// history, each archive record against the chain at the file end it names.
//
// The copy of K0 in the host's secret store is a convenience: whoever can
// read that store (root) can reseal everything, and then only checkpoints
// off the host protect history (and the checkpoint key on the host signs
// whatever root likes: a witness pins the public key it was given, and
// refuses a swapped one). `relay audit init --no-store` keeps K0 off the host
// entirely. Zeroing old keys is best effort: the Go runtime and the
// filesystem (a renamed-over state file's old blocks) may keep copies.
//
// # Reading
//
// Scan and Summarize (relay audit show, the chat's /audit) read without
// verifying and never write. A line reads as a record only when its JSON
// agrees with the fixed header (seq, ts, prev, type); anything else is shown
// as unreadable under an empty filter and skipped under any other, forwards
// or backwards alike. Summarize with n > 0 reads the newest file from its end
// backwards and an older file only while it has fewer than n matches, so its
// cost follows n, not the log. A filter first rules lines out from their raw
// bytes (the header's type and ts, and whether a command or outcome can be in
// the line at all), and only what it cannot rule out is decoded.
//
// # Crashes and failures
//
// A write cut short (crash, full disk, file size limit) leaves a torn line
// at the end. It is never removed: the next Open or Append writes a
// "recovery" record naming the torn region's length and SHA-256, preceded by
// a newline if the region does not end in one. Verify accepts exactly that
// pattern: bytes that are not valid records, immediately followed, in the
// same file, by a valid recovery record whose torn_bytes and torn_sha256
// describe them (with or without the separating newline). A recovery record
// with no torn bytes notes a failed append whose action was refused.
//
// Healthy rule: the log is unhealthy from the first failed write, fsync or
// key-state write until an Append (or Heal) succeeds. That Append first
// re-reads the file tail, adopts any record that made it to disk, writes a
// recovery record saying what failed, and then the caller's record; only
// when all of that is durable is the log healthy again.
//
// The key state is written atomically (temp file, fsync, rename, fsync dir).
// By default a background writer does it after each append, at most every
// 100 ms and coalescing bursts, because a synchronous rename costs ~10
// fsync-appends on ext4 and its three fsyncs slow the log's own. The key in
// memory moves on at once; the state on disk trails the log by at most
// about 100 ms plus one state write, and Sync, Close and recovery write it
// at once. Open
// rolls a lagging state forward only across records whose MACs verify under
// it, and refuses a state that is ahead of the log (a cut tail) or that does
// not match it. Options.SyncState makes every Append wait for the state.
package audit
