package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/audit"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/relaychat/relay/policy"
)

// SecretStore is where the TOTP secret lives; *secrets.Store satisfies it.
// Get wraps secrets.ErrNotFound when the secret is missing.
type SecretStore interface {
	Get(name string) ([]byte, error)
	Set(name string, value []byte) error
}

// SecretName is the TOTP secret's name in the SecretStore; it equals
// secrets.TOTPSecret (auth does not import secrets, so that the store can
// be tested apart; a test checks the two agree).
const SecretName = "totp-secret"

// Config is what an Authenticator enforces. Every duration and count must
// be positive: New refuses zero values rather than guessing.
type Config struct {
	OwnerID       int64         // the one Telegram user ID allowed
	MaxMessageAge time.Duration // older messages are Stale
	SessionIdle   time.Duration // a session expires after this long unused
	SessionMax    time.Duration // and after this long in any case
	Attempts      int           // login attempts allowed per Window
	Window        time.Duration
	LockoutBase   time.Duration // first lockout; doubles per further failure
	LockoutMax    time.Duration // lockout cap
	// StatePath is the auth state file (0600, replaced atomically).
	StatePath string
	// Secret is the TOTP secret as the SecretStore holds it: base32 text.
	Secret []byte
	// Now is the clock; time.Now when nil. Tests inject a fake one.
	Now func() time.Time
	// StartedAt is when the relay started: earlier messages are Stale.
	// Now() at New when zero.
	StartedAt time.Time
}

// ConfigFrom maps the validated policy settings to a Config. The caller
// adds Secret (see LoadSecret) and, in tests, Now and StartedAt.
func ConfigFrom(p policy.Auth, stateDir string) Config {
	return Config{
		OwnerID:       p.OwnerID,
		MaxMessageAge: p.MaxMessageAge,
		SessionIdle:   p.SessionIdle,
		SessionMax:    p.SessionMax,
		Attempts:      p.LoginAttempts,
		Window:        p.LoginWindow,
		LockoutBase:   p.LockoutBase,
		LockoutMax:    p.LockoutMax,
		StatePath:     filepath.Join(stateDir, StateFile),
		Now:           time.Now,
	}
}

// Errors that say what is wrong with the TOTP secret or the auth state;
// internal/cli says which command fixes each.
var (
	// ErrNoSecret: no TOTP secret is stored (or it is empty).
	ErrNoSecret = errors.New("no totp secret")
	// ErrSecretUnusable: the stored secret cannot be used.
	ErrSecretUnusable = errors.New("totp secret unusable")
	// ErrStateCorrupt: the auth state file cannot be read. Starting with
	// a fresh state instead would silently reopen replay and reset the
	// lockout, so New refuses.
	ErrStateCorrupt = errors.New("auth state corrupt")
	// ErrResetIncomplete: a new secret was saved but the state was not
	// reset to go with it.
	ErrResetIncomplete = errors.New("the new totp secret is saved but the auth state was not reset")
)

// LoadSecret reads the TOTP secret from store, with a hint when it is
// missing. The error never contains the secret.
func LoadSecret(store SecretStore) ([]byte, error) {
	b, err := store.Get(SecretName)
	if err != nil {
		return nil, fmt.Errorf("read totp secret: %w: %w", ErrNoSecret, err)
	}
	if _, err := parseSecret(b); err != nil {
		return nil, err
	}
	return b, nil
}

// MinBruteForce is the least time any limiter New accepts needs for a
// million verified guesses. It is far below what the defaults give
// (about 2,700 years); it only stops a config that makes TOTP guessable.
const MinBruteForce = 365 * 24 * time.Hour

// Verdict is Admit's decision about an update. The zero value is Ignore.
type Verdict int

const (
	// Ignore: not from the owner's private chat, or edited. The caller
	// sends nothing back and audits the IDs only.
	Ignore Verdict = iota
	// Allow: the owner, in the private chat, fresh. Commands still need a
	// session.
	Allow
	// Stale: the owner, but too old or sent before the relay started.
	// Never executed; tell the owner once (FirstStale).
	Stale
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Stale:
		return "stale"
	default:
		return "ignore"
	}
}

// Update is what Admit needs to know about one Telegram update.
type Update struct {
	UserID, ChatID int64
	ChatType       string // "private", "group", "supergroup", "channel"
	// Date is when Telegram received the message (whole seconds).
	Date   time.Time
	Edited bool
	// Press is a button press: a callback query, or a draft's stop
	// button. Presses carry no date; the freshness of what was pressed is
	// the prompt's or the job's own business.
	Press bool
}

// Audit events returned in LoginResult.Event: the outcomes of a login
// record, which internal/audit owns.
const (
	EventLoginOK      = audit.OutcomeLoginOK
	EventLoginFailed  = audit.OutcomeLoginFailed  // verified and wrong
	EventLockout      = audit.OutcomeLockout      // refused by the limiter, code not verified
	EventRecoveryUsed = audit.OutcomeRecoveryUsed // login with a recovery code, now spent
	EventReplay       = audit.OutcomeReplay       // a code from an already used step, or a spent recovery code
	EventLocked       = audit.OutcomeLocked       // refused: /lock is in force and needs a TOTP login
	EventStepUpOK     = audit.OutcomeStepUpOK     // a fresh code for a reauth command
	EventStepUpFailed = audit.OutcomeStepUpFailed // verified and wrong
	EventStateError   = audit.OutcomeStateError   // the state could not be persisted: refused
)

// LoginResult is the outcome of Login or StepUp. Nothing in it ever
// contains the code that was typed.
type LoginResult struct {
	OK bool
	// Reason is short and safe to show in the chat ("invalid code").
	Reason string
	// Event names the outcome for the audit log (Event* constants).
	Event audit.Outcome
	// LockedUntil is when the next attempt will be verified, if a lockout
	// is in force after this attempt; zero otherwise.
	LockedUntil time.Time
	// UsedRecovery: the login used (and spent) a recovery code.
	UsedRecovery bool
	// RecoveryLeft is the number of unused recovery codes.
	RecoveryLeft int
	// Err is the internal cause when Event is EventStateError, for the
	// relay log only (it names paths, never a code).
	Err error
}

// SafeToShow is Reason, which this package writes from a fixed
// vocabulary and a lockout's length, never from the code or an error.
func (r LoginResult) SafeToShow() string { return r.Reason }

// Status is a snapshot for /status and 'relay totp status'.
type Status struct {
	Session      bool          // a live session exists
	IdleLeft     time.Duration // until it expires unused
	AbsoluteLeft time.Duration // until it expires in any case
	Failures     int           // consecutive failed attempts
	LockedUntil  time.Time     // login lockout end; zero or past = none
	Locked       bool          // /lock is in force
	LastStep     int64         // newest accepted TOTP step (0 = none)
	RecoveryLeft int           // unused recovery codes
}

// Authenticator enforces one owner's authentication. It is safe for
// concurrent use; every method takes mu, and persistence happens under it
// so that two logins can never both pass the replay check.
type Authenticator struct {
	c      Config
	secret string // canonical base32; never printed
	lim    limiter
	// save persists the state; saveState except in tests that make
	// writes fail or fuzz without fsync.
	save func(path string, s *state) error

	// lock keeps every other process from writing the state while this
	// Authenticator lives; Close releases it.
	lock *stateLock

	mu sync.Mutex
	// st is the persisted state. It only ever moves towards "stricter" in
	// memory when a write fails: a failed write never hands out a free
	// attempt or a reusable step.
	st *state
	// sess is the one live session, nil when logged out. Only the owner's
	// private chat can hold one, so one is enough.
	sess *session
	// nextSession numbers sessions, so that confirmations die with theirs.
	nextSession uint64
	expired     *expired   // the last session that ran out, not yet reported
	confirms    []*pending // oldest first, at most maxPending
	// releases are Helds let go of under mu, released by unlock once mu
	// is dropped.
	releases  []released
	staleSeen bool // a Stale verdict was given
	staleTold bool // FirstStale already returned true
}

// New validates c, loads the persisted state and returns an Authenticator.
// It refuses a corrupt state file rather than starting over, since a fresh
// state would reset the lockout and reopen replay.
func New(c Config) (*Authenticator, error) {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StartedAt.IsZero() {
		c.StartedAt = c.Now()
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	secret, err := parseSecret(c.Secret)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{
		c:      c,
		secret: secret,
		lim:    limiter{attempts: c.Attempts, window: c.Window, base: c.LockoutBase, max: c.LockoutMax},
		save:   saveState,
	}
	if err := checkBruteForce(a.lim); err != nil {
		return nil, err
	}
	lock, err := lockState(c.StatePath)
	if err != nil {
		return nil, err
	}
	st, err := loadState(c.StatePath, c.Attempts)
	if err != nil {
		lock.release()
		return nil, err
	}
	a.st, a.lock = st, lock
	return a, nil
}

// Close releases the auth state for other processes, such as a later
// 'relay totp enroll'. The Authenticator must not be used afterwards.
func (a *Authenticator) Close() error {
	a.mu.Lock()
	defer a.unlock()
	a.lock.release()
	return nil
}

// Reconfigure applies c at once, or nothing: the session limits and the
// message age to every later check (a live session that is past a
// shortened limit ends at its next check), the login limits to the next
// attempt. A lockout in force is kept as it is: a reload never hands out
// attempts. The owner, the state file and the start time are fixed for
// the Authenticator's life and must be unchanged (Secret and StartedAt may
// be left zero to keep them).
func (a *Authenticator) Reconfigure(c Config) error {
	if err := a.CheckConfig(c); err != nil {
		return err
	}
	lim := limiter{attempts: c.Attempts, window: c.Window, base: c.LockoutBase, max: c.LockoutMax}
	a.mu.Lock()
	defer a.unlock()
	c.Secret, c.StartedAt = a.c.Secret, a.c.StartedAt
	if c.Now == nil {
		c.Now = a.c.Now
	}
	// The recorded attempts stay as they are: the limiter refuses from
	// the newest attempts of them, whatever their number.
	a.c, a.lim = c, lim
	return nil
}

// CheckConfig reports whether Reconfigure would accept c, changing
// nothing.
func (a *Authenticator) CheckConfig(c Config) error {
	if c.Now == nil {
		c.Now = a.c.Now
	}
	if c.StartedAt.IsZero() {
		c.StartedAt = a.c.StartedAt
	}
	if err := c.validate(); err != nil {
		return err
	}
	var fixed []string
	if c.OwnerID != a.c.OwnerID {
		fixed = append(fixed, "owner_id")
	}
	if c.StatePath != a.c.StatePath {
		fixed = append(fixed, "the state file")
	}
	if c.Secret != nil && subtle.ConstantTimeCompare(c.Secret, a.c.Secret) != 1 {
		fixed = append(fixed, "the totp secret")
	}
	if len(fixed) > 0 {
		return fmt.Errorf("auth config: %s cannot change while relay runs", joinSemi(fixed))
	}
	lim := limiter{attempts: c.Attempts, window: c.Window, base: c.LockoutBase, max: c.LockoutMax}
	return checkBruteForce(lim)
}

func checkBruteForce(lim limiter) error {
	if s := lim.minGuessSeconds(1_000_000); s < MinBruteForce.Seconds() {
		return fmt.Errorf("auth config: login limits allow a million guesses in %.0f days, under %.0f (hint: raise auth.lockout_max or lower auth.login_attempts)", s/86400, MinBruteForce.Hours()/24)
	}
	return nil
}

// LooksLikeCode reports whether text, on its own, has the shape of a TOTP
// code or a recovery code: a message the owner sent by mistake without
// /login, which must not stay in the chat either. It says nothing about
// whether the code is valid.
func LooksLikeCode(text string) bool {
	t := strings.TrimSpace(text)
	if _, ok := normalizeTOTP(t); ok {
		return true
	}
	_, ok := normalizeRecovery(t)
	return ok
}

func (c Config) validate() error {
	var bad []string
	if c.OwnerID <= 0 {
		bad = append(bad, "owner_id must be a positive Telegram user ID")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"max_message_age", c.MaxMessageAge}, {"session_idle", c.SessionIdle},
		{"session_max", c.SessionMax}, {"login_window", c.Window},
		{"lockout", c.LockoutBase}, {"lockout_max", c.LockoutMax},
	} {
		if d.v <= 0 {
			bad = append(bad, d.name+" must be positive")
		}
	}
	if c.Attempts < 1 {
		bad = append(bad, "login_attempts must be at least 1")
	}
	if c.LockoutMax < c.LockoutBase {
		bad = append(bad, "lockout_max must not be below lockout")
	}
	if c.StatePath == "" {
		bad = append(bad, "no auth state path (set state_dir)")
	}
	if len(bad) > 0 {
		return fmt.Errorf("auth config: %s", joinSemi(bad))
	}
	return nil
}

func joinSemi(s []string) string {
	out := s[0]
	for _, x := range s[1:] {
		out += "; " + x
	}
	return out
}

// Admit decides whether an update may be acted on at all. Only the owner,
// in their private chat (chat ID = user ID), unedited, gets past Ignore;
// of those, messages older than MaxMessageAge (age ≥ MaxMessageAge) or
// dated before the start are Stale. Presses carry no date of their own;
// their freshness is Confirm's job, or the pressed job's.
func (a *Authenticator) Admit(u Update) Verdict {
	if u.UserID != a.c.OwnerID || u.ChatID != u.UserID || u.ChatType != "private" || u.Edited {
		return Ignore
	}
	if u.Press {
		return Allow
	}
	now := a.c.Now()
	// Date is whole seconds, rounded down: a message dated in the start's
	// own second is after the start only if Date ≥ StartedAt.
	if u.Date.IsZero() || u.Date.Before(a.c.StartedAt) || now.Sub(u.Date) >= a.c.MaxMessageAge {
		a.mu.Lock()
		a.staleSeen = true
		a.mu.Unlock()
		return Stale
	}
	return Allow
}

// FirstStale reports true exactly once per Authenticator, after the first
// Stale verdict, so the owner is told once per start and not per message.
func (a *Authenticator) FirstStale() bool {
	a.mu.Lock()
	defer a.unlock()
	if a.staleSeen && !a.staleTold {
		a.staleTold = true
		return true
	}
	return false
}

// Login checks code (a TOTP code or an unused recovery code) from the
// owner's private chat and, on success, starts a session bound to it.
//
// Order matters: the limiter is consulted and the attempt persisted as a
// failure before the code is looked at; a TOTP step is accepted only if it
// is strictly later than any accepted before, and that step is persisted
// before success is returned, so a code cannot be replayed even across a
// restart. While /lock is in force only a TOTP code unlocks.
func (a *Authenticator) Login(chatID int64, code string) LoginResult {
	a.mu.Lock()
	defer a.unlock()
	if chatID != a.c.OwnerID {
		return LoginResult{Reason: "not allowed", Event: EventLoginFailed}
	}
	res, ok := a.beginLocked()
	if !ok {
		return res
	}
	now := a.c.Now()
	if t, isTOTP := normalizeTOTP(code); isTOTP {
		res = a.verifyTOTPLocked(t, now, EventLoginOK, EventLoginFailed)
	} else if a.st.Locked {
		res = LoginResult{Reason: "locked: log in with an authenticator code", Event: EventLocked}
	} else if r, isRec := normalizeRecovery(code); isRec {
		res = a.verifyRecoveryLocked(r)
	} else {
		res = LoginResult{Reason: "invalid code", Event: EventLoginFailed}
	}
	if res.OK {
		a.st.Locked = false
		if err := a.succeedLocked(); err != nil {
			return a.stateErrorLocked(err)
		}
		a.startSessionLocked(chatID, now)
	}
	return a.finishLocked(res)
}

// StepUp checks a fresh TOTP code for a reauth command: from a step later
// than any already used, whatever the session state, through the same
// limiter. Recovery codes are not accepted. It starts no session.
func (a *Authenticator) StepUp(chatID int64, code string) LoginResult {
	a.mu.Lock()
	defer a.unlock()
	if chatID != a.c.OwnerID {
		return LoginResult{Reason: "not allowed", Event: EventStepUpFailed}
	}
	if a.st.Locked {
		// Nothing but a login ends /lock; this does not count as a try.
		return LoginResult{Reason: "locked: send /login CODE first", Event: EventLocked}
	}
	res, ok := a.beginLocked()
	if !ok {
		return res
	}
	t, isTOTP := normalizeTOTP(code)
	if !isTOTP {
		res = LoginResult{Reason: "invalid code", Event: EventStepUpFailed}
	} else {
		res = a.verifyTOTPLocked(t, a.c.Now(), EventStepUpOK, EventStepUpFailed)
	}
	if res.OK {
		if err := a.succeedLocked(); err != nil {
			return a.stateErrorLocked(err)
		}
	}
	return a.finishLocked(res)
}

// beginLocked runs the limiter and persists the attempt as failed. ok is
// false when the attempt must not be verified; res then says why.
func (a *Authenticator) beginLocked() (res LoginResult, ok bool) {
	now := a.c.Now()
	if allowed, until := a.lim.check(&a.st.limit, now); !allowed {
		return a.finishLocked(LoginResult{
			Reason:      "locked out for " + until.Sub(now).Round(time.Second).String(),
			Event:       EventLockout,
			LockedUntil: until,
		}), false
	}
	a.lim.begin(&a.st.limit, now)
	if err := a.save(a.c.StatePath, a.st); err != nil {
		// The in-memory state keeps the attempt: fail closed.
		return a.stateErrorLocked(err), false
	}
	return LoginResult{}, true
}

// verifyTOTPLocked matches code against the window and enforces the
// strictly-later-step rule, advancing LastStep in memory on success.
func (a *Authenticator) verifyTOTPLocked(code string, now time.Time, okEvent, failEvent audit.Outcome) LoginResult {
	steps, err := matchTOTP(a.secret, code, now)
	if err != nil {
		return LoginResult{Reason: "internal error, see the relay log", Event: EventStateError, Err: err}
	}
	if len(steps) == 0 {
		return LoginResult{Reason: "invalid code", Event: failEvent}
	}
	// steps is newest first: the newest unused matching step wins.
	if steps[0] <= a.st.LastStep {
		return LoginResult{Reason: "code already used; wait for the next one", Event: EventReplay}
	}
	a.st.LastStep = steps[0]
	return LoginResult{OK: true, Event: okEvent}
}

// verifyRecoveryLocked compares norm against every stored hash, in
// constant time and without an early exit, and spends a match.
func (a *Authenticator) verifyRecoveryLocked(norm string) LoginResult {
	if len(a.st.Recovery) == 0 {
		return LoginResult{Reason: "invalid code", Event: EventLoginFailed}
	}
	h := hashRecovery(a.st.Salt, norm)
	idx := -1
	for i, r := range a.st.Recovery {
		if subtle.ConstantTimeCompare(r.Hash, h) == 1 && idx < 0 {
			idx = i
		}
	}
	switch {
	case idx < 0:
		return LoginResult{Reason: "invalid code", Event: EventLoginFailed}
	case a.st.Recovery[idx].Used:
		return LoginResult{Reason: "recovery code already used", Event: EventReplay}
	}
	a.st.Recovery[idx].Used = true
	return LoginResult{OK: true, Event: EventRecoveryUsed, UsedRecovery: true}
}

// succeedLocked clears the provisional failure and persists the new
// LastStep or spent recovery code before the caller reports success.
func (a *Authenticator) succeedLocked() error {
	a.lim.succeed(&a.st.limit)
	return a.save(a.c.StatePath, a.st)
}

// stateErrorLocked refuses an attempt whose state could not be persisted.
// What was already decided in memory stands (a verified step stays used,
// a spent recovery code stays spent), but no session starts.
func (a *Authenticator) stateErrorLocked(err error) LoginResult {
	return a.finishLocked(LoginResult{Reason: "internal error, see the relay log", Event: EventStateError, Err: err})
}

// finishLocked fills the fields every result carries.
func (a *Authenticator) finishLocked(res LoginResult) LoginResult {
	if !res.OK && a.c.Now().Before(a.st.limit.LockedUntil) {
		res.LockedUntil = a.st.limit.LockedUntil
		if res.Event != EventLockout && res.Event != EventStateError {
			res.Reason += "; locked out for " + a.st.limit.LockedUntil.Sub(a.c.Now()).Round(time.Second).String()
		}
	}
	res.RecoveryLeft = a.st.recoveryLeft()
	return res
}

// Lock is the panic button: it ends the session, voids every pending
// confirmation and sets the persisted lock flag, which refuses everything
// but a TOTP login. It also raises the step floor to the current step, so
// a code shown on screen or typed in chat before the lock cannot undo it:
// the owner needs a code from a later step. The lock holds in memory even
// if the write fails; the error is for the log.
func (a *Authenticator) Lock(chatID int64) error {
	a.mu.Lock()
	defer a.unlock()
	a.endSessionLocked()
	a.expired = nil
	a.st.Locked = true
	// Apps show only the current step's code, so every code that could
	// have been seen before the lock is from a step ≤ the current one.
	if c := stepAt(a.c.Now()); c > a.st.LastStep {
		a.st.LastStep = c
	}
	if err := a.save(a.c.StatePath, a.st); err != nil {
		return fmt.Errorf("persist /lock: %w", err)
	}
	return nil
}

// Status is a snapshot for /status.
func (a *Authenticator) Status() Status {
	a.mu.Lock()
	defer a.unlock()
	s := Status{
		Failures:     a.st.limit.Failures,
		LockedUntil:  a.st.limit.LockedUntil,
		Locked:       a.st.Locked,
		LastStep:     a.st.LastStep,
		RecoveryLeft: a.st.recoveryLeft(),
	}
	if info, ok := a.sessionLocked(a.c.OwnerID); ok {
		s.Session, s.IdleLeft, s.AbsoluteLeft = true, info.IdleLeft, info.AbsoluteLeft
	}
	return s
}

// ReadStatus reads the persisted part of Status from a state file without
// starting an Authenticator, for 'relay totp status'.
func ReadStatus(statePath string) (Status, error) {
	st, err := loadState(statePath, 100)
	if err != nil {
		return Status{}, err
	}
	return Status{
		Failures:     st.limit.Failures,
		LockedUntil:  st.limit.LockedUntil,
		Locked:       st.Locked,
		LastStep:     st.LastStep,
		RecoveryLeft: st.recoveryLeft(),
	}, nil
}
