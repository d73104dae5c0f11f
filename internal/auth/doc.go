// Package auth decides who may talk to relay and when: the owner gate for
// every Telegram update, TOTP login with replay protection and a persisted
// rate limiter, recovery codes, in-memory sessions, the /lock panic state,
// step-up codes for reauth commands, and pending confirmations: the one
// table of Run buttons, each with its one-shot token, its lifetime and the
// run it holds (a Held), handed back by exactly one press or released
// exactly once when it dies. It also enrols the TOTP secret.
//
// It owns the auth state file (last accepted TOTP step, failure count,
// lockout, lock flag, recovery-code hashes), written atomically and 0600.
//
// It must never write the audit log, talk to Telegram or log anything: it
// returns verdicts and events and the daemon records them. It must never
// put a TOTP secret, a code or a recovery code into an error, a result, the
// state file (recovery codes are stored only as salted hashes) or a panic.
package auth
