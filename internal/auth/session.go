package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
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

// Confirmation errors. Their messages are safe to show in the chat.
var (
	ErrConfirmExpired   = errors.New("confirmation expired")
	ErrConfirmInvalid   = errors.New("confirmation no longer valid")
	ErrConfirmNotOwner  = errors.New("not allowed")
	ErrConfirmNoSession = errors.New("session ended: confirmation void")
)

// session is the one live session. Only the owner's private chat can hold
// it (Login checks chatID), so it is bound to (owner, chat).
type session struct {
	id      uint64
	chatID  int64
	started time.Time // absolute expiry runs from here
	last    time.Time // idle expiry runs from here; moved by Touch
}

// SessionInfo describes a live session.
type SessionInfo struct {
	ChatID       int64
	Started      time.Time
	LastActive   time.Time
	IdleLeft     time.Duration // never more than AbsoluteLeft
	AbsoluteLeft time.Duration
}

// Expiry says why and when a session ended by itself.
type Expiry struct {
	Reason string        // "idle" or "lifetime"
	Limit  time.Duration // the limit that was reached
	At     time.Time     // the instant it was reached
}

// expired is the last session that ran out, until TakeExpiry reports it.
type expired struct {
	chatID int64
	Expiry
}

// pending is one confirmation waiting for a button press.
type pending struct {
	token   string
	payload string
	chatID  int64
	session uint64 // the session that created it
	created time.Time
}

// Session returns the live session bound to chatID. A session is expired
// once idle for SessionIdle or older than SessionMax; at exactly either
// boundary it is already expired (the limit is the first instant it is
// gone), and an expired session is ended for good.
func (a *Authenticator) Session(chatID int64) (SessionInfo, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessionLocked(chatID)
}

func (a *Authenticator) sessionLocked(chatID int64) (SessionInfo, bool) {
	s := a.sess
	if s == nil || s.chatID != chatID || a.st.Locked {
		return SessionInfo{}, false
	}
	now := a.c.Now()
	idle, age := now.Sub(s.last), now.Sub(s.started)
	if idle >= a.c.SessionIdle || age >= a.c.SessionMax {
		// Whichever limit came first is why it ended.
		e := Expiry{Reason: "idle", Limit: a.c.SessionIdle, At: s.last.Add(a.c.SessionIdle)}
		if end := s.started.Add(a.c.SessionMax); end.Before(e.At) || end.Equal(e.At) {
			e = Expiry{Reason: "lifetime", Limit: a.c.SessionMax, At: end}
		}
		a.endSessionLocked()
		a.expired = &expired{chatID: chatID, Expiry: e}
		return SessionInfo{}, false
	}
	abs := a.c.SessionMax - age
	return SessionInfo{
		ChatID:       s.chatID,
		Started:      s.started,
		LastActive:   s.last,
		IdleLeft:     min(a.c.SessionIdle-idle, abs),
		AbsoluteLeft: abs,
	}, true
}

// TakeExpiry reports, once, that chatID's session ended by itself (idle
// or past its lifetime) rather than by /logout or /lock, so the owner can
// be told why a command needs a new login and the audit log can record
// the end. A new login, /logout or /lock forgets it.
func (a *Authenticator) TakeExpiry(chatID int64) (Expiry, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// sessionLocked also notices an expiry nobody has looked at yet.
	if _, ok := a.sessionLocked(chatID); ok {
		return Expiry{}, false
	}
	e := a.expired
	if e == nil || e.chatID != chatID {
		return Expiry{}, false
	}
	a.expired = nil
	return e.Expiry, true
}

// Touch records activity in chatID's session, restarting its idle timer.
// It never revives an expired session, and never moves the absolute end.
func (a *Authenticator) Touch(chatID int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.sessionLocked(chatID); ok {
		a.sess.last = a.c.Now()
	}
}

// Logout ends chatID's session and voids its pending confirmations.
func (a *Authenticator) Logout(chatID int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sess != nil && a.sess.chatID == chatID {
		a.endSessionLocked()
	}
	a.expired = nil
}

func (a *Authenticator) startSessionLocked(chatID int64, now time.Time) {
	a.endSessionLocked()
	a.expired = nil
	a.nextSession++
	a.sess = &session{id: a.nextSession, chatID: chatID, started: now, last: now}
}

// endSessionLocked ends the session; confirmations belong to it and go too.
func (a *Authenticator) endSessionLocked() {
	a.sess = nil
	a.confirms = nil
}

// NewConfirm registers payload for a Run/Cancel prompt in chatID's live
// session and returns the token to put in the buttons' callback data. It
// returns "" when there is no live session; Confirm refuses "".
func (a *Authenticator) NewConfirm(chatID int64, payload string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.sessionLocked(chatID); !ok {
		return ""
	}
	var raw [tokenBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "" // crypto/rand does not fail on Linux; if it did, no button works
	}
	// Expired entries stay until evicted, so a late press is told
	// "expired" rather than "unknown"; they can never be redeemed.
	if len(a.confirms) >= maxPending {
		a.confirms = append(a.confirms[:0], a.confirms[len(a.confirms)-maxPending+1:]...)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	a.confirms = append(a.confirms, &pending{token: tok, payload: payload, chatID: chatID, session: a.sess.id, created: a.c.Now()})
	return tok
}

// Confirm redeems a token from a button press. It works once, only for the
// owner in the chat and session that created it, and only while younger
// than ConfirmTTL. The owner's press spends the token whatever the outcome;
// a press by anyone else is refused without spending it.
func (a *Authenticator) Confirm(userID, chatID int64, token string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if userID != a.c.OwnerID || chatID != userID {
		return "", ErrConfirmNotOwner
	}
	if len(token) != tokenLen {
		return "", ErrConfirmInvalid
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
		return "", ErrConfirmInvalid
	}
	p := a.confirms[idx]
	a.confirms = append(a.confirms[:idx], a.confirms[idx+1:]...)
	if a.c.Now().Sub(p.created) >= ConfirmTTL {
		return "", ErrConfirmExpired
	}
	if _, ok := a.sessionLocked(chatID); !ok || a.sess.id != p.session || p.chatID != chatID {
		return "", ErrConfirmNoSession
	}
	return p.payload, nil
}
