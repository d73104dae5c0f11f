// Package picker keeps the state of parameter pickers between a keyboard
// and its press. A picker's buttons carry a token and the button's index,
// never a value: a value chosen by button data could be anything a client
// sends, while a token only names state the relay made itself.
//
// It owns the tokens' properties: 128 random bits each, single-use (a
// keyboard works for one press, whatever the outcome), bound to the
// session that created it, and valid for a TTL measured on an injected
// clock. A stale, spent, unknown or foreign token is refused with an error
// whose message is safe to show in the chat. It must never hand out state
// for a token it did not create, and never keep more than its bound of
// entries (the oldest go first).
//
// It knows nothing of commands or words: the state is the caller's (the
// command and the words picked so far, with the choices offered), and the
// caller binds the final words exactly as if typed (policy.Command.Next).
package picker

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultTTL is how long a keyboard works: long enough to read it
	// and choose, short enough that an old one lying in the chat is dead.
	DefaultTTL = 2 * time.Minute
	// DefaultMax bounds the keyboards held at once. Only the owner in a
	// session creates them, so it is a memory bound, not a defence.
	DefaultMax = 32

	tokenBytes = 16 // 128 bits
	tokenLen   = 22 // base64url without padding
	// Prefix starts a picker button's callback data, next to the
	// confirmation buttons' "r:" and "x:".
	Prefix = "p:"
	// MaxButtons is the most buttons Data numbers (Telegram allows 100
	// per keyboard; policy.MaxChoices is 24).
	MaxButtons = 100
)

// Errors of Take. Their messages are safe to show in the chat.
var (
	ErrExpired = shownError("these buttons have expired; send the command again")
	ErrUsed    = shownError("these buttons no longer work; send the command again")
	ErrSession = shownError("these buttons belong to an earlier session")
)

// shownError is an error whose message is safe to show in the chat
// (chatfmt.Safe): it is one of the constants above.
type shownError string

func (e shownError) Error() string      { return string(e) }
func (e shownError) SafeToShow() string { return string(e) }

// Table maps tokens to picker state of type S. The zero value is not
// usable; call New. It is safe for concurrent use.
type Table[S any] struct {
	now func() time.Time
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries []*entry[S] // oldest first; guarded by mu
}

type entry[S any] struct {
	token   string
	session uint64
	created time.Time
	state   S
}

// New returns an empty table on clock now, whose tokens work for ttl and
// which holds at most max of them (DefaultTTL and DefaultMax when zero).
func New[S any](now func() time.Time, ttl time.Duration, max int) *Table[S] {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if max <= 0 {
		max = DefaultMax
	}
	return &Table[S]{now: now, ttl: ttl, max: max}
}

// Put keeps state for one keyboard of session and returns its token. It
// fails only if the system's random source does.
func (t *Table[S]) Put(session uint64, state S) (string, error) {
	var raw [tokenBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", errors.New("picker: no randomness for a token")
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.entries) >= t.max {
		t.entries = append(t.entries[:0], t.entries[len(t.entries)-t.max+1:]...)
	}
	t.entries = append(t.entries, &entry[S]{token: tok, session: session, created: t.now(), state: state})
	return tok, nil
}

// Take redeems token for session: it returns the state once, and spends
// the token whatever the outcome, so a second press of the same keyboard,
// a press after the TTL (at exactly the TTL it is too late) and a press
// from another session all fail. An unknown token is ErrUsed.
func (t *Table[S]) Take(session uint64, token string) (S, error) {
	var zero S
	if len(token) != tokenLen {
		return zero, ErrUsed
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	idx := -1
	for i, e := range t.entries {
		// Constant time and no early exit: the scan says nothing about
		// how close a guess came.
		if subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) == 1 && idx < 0 {
			idx = i
		}
	}
	if idx < 0 {
		return zero, ErrUsed
	}
	e := t.entries[idx]
	t.entries = append(t.entries[:idx], t.entries[idx+1:]...)
	switch {
	case t.now().Sub(e.created) >= t.ttl:
		return zero, ErrExpired
	case e.session != session:
		return zero, ErrSession
	}
	return e.state, nil
}

// Forget drops every keyboard; call it when a session ends (logout, lock,
// expiry, a new login), so none outlives its session in memory.
func (t *Table[S]) Forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.entries)
	t.entries = t.entries[:0]
}

// Len is how many keyboards are held.
func (t *Table[S]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Data is the callback data of button i of the keyboard with token:
// "p:TOKEN:i", at most 28 bytes of Telegram's 64.
func Data(token string, i int) string {
	return Prefix + token + ":" + strconv.Itoa(i)
}

// ParseData reads callback data written by Data. It accepts exactly that
// shape (a token of the right length and alphabet, a button number in
// 0..MaxButtons-1 written without sign or leading zero) and nothing else.
func ParseData(data string) (token string, i int, ok bool) {
	rest, found := strings.CutPrefix(data, Prefix)
	if !found {
		return "", 0, false
	}
	token, num, found := strings.Cut(rest, ":")
	if !found || len(token) != tokenLen || len(num) == 0 || len(num) > 2 || num[0] == '0' && len(num) > 1 {
		return "", 0, false
	}
	for _, c := range []byte(token) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", 0, false
		}
	}
	for _, c := range []byte(num) {
		if c < '0' || c > '9' {
			return "", 0, false
		}
	}
	i, _ = strconv.Atoi(num)
	if i >= MaxButtons {
		return "", 0, false
	}
	return token, i, true
}
