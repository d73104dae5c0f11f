package auth

import "time"

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
	// ID names the session: no two sessions of one Authenticator share
	// it, so state keyed on it (a picker's buttons) dies with its session
	// whatever ended it. It is not a secret and means nothing across
	// restarts.
	ID           uint64
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

// Session returns the live session bound to chatID. A session is expired
// once idle for SessionIdle or older than SessionMax; at exactly either
// boundary it is already expired (the limit is the first instant it is
// gone), and an expired session is ended for good.
func (a *Authenticator) Session(chatID int64) (SessionInfo, bool) {
	a.mu.Lock()
	defer a.unlock()
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
		ID:           s.id,
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
	defer a.unlock()
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
	defer a.unlock()
	if _, ok := a.sessionLocked(chatID); ok {
		a.sess.last = a.c.Now()
	}
}

// Logout ends chatID's session and voids its pending confirmations.
func (a *Authenticator) Logout(chatID int64) {
	a.mu.Lock()
	defer a.unlock()
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
	a.voidConfirmsLocked(ErrConfirmNoSession)
}
