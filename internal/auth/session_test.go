package auth

import (
	"errors"
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
	}{
		{"owner, in time", func(*testing.T, *Authenticator, *clock) {}, owner, owner, nil},
		{"1ns before expiry", func(_ *testing.T, _ *Authenticator, clk *clock) { clk.Add(ConfirmTTL - time.Nanosecond) }, owner, owner, nil},
		{"at expiry exactly", func(_ *testing.T, _ *Authenticator, clk *clock) { clk.Add(ConfirmTTL) }, owner, owner, ErrConfirmExpired},
		{"pressed by someone else", func(*testing.T, *Authenticator, *clock) {}, stranger, owner, ErrConfirmNotOwner},
		{"pressed by someone else in their chat", func(*testing.T, *Authenticator, *clock) {}, stranger, stranger, ErrConfirmNotOwner},
		{"owner, in a group", func(*testing.T, *Authenticator, *clock) {}, owner, -1001, ErrConfirmNotOwner},
		{"after logout", func(_ *testing.T, a *Authenticator, _ *clock) { a.Logout(owner) }, owner, owner, ErrConfirmInvalid},
		{"after logout and a new login", func(t *testing.T, a *Authenticator, clk *clock) {
			a.Logout(owner)
			clk.Add(31 * time.Second)
			if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
				t.Fatal(r.Event)
			}
		}, owner, owner, ErrConfirmInvalid},
		{"after a new login", func(t *testing.T, a *Authenticator, clk *clock) {
			clk.Add(31 * time.Second)
			if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
				t.Fatal(r.Event)
			}
		}, owner, owner, ErrConfirmInvalid},
		{"after lock", func(_ *testing.T, a *Authenticator, _ *clock) { _ = a.Lock(owner) }, owner, owner, ErrConfirmInvalid},
		{"prompt older than 60s in a live session", func(_ *testing.T, a *Authenticator, clk *clock) {
			clk.Add(14 * time.Minute)
			a.Touch(owner)
			a.NewConfirm(owner, "other") // the prompt below is 14m old
		}, owner, owner, ErrConfirmExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clk, _ := loggedIn(t)
			tok := a.NewConfirm(owner, "payload-1")
			if tok == "" {
				t.Fatal("got no token in a live session")
			}
			tt.between(t, a, clk)
			got, err := a.Confirm(tt.user, tt.chat, tok)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got err %v, want %v", err, tt.want)
			}
			if tt.want == nil && got != "payload-1" {
				t.Errorf("got payload %q, want %q", got, "payload-1")
			}
			if tt.want != nil && got != "" {
				t.Errorf("got payload %q with an error, want none", got)
			}
		})
	}
}

func TestConfirmWorksOnce(t *testing.T) {
	a, _, _ := loggedIn(t)
	tok := a.NewConfirm(owner, "p")
	// Someone else's press does not spend the owner's token...
	if _, err := a.Confirm(777, owner, tok); !errors.Is(err, ErrConfirmNotOwner) {
		t.Fatalf("stranger: got %v, want %v", err, ErrConfirmNotOwner)
	}
	if p, err := a.Confirm(owner, owner, tok); err != nil || p != "p" {
		t.Fatalf("owner: got %q, %v, want p, nil", p, err)
	}
	// ...and the owner's press works exactly once.
	if _, err := a.Confirm(owner, owner, tok); !errors.Is(err, ErrConfirmInvalid) {
		t.Errorf("replayed press: got %v, want %v", err, ErrConfirmInvalid)
	}
	// An expired press spends the token too.
	tok2 := a.NewConfirm(owner, "q")
	a.c.Now = func() time.Time { return t0.Add(ConfirmTTL) }
	a.Confirm(owner, owner, tok2)
	a.c.Now = func() time.Time { return t0 }
	if _, err := a.Confirm(owner, owner, tok2); !errors.Is(err, ErrConfirmInvalid) {
		t.Errorf("press after an expired press: got %v, want %v", err, ErrConfirmInvalid)
	}
}

func TestConfirmTokens(t *testing.T) {
	a, _, _ := loggedIn(t)
	seen := map[string]bool{}
	for i := range 2 * maxPending {
		tok := a.NewConfirm(owner, "p")
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
	if tok := b.NewConfirm(owner, "p"); tok != "" {
		t.Errorf("without a session: got token %q, want none", tok)
	}
}

func TestConfirmNeedsLiveSession(t *testing.T) {
	a, clk, _ := newAuth(t, func(c *Config) { c.SessionIdle = 30 * time.Second })
	if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
		t.Fatal(r.Event)
	}
	tok := a.NewConfirm(owner, "p")
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
