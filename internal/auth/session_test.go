package auth

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func loggedIn(t *testing.T) (*Authenticator, *clock, Config) {
	t.Helper()
	a, clk, c := newAuth(t, nil)
	if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
		t.Fatalf("login: got %q, want ok", r.Event)
	}
	return a, clk, c
}

// Expired means elapsed ≥ limit: at exactly the limit the session is gone.
func TestSessionExpiryAtTheBoundary(t *testing.T) {
	const idle, abs = 15 * time.Minute, 12 * time.Hour
	tests := []struct {
		name  string
		steps func(a *Authenticator, clk *clock)
		alive bool
	}{
		{"fresh", func(a *Authenticator, clk *clock) {}, true},
		{"idle 1ns short", func(a *Authenticator, clk *clock) { clk.Add(idle - time.Nanosecond) }, true},
		{"idle exactly", func(a *Authenticator, clk *clock) { clk.Add(idle) }, false},
		{"touched, then idle 1ns short", func(a *Authenticator, clk *clock) {
			clk.Add(10 * time.Minute)
			a.Touch(owner)
			clk.Add(idle - time.Nanosecond)
		}, true},
		{"touched, then idle exactly", func(a *Authenticator, clk *clock) {
			clk.Add(10 * time.Minute)
			a.Touch(owner)
			clk.Add(idle)
		}, false},
		{"active until 1ns before the absolute end", func(a *Authenticator, clk *clock) {
			for elapsed := time.Duration(0); elapsed < abs-10*time.Minute; elapsed += 10 * time.Minute {
				clk.Add(10 * time.Minute)
				a.Touch(owner)
			}
			clk.Add(10*time.Minute - time.Nanosecond)
		}, true},
		{"active until the absolute end exactly", func(a *Authenticator, clk *clock) {
			for elapsed := time.Duration(0); elapsed < abs-10*time.Minute; elapsed += 10 * time.Minute {
				clk.Add(10 * time.Minute)
				a.Touch(owner)
			}
			clk.Add(10 * time.Minute)
		}, false},
		{"touch after expiry does not revive", func(a *Authenticator, clk *clock) {
			clk.Add(idle)
			a.Touch(owner)
			clk.Add(-time.Minute) // even if the clock steps back
		}, false},
		{"logout", func(a *Authenticator, clk *clock) { a.Logout(owner) }, false},
		{"logout from another chat does nothing", func(a *Authenticator, clk *clock) { a.Logout(-1001) }, true},
		{"touch from another chat does not count", func(a *Authenticator, clk *clock) {
			clk.Add(10 * time.Minute)
			a.Touch(-1001)
			clk.Add(5 * time.Minute)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clk, _ := loggedIn(t)
			tt.steps(a, clk)
			info, ok := a.Session(owner)
			if ok != tt.alive {
				t.Fatalf("got alive=%v, want %v", ok, tt.alive)
			}
			if st := a.Status(); st.Session != tt.alive {
				t.Errorf("status: got session=%v, want %v", st.Session, tt.alive)
			}
			if ok && (info.IdleLeft <= 0 || info.AbsoluteLeft <= 0 || info.IdleLeft > info.AbsoluteLeft || info.ChatID != owner) {
				t.Errorf("got %+v, want positive times left, idle ≤ absolute, bound to the owner's chat", info)
			}
		})
	}
}

func TestSessionInfo(t *testing.T) {
	a, clk, _ := loggedIn(t)
	clk.Add(4 * time.Minute)
	a.Touch(owner)
	clk.Add(time.Minute)
	info, ok := a.Session(owner)
	if !ok {
		t.Fatal("got no session")
	}
	if info.IdleLeft != 14*time.Minute || info.AbsoluteLeft != 12*time.Hour-5*time.Minute {
		t.Errorf("got idle %v absolute %v, want 14m and 11h55m", info.IdleLeft, info.AbsoluteLeft)
	}
	// Near the absolute end, idle time left is capped by it.
	b, clk2, _ := loggedIn(t)
	for range 71 {
		clk2.Add(10 * time.Minute)
		b.Touch(owner)
	}
	clk2.Add(5 * time.Minute)
	info, ok = b.Session(owner)
	if !ok || info.IdleLeft != 5*time.Minute || info.AbsoluteLeft != 5*time.Minute {
		t.Errorf("near the absolute end: got %+v ok=%v, want idle left capped at 5m", info, ok)
	}
	if _, ok := b.Session(-1001); ok {
		t.Error("session for another chat: got one, want none")
	}
}

func TestNewLoginReplacesSession(t *testing.T) {
	a, clk, _ := loggedIn(t)
	first, _ := a.Session(owner)
	clk.Add(31 * time.Second)
	if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
		t.Fatal(r.Event)
	}
	second, _ := a.Session(owner)
	if !second.Started.After(first.Started) {
		t.Errorf("got started %v, want a new session after %v", second.Started, first.Started)
	}
	if first.ID == 0 || second.ID == first.ID {
		t.Errorf("got session IDs %d then %d, want a new one for the new session", first.ID, second.ID)
	}
	a.Logout(owner)
	clk.Add(31 * time.Second)
	if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
		t.Fatal(r.Event)
	}
	if third, _ := a.Session(owner); third.ID == second.ID || third.ID == first.ID {
		t.Errorf("after a logout and a login: session ID %d, want one not used before (%d, %d)", third.ID, first.ID, second.ID)
	}
}

// held is a Held that counts its releases.
type held struct {
	mu  sync.Mutex
	why []error
}

func (h *held) Release(why error) {
	h.mu.Lock()
	h.why = append(h.why, why)
	h.mu.Unlock()
}

func (h *held) releases() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.why...)
}

// releasedOnce checks that h was released exactly once, with want (nil:
// never).
func releasedOnce(t *testing.T, h *held, want error) {
	t.Helper()
	got := h.releases()
	switch {
	case want == nil && len(got) != 0:
		t.Errorf("released %v, want never released", got)
	case want != nil && (len(got) != 1 || !errors.Is(got[0], want)):
		t.Errorf("released %v, want exactly once with %v", got, want)
	}
}

func TestConfirm(t *testing.T) {
	const stranger int64 = 777
	tests := []struct {
		name string
		// between runs after NewConfirm and before the press
		between func(t *testing.T, a *Authenticator, clk *clock)
		user    int64
		chat    int64
		want    error
		// released is how the Held must have been released after the
		// press; nil: never (handed back, or still pending).
		released error
	}{
		{"owner, in time", func(*testing.T, *Authenticator, *clock) {}, owner, owner, nil, nil},
		{"1ns before expiry", func(_ *testing.T, _ *Authenticator, clk *clock) { clk.Add(ConfirmTTL - time.Nanosecond) }, owner, owner, nil, nil},
		{"at expiry exactly", func(_ *testing.T, _ *Authenticator, clk *clock) { clk.Add(ConfirmTTL) }, owner, owner, ErrConfirmExpired, ErrConfirmExpired},
		{"pressed by someone else", func(*testing.T, *Authenticator, *clock) {}, stranger, owner, ErrConfirmNotOwner, nil},
		{"pressed by someone else in their chat", func(*testing.T, *Authenticator, *clock) {}, stranger, stranger, ErrConfirmNotOwner, nil},
		{"owner, in a group", func(*testing.T, *Authenticator, *clock) {}, owner, -1001, ErrConfirmNotOwner, nil},
		{"after logout", func(_ *testing.T, a *Authenticator, _ *clock) { a.Logout(owner) }, owner, owner, ErrConfirmInvalid, ErrConfirmNoSession},
		{"after logout and a new login", func(t *testing.T, a *Authenticator, clk *clock) {
			a.Logout(owner)
			clk.Add(31 * time.Second)
			if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
				t.Fatal(r.Event)
			}
		}, owner, owner, ErrConfirmInvalid, ErrConfirmNoSession},
		{"after a new login", func(t *testing.T, a *Authenticator, clk *clock) {
			clk.Add(31 * time.Second)
			if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
				t.Fatal(r.Event)
			}
		}, owner, owner, ErrConfirmInvalid, ErrConfirmNoSession},
		{"after lock", func(_ *testing.T, a *Authenticator, _ *clock) { _ = a.Lock(owner) }, owner, owner, ErrConfirmInvalid, ErrConfirmNoSession},
		{"after VoidConfirms", func(_ *testing.T, a *Authenticator, _ *clock) { a.VoidConfirms() }, owner, owner, ErrConfirmInvalid, ErrConfirmVoided},
		{"prompt older than 60s in a live session", func(_ *testing.T, a *Authenticator, clk *clock) {
			clk.Add(14 * time.Minute)
			a.Touch(owner)
			a.NewConfirm(owner, &held{}) // the prompt below is 14m old
		}, owner, owner, ErrConfirmExpired, ErrConfirmExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clk, _ := loggedIn(t)
			h := &held{}
			tok := a.NewConfirm(owner, h)
			if tok == "" {
				t.Fatal("got no token in a live session")
			}
			tt.between(t, a, clk)
			got, err := a.Confirm(tt.user, tt.chat, tok)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got err %v, want %v", err, tt.want)
			}
			if tt.want == nil && got != Held(h) {
				t.Errorf("got %v, want the Held given to NewConfirm", got)
			}
			if tt.want != nil && got != nil {
				t.Errorf("got %v with an error, want none", got)
			}
			releasedOnce(t, h, tt.released)
		})
	}
}

func TestConfirmWorksOnce(t *testing.T) {
	a, _, _ := loggedIn(t)
	h := &held{}
	tok := a.NewConfirm(owner, h)
	// Someone else's press does not spend the owner's token...
	if _, err := a.Confirm(777, owner, tok); !errors.Is(err, ErrConfirmNotOwner) {
		t.Fatalf("stranger: got %v, want %v", err, ErrConfirmNotOwner)
	}
	if p, err := a.Confirm(owner, owner, tok); err != nil || p != Held(h) {
		t.Fatalf("owner: got %v, %v, want the Held, nil", p, err)
	}
	// ...and the owner's press works exactly once.
	if _, err := a.Confirm(owner, owner, tok); !errors.Is(err, ErrConfirmInvalid) {
		t.Errorf("replayed press: got %v, want %v", err, ErrConfirmInvalid)
	}
	// What was handed back is the caller's: auth never releases it.
	a.VoidConfirms()
	a.Logout(owner)
	releasedOnce(t, h, nil)
	// An expired press spends the token too.
	a2, _, _ := loggedIn(t)
	h2 := &held{}
	tok2 := a2.NewConfirm(owner, h2)
	a2.c.Now = func() time.Time { return t0.Add(ConfirmTTL) }
	a2.Confirm(owner, owner, tok2)
	a2.c.Now = func() time.Time { return t0 }
	if _, err := a2.Confirm(owner, owner, tok2); !errors.Is(err, ErrConfirmInvalid) {
		t.Errorf("press after an expired press: got %v, want %v", err, ErrConfirmInvalid)
	}
	releasedOnce(t, h2, ErrConfirmExpired)
}

// TestConfirmLifetime: every way a confirmation dies releases what it
// holds exactly once, at the moment it dies, and never what a press
// handed back.
func TestConfirmLifetime(t *testing.T) {
	t.Run("sweep releases the expired and keeps them for the answer", func(t *testing.T) {
		a, clk, _ := loggedIn(t)
		h := &held{}
		tok := a.NewConfirm(owner, h)
		clk.Add(ConfirmTTL)
		a.SweepConfirms()
		releasedOnce(t, h, ErrConfirmExpired)
		if _, err := a.Confirm(owner, owner, tok); !errors.Is(err, ErrConfirmExpired) {
			t.Errorf("press after the sweep: got %v, want %v", err, ErrConfirmExpired)
		}
		releasedOnce(t, h, ErrConfirmExpired)
	})
	t.Run("eviction", func(t *testing.T) {
		a, _, _ := loggedIn(t)
		hs := make([]*held, maxPending+2)
		for i := range hs {
			hs[i] = &held{}
			a.NewConfirm(owner, hs[i])
		}
		releasedOnce(t, hs[0], ErrConfirmEvicted)
		releasedOnce(t, hs[1], ErrConfirmEvicted)
		releasedOnce(t, hs[2], nil)
		if n := a.VoidConfirms(); n != maxPending {
			t.Errorf("VoidConfirms: got %d, want %d", n, maxPending)
		}
		for _, h := range hs[2:] {
			releasedOnce(t, h, ErrConfirmVoided)
		}
	})
	t.Run("void one", func(t *testing.T) {
		a, _, _ := loggedIn(t)
		h, other := &held{}, &held{}
		tok := a.NewConfirm(owner, h)
		a.NewConfirm(owner, other)
		a.Void(tok)
		releasedOnce(t, h, ErrConfirmVoided)
		releasedOnce(t, other, nil)
		a.Void(tok)
		releasedOnce(t, h, ErrConfirmVoided)
	})
	t.Run("session idles out", func(t *testing.T) {
		a, clk, _ := loggedIn(t)
		h := &held{}
		a.NewConfirm(owner, h)
		clk.Add(15 * time.Minute)
		a.Session(owner)
		releasedOnce(t, h, ErrConfirmNoSession)
	})
	t.Run("release may call back into auth", func(t *testing.T) {
		a, _, _ := loggedIn(t)
		a.NewConfirm(owner, releaseFunc(func(error) { a.Status() }))
		done := make(chan struct{})
		go func() { a.VoidConfirms(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Release ran under the lock: deadlock")
		}
	})
}

type releaseFunc func(error)

func (f releaseFunc) Release(why error) { f(why) }

func TestConfirmTokens(t *testing.T) {
	a, _, _ := loggedIn(t)
	seen := map[string]bool{}
	for i := range 2 * maxPending {
		tok := a.NewConfirm(owner, &held{})
		if len("r:"+tok) > 64 {
			t.Fatalf("callback data %d bytes, want ≤ 64", len("r:"+tok))
		}
		if len(tok) != tokenLen {
			t.Fatalf("token length: got %d, want %d", len(tok), tokenLen)
		}
		for _, c := range tok {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				t.Fatalf("token has %q, want base64url only", c)
			}
		}
		if seen[tok] {
			t.Fatalf("token %d repeated", i)
		}
		seen[tok] = true
	}
	if len(a.confirms) != maxPending {
		t.Errorf("pending: got %d, want the cap %d", len(a.confirms), maxPending)
	}
	for _, bad := range []string{"", "x", "AAAAAAAAAAAAAAAAAAAAAA", string(make([]byte, 22)), "r:AAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := a.Confirm(owner, owner, bad); !errors.Is(err, ErrConfirmInvalid) {
			t.Errorf("token %q: got %v, want %v", bad, err, ErrConfirmInvalid)
		}
	}
	b, _, _ := newAuth(t, nil)
	h := &held{}
	if tok := b.NewConfirm(owner, h); tok != "" {
		t.Errorf("without a session: got token %q, want none", tok)
	}
	releasedOnce(t, h, nil) // still the caller's
}

func TestConfirmNeedsLiveSession(t *testing.T) {
	a, clk, _ := newAuth(t, func(c *Config) { c.SessionIdle = 30 * time.Second })
	if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
		t.Fatal(r.Event)
	}
	tok := a.NewConfirm(owner, &held{})
	clk.Add(30 * time.Second) // the session idles out; the token is 30s old
	if _, err := a.Confirm(owner, owner, tok); !errors.Is(err, ErrConfirmNoSession) {
		t.Errorf("got %v, want %v", err, ErrConfirmNoSession)
	}
}

// TestTakeExpiry: a session that ran out says why and when, exactly once,
// and only for its own chat; /logout, /lock and a new login are not
// expiries.
func TestTakeExpiry(t *testing.T) {
	const idle, abs = 15 * time.Minute, 12 * time.Hour
	t.Run("idle", func(t *testing.T) {
		a, clk, _ := loggedIn(t)
		start := clk.Now()
		clk.Add(idle - time.Nanosecond)
		if _, ok := a.TakeExpiry(owner); ok {
			t.Fatal("live session: got an expiry")
		}
		clk.Add(time.Hour) // noticed late: the expiry still dates from the limit
		if _, ok := a.TakeExpiry(-1001); ok {
			t.Fatal("another chat: got the owner's expiry")
		}
		e, ok := a.TakeExpiry(owner)
		if !ok || e.Reason != "idle" || e.Limit != idle || !e.At.Equal(start.Add(idle)) {
			t.Fatalf("got %+v, %v, want idle at %v", e, ok, start.Add(idle))
		}
		if _, ok := a.TakeExpiry(owner); ok {
			t.Error("second TakeExpiry: got the expiry again")
		}
	})
	t.Run("lifetime", func(t *testing.T) {
		a, clk, _ := loggedIn(t)
		start := clk.Now()
		for clk.Now().Sub(start) < abs {
			clk.Add(10 * time.Minute)
			a.Touch(owner)
		}
		if _, ok := a.Session(owner); ok {
			t.Fatal("past the lifetime: session alive")
		}
		e, ok := a.TakeExpiry(owner)
		if !ok || e.Reason != "lifetime" || e.Limit != abs || !e.At.Equal(start.Add(abs)) {
			t.Fatalf("got %+v, %v, want lifetime at %v", e, ok, start.Add(abs))
		}
	})
	for _, end := range []struct {
		name string
		f    func(a *Authenticator, clk *clock)
	}{
		{"logout", func(a *Authenticator, clk *clock) { a.Logout(owner) }},
		{"lock", func(a *Authenticator, clk *clock) { a.Lock(owner) }},
		{"expired, then logout", func(a *Authenticator, clk *clock) {
			clk.Add(idle)
			a.Session(owner)
			a.Logout(owner)
		}},
		{"expired, then a new login", func(a *Authenticator, clk *clock) {
			clk.Add(idle)
			a.Session(owner)
			if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
				t.Fatalf("login: %s", r.Reason)
			}
		}},
	} {
		t.Run(end.name, func(t *testing.T) {
			a, clk, _ := loggedIn(t)
			end.f(a, clk)
			if e, ok := a.TakeExpiry(owner); ok {
				t.Errorf("got %+v, want no expiry", e)
			}
		})
	}
}

// TestReconfigure: a reload's auth settings apply to the very next check,
// or not at all.
func TestReconfigure(t *testing.T) {
	t.Run("a shorter idle limit ends a session at once", func(t *testing.T) {
		a, clk, c := loggedIn(t)
		clk.Add(10 * time.Minute)
		c.SessionIdle = 5 * time.Minute
		if err := a.Reconfigure(c); err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Session(owner); ok {
			t.Error("got a live session 10m idle under a 5m limit")
		}
		if e, ok := a.TakeExpiry(owner); !ok || e.Limit != 5*time.Minute {
			t.Errorf("got expiry %+v %v, want the new 5m limit", e, ok)
		}
	})
	t.Run("a shorter lifetime too", func(t *testing.T) {
		a, clk, c := loggedIn(t)
		clk.Add(time.Hour)
		a.Touch(owner)
		c.SessionMax = 30 * time.Minute
		if err := a.Reconfigure(c); err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Session(owner); ok {
			t.Error("got a live session 1h old under a 30m lifetime")
		}
	})
	t.Run("message age", func(t *testing.T) {
		a, clk, c := newAuth(t, nil)
		u := Update{UserID: owner, ChatID: owner, ChatType: "private", Date: clk.Now()}
		clk.Add(20 * time.Second)
		if v := a.Admit(u); v != Allow {
			t.Fatalf("got %v, want allow", v)
		}
		c.MaxMessageAge = 10 * time.Second
		if err := a.Reconfigure(c); err != nil {
			t.Fatal(err)
		}
		if v := a.Admit(u); v != Stale {
			t.Errorf("got %v for a 20s-old message under a 10s limit, want stale", v)
		}
	})
	t.Run("fewer attempts", func(t *testing.T) {
		a, clk, c := newAuth(t, func(c *Config) { c.Attempts = 5 })
		wrong := wrongCode(t, clk.Now())
		for range 4 {
			a.Login(owner, wrong)
		}
		c.Attempts = 3
		if err := a.Reconfigure(c); err != nil {
			t.Fatal(err)
		}
		if r := a.Login(owner, wrong); r.Event != EventLockout {
			t.Errorf("got %q after 4 attempts under a limit of 3, want lockout", r.Event)
		}
	})
	t.Run("refused whole", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			mut  func(*Config)
		}{
			{"owner", func(c *Config) { c.OwnerID++ }},
			{"state file", func(c *Config) { c.StatePath += ".other" }},
			{"secret", func(c *Config) { c.Secret = []byte("KRSXG5CTMVRXEZLU") }},
			{"guessable", func(c *Config) { c.Attempts, c.LockoutMax, c.LockoutBase = 100, time.Second, time.Second }},
			{"zero idle", func(c *Config) { c.SessionIdle = 0 }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				a, clk, c := loggedIn(t)
				bad := c
				bad.SessionIdle = time.Minute // would end the session below
				tt.mut(&bad)
				if err := a.Reconfigure(bad); err == nil {
					t.Fatal("got nil, want the reload refused")
				}
				clk.Add(2 * time.Minute)
				if _, ok := a.Session(owner); !ok {
					t.Error("a refused reconfiguration changed the session limit")
				}
			})
		}
	})
}

func TestLooksLikeCode(t *testing.T) {
	for _, tt := range []struct {
		text string
		want bool
	}{
		{"123456", true}, {" 123 456 ", true}, {"ABCD-EFGH-JKMN-PQRS", true}, {"abcdefghjkmnpqrs", true},
		{"12345", false}, {"1234567", false}, {"/login 123456", false}, {"hello", false}, {"", false},
	} {
		if got := LooksLikeCode(tt.text); got != tt.want {
			t.Errorf("LooksLikeCode(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}
