package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"time"
)

const (
	// ConfirmTTL is how long a Run/Cancel button works. A press at
	// exactly ConfirmTTL after the prompt is too late.
	ConfirmTTL = 60 * time.Second
	// maxPending bounds the confirmations held at once; the oldest is
	// dropped first. Only the owner can create them, so this is a memory
	// bound, not a defence.
	maxPending = 16
	// tokenBytes: 128 random bits, 22 base64url characters, so "r:"+token
	// fits Telegram's 64-byte callback_data with room to spare.
	tokenBytes = 16
	tokenLen   = 22
)

// Confirmation errors. Their messages are safe to show in the chat; the
// ones a Held is released with say why it will never run.
var (
	ErrConfirmExpired   = shownError("confirmation expired")
	ErrConfirmInvalid   = shownError("confirmation no longer valid")
	ErrConfirmNotOwner  = shownError("not allowed")
	ErrConfirmNoSession = shownError("session ended: confirmation void")
	// ErrConfirmVoided: VoidConfirms dropped it (a reload, a shutdown,
	// an explicit cancel).
	ErrConfirmVoided = shownError("confirmation void")
	// ErrConfirmEvicted: too many confirmations were pending; the oldest
	// went.
	ErrConfirmEvicted = shownError("too many confirmations pending: the oldest was dropped")
)

// shownError is an error whose message is safe to show in the chat
// (chatfmt.Safe): it is one of the constants above.
type shownError string

func (e shownError) Error() string      { return string(e) }
func (e shownError) SafeToShow() string { return string(e) }

// Held is what a confirmation keeps until its Run button is pressed: the
// run, with whatever it already holds (a sandbox built for it). Auth is
// the one owner of pending confirmations: a Held given to NewConfirm is
// handed back by exactly one Confirm, or released exactly once when the
// confirmation dies without that (it expired, its session ended, it was
// voided or evicted), never both.
type Held interface {
	// Release frees what the run holds, saying why it will not run (one
	// of the ErrConfirm* errors above, safe to show). Auth calls it
	// outside its lock, so it may take its time, but it must not call
	// back into the Authenticator synchronously.
	Release(why error)
}

// pending is one confirmation waiting for a button press.
type pending struct {
	token   string
	held    Held // nil once released: the entry only answers "expired"
	chatID  int64
	session uint64 // the session that created it
	created time.Time
}

// released is a Held to release once the lock is dropped.
type released struct {
	h   Held
	why error
}

// unlock drops the lock and then releases what the locked section let go
// of, so that a Release never runs under mu.
func (a *Authenticator) unlock() {
	rel := a.releases
	a.releases = nil
	a.mu.Unlock()
	for _, r := range rel {
		r.h.Release(r.why)
	}
}

// releaseLocked queues p's Held for release with why, once.
func (a *Authenticator) releaseLocked(p *pending, why error) {
	if p.held != nil {
		a.releases = append(a.releases, released{p.held, why})
		p.held = nil
	}
}

// voidConfirmsLocked drops every pending confirmation.
func (a *Authenticator) voidConfirmsLocked(why error) int {
	n := 0
	for _, p := range a.confirms {
		if p.held != nil {
			n++
		}
		a.releaseLocked(p, why)
	}
	a.confirms = nil
	return n
}

// sweepLocked releases the confirmations that ran out. Their entries stay
// until evicted, so a late press is told "expired" rather than "unknown";
// they can never be redeemed.
func (a *Authenticator) sweepLocked() {
	now := a.c.Now()
	for _, p := range a.confirms {
		if now.Sub(p.created) >= ConfirmTTL {
			a.releaseLocked(p, ErrConfirmExpired)
		}
	}
}

// NewConfirm registers h for a Run/Cancel prompt in chatID's live session
// and returns the token to put in the buttons' callback data. It returns
// "" when there is no live session, and then h is the caller's to
// release; Confirm refuses "".
func (a *Authenticator) NewConfirm(chatID int64, h Held) string {
	a.mu.Lock()
	defer a.unlock()
	if _, ok := a.sessionLocked(chatID); !ok {
		return ""
	}
	var raw [tokenBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "" // crypto/rand does not fail on Linux; if it did, no button works
	}
	a.sweepLocked()
	if len(a.confirms) >= maxPending {
		drop := len(a.confirms) - maxPending + 1
		for _, p := range a.confirms[:drop] {
			a.releaseLocked(p, ErrConfirmEvicted)
		}
		a.confirms = append(a.confirms[:0], a.confirms[drop:]...)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	a.confirms = append(a.confirms, &pending{token: tok, held: h, chatID: chatID, session: a.sess.id, created: a.c.Now()})
	return tok
}

// Confirm redeems a token from a button press and hands back what
// NewConfirm was given. It works once, only for the owner in the chat and
// session that created it, and only while younger than ConfirmTTL. The
// owner's press spends the token whatever the outcome (a refused one
// releases its Held); a press by anyone else is refused without spending
// it.
func (a *Authenticator) Confirm(userID, chatID int64, token string) (Held, error) {
	a.mu.Lock()
	defer a.unlock()
	if userID != a.c.OwnerID || chatID != userID {
		return nil, ErrConfirmNotOwner
	}
	if len(token) != tokenLen {
		return nil, ErrConfirmInvalid
	}
	idx := -1
	for i, p := range a.confirms {
		// Constant time, no early exit: the comparison says nothing
		// about how close a guess came.
		if subtle.ConstantTimeCompare([]byte(p.token), []byte(token)) == 1 && idx < 0 {
			idx = i
		}
	}
	if idx < 0 {
		return nil, ErrConfirmInvalid
	}
	p := a.confirms[idx]
	a.confirms = append(a.confirms[:idx], a.confirms[idx+1:]...)
	if p.held == nil || a.c.Now().Sub(p.created) >= ConfirmTTL {
		a.releaseLocked(p, ErrConfirmExpired)
		return nil, ErrConfirmExpired
	}
	if _, ok := a.sessionLocked(chatID); !ok || a.sess.id != p.session || p.chatID != chatID {
		a.releaseLocked(p, ErrConfirmNoSession)
		return nil, ErrConfirmNoSession
	}
	h := p.held
	p.held = nil
	return h, nil
}

// Void drops the confirmation with token, if it is pending, releasing it
// with ErrConfirmVoided: for a prompt that never reached the chat.
func (a *Authenticator) Void(token string) {
	a.mu.Lock()
	defer a.unlock()
	for i, p := range a.confirms {
		if subtle.ConstantTimeCompare([]byte(p.token), []byte(token)) == 1 {
			a.releaseLocked(p, ErrConfirmVoided)
			a.confirms = append(a.confirms[:i], a.confirms[i+1:]...)
			return
		}
	}
}

// VoidConfirms drops every pending confirmation, releasing each with
// ErrConfirmVoided, and returns how many were live. A reload voids them
// (a Run button must never run what the new policy removed or changed),
// and so does a shutdown.
func (a *Authenticator) VoidConfirms() int {
	a.mu.Lock()
	defer a.unlock()
	a.sweepLocked()
	return a.voidConfirmsLocked(ErrConfirmVoided)
}

// SweepConfirms releases the confirmations that ran out, so that what
// they hold is freed without waiting for the next prompt or press.
func (a *Authenticator) SweepConfirms() {
	a.mu.Lock()
	defer a.unlock()
	a.sweepLocked()
}
