package auth

import (
	"crypto/rand"
	"errors"
	"github.com/relaychat/relay/internal/audit"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RFC 6238 appendix B, SHA-1, reduced to 6 digits (the last six of the
// published 8-digit values): proves codeAt is standard TOTP.
func TestCodeAtRFC6238(t *testing.T) {
	secret := b32.EncodeToString([]byte("12345678901234567890"))
	tests := []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	}
	for _, tt := range tests {
		got, err := codeAt(secret, stepAt(time.Unix(tt.unix, 0)))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("T=%d: got %s, want %s", tt.unix, got, tt.want)
		}
	}
}

func TestStepAt(t *testing.T) {
	for _, tt := range []struct {
		unix int64
		want int64
	}{{0, 0}, {29, 0}, {30, 1}, {59, 1}, {60, 2}, {-1, -1}, {-30, -1}, {-31, -2}} {
		if got := stepAt(time.Unix(tt.unix, 0)); got != tt.want {
			t.Errorf("stepAt(%d): got %d, want %d", tt.unix, got, tt.want)
		}
	}
}

func TestLoginCodes(t *testing.T) {
	tests := []struct {
		name  string
		code  func(t *testing.T, a *Authenticator) string
		chat  int64
		ok    bool
		event audit.Outcome
	}{
		{"current step", func(t *testing.T, a *Authenticator) string { return validCode(t, a, 0) }, owner, true, EventLoginOK},
		{"previous step", func(t *testing.T, a *Authenticator) string { return validCode(t, a, -1) }, owner, true, EventLoginOK},
		{"next step", func(t *testing.T, a *Authenticator) string { return validCode(t, a, 1) }, owner, true, EventLoginOK},
		{"two steps back", func(t *testing.T, a *Authenticator) string { return validCode(t, a, -2) }, owner, false, EventLoginFailed},
		{"two steps ahead", func(t *testing.T, a *Authenticator) string { return validCode(t, a, 2) }, owner, false, EventLoginFailed},
		{"with a space", func(t *testing.T, a *Authenticator) string { c := validCode(t, a, 0); return c[:3] + " " + c[3:] }, owner, true, EventLoginOK},
		{"padded", func(t *testing.T, a *Authenticator) string { return " " + validCode(t, a, 0) + " " }, owner, true, EventLoginOK},
		{"wrong", func(t *testing.T, a *Authenticator) string { return wrongCode(t, a.c.Now()) }, owner, false, EventLoginFailed},
		{"empty", func(t *testing.T, a *Authenticator) string { return "" }, owner, false, EventLoginFailed},
		{"five digits", func(t *testing.T, a *Authenticator) string { return validCode(t, a, 0)[:5] }, owner, false, EventLoginFailed},
		{"seven digits", func(t *testing.T, a *Authenticator) string { return validCode(t, a, 0) + "0" }, owner, false, EventLoginFailed},
		{"unicode digits", func(t *testing.T, a *Authenticator) string { return "١٢٣٤٥٦" }, owner, false, EventLoginFailed},
		{"valid code, other chat", func(t *testing.T, a *Authenticator) string { return validCode(t, a, 0) }, -100123, false, EventLoginFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, _ := newAuth(t, nil)
			res := a.Login(tt.chat, tt.code(t, a))
			if res.OK != tt.ok || res.Event != tt.event {
				t.Fatalf("got ok=%v event=%q (%s), want ok=%v event=%q", res.OK, res.Event, res.Reason, tt.ok, tt.event)
			}
			_, has := a.Session(owner)
			if has != tt.ok {
				t.Errorf("session after login: got %v, want %v", has, tt.ok)
			}
			if !tt.ok && res.Reason == "" {
				t.Error("failed login without a reason")
			}
		})
	}
}

func TestReplay(t *testing.T) {
	tests := []struct {
		name   string
		first  int64 // step offset of the accepted code
		second int64 // step offset tried afterwards
		want   audit.Outcome
	}{
		{"same code", 0, 0, EventReplay},
		{"older step", 0, -1, EventReplay},
		{"newest step then current", 1, 0, EventReplay},
		{"newer step", -1, 0, EventLoginOK},
		{"next step", 0, 1, EventLoginOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, _ := newAuth(t, nil)
			if res := a.Login(owner, validCode(t, a, tt.first)); !res.OK {
				t.Fatalf("first login: got %q, want ok", res.Event)
			}
			a.Logout(owner)
			res := a.Login(owner, validCode(t, a, tt.second))
			if res.Event != tt.want {
				t.Errorf("second login: got %q (%s), want %q", res.Event, res.Reason, tt.want)
			}
			if tt.want == EventReplay && !strings.Contains(res.Reason, "already used") {
				t.Errorf("replay reason: got %q, want it to say already used", res.Reason)
			}
		})
	}
}

func TestReplayAcrossRestart(t *testing.T) {
	a, clk, c := newAuth(t, nil)
	code := validCode(t, a, 0)
	if res := a.Login(owner, code); !res.OK {
		t.Fatalf("login: got %q, want ok", res.Event)
	}
	b := reopen(t, a, c)
	if _, ok := b.Session(owner); ok {
		t.Error("session survived a restart: got true, want false")
	}
	if res := b.Login(owner, code); res.OK || res.Event != EventReplay {
		t.Errorf("replay after restart: got ok=%v event=%q, want replay", res.OK, res.Event)
	}
	if res := b.StepUp(owner, code); res.OK || res.Event != EventReplay {
		t.Errorf("step-up replay after restart: got ok=%v event=%q, want replay", res.OK, res.Event)
	}
	clk.Add(31 * time.Second) // out of the rate window, into the next step
	if res := b.Login(owner, validCode(t, b, 0)); !res.OK {
		t.Errorf("next step after restart: got %q (%s), want ok", res.Event, res.Reason)
	}
}

// Two concurrent logins with the same code: exactly one wins.
func TestReplayConcurrent(t *testing.T) {
	a, _, _ := newAuth(t, nil)
	code := validCode(t, a, 0)
	results := make(chan LoginResult, 2)
	for range 2 {
		go func() { results <- a.Login(owner, code) }()
	}
	ok := 0
	for range 2 {
		if r := <-results; r.OK {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("got %d successful logins with one code, want 1", ok)
	}
}

func TestLockoutGrowth(t *testing.T) {
	a, clk, c := newAuth(t, nil)
	// Failures 1 and 2 are free (within the window), the 3rd locks for
	// 1m, and each further failure, tried when the lockout ends, doubles.
	want := []time.Duration{0, 0, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 32 * time.Minute, 64 * time.Minute, 128 * time.Minute, 256 * time.Minute,
		512 * time.Minute, 1024 * time.Minute, 24 * time.Hour, 24 * time.Hour, 24 * time.Hour}
	for i, w := range want {
		clk.Add(31 * time.Second) // always outside the window
		now := clk.Now()
		res := a.Login(owner, wrongCode(t, now))
		if res.OK || res.Event != EventLoginFailed {
			t.Fatalf("failure %d: got ok=%v event=%q, want login_failed", i+1, res.OK, res.Event)
		}
		var got time.Duration
		if !res.LockedUntil.IsZero() {
			got = res.LockedUntil.Sub(now)
		}
		if got != w {
			t.Errorf("failure %d: got lockout %v, want %v", i+1, got, w)
		}
		if w > 0 && !strings.Contains(res.Reason, "locked out for "+w.String()) {
			t.Errorf("failure %d: reason %q does not say %q", i+1, res.Reason, "locked out for "+w.String())
		}
		if w == 0 {
			continue
		}
		// During the lockout even the valid code is refused unverified.
		clk.Set(now.Add(w - time.Second))
		valid := validCode(t, a, 0)
		if r := a.Login(owner, valid); r.OK || r.Event != EventLockout || !r.LockedUntil.Equal(now.Add(w)) {
			t.Fatalf("failure %d: valid code during lockout: got ok=%v event=%q until=%v, want lockout until %v", i+1, r.OK, r.Event, r.LockedUntil, now.Add(w))
		}
		if r := a.StepUp(owner, valid); r.OK || r.Event != EventLockout {
			t.Fatalf("failure %d: step-up during lockout: got ok=%v event=%q, want lockout", i+1, r.OK, r.Event)
		}
		clk.Set(now.Add(w)) // exactly at the end the lockout is over
	}
	st := a.Status()
	if st.Failures != len(want) {
		t.Errorf("status failures: got %d, want %d", st.Failures, len(want))
	}
	// Persisted: a restart keeps the count and the lockout.
	clk.Set(st.LockedUntil.Add(-time.Second))
	b := reopen(t, a, c)
	if got := b.Status(); got.Failures != st.Failures || !got.LockedUntil.Equal(st.LockedUntil) {
		t.Errorf("after restart: got failures=%d until=%v, want %d, %v", got.Failures, got.LockedUntil, st.Failures, st.LockedUntil)
	}
	if r := b.Login(owner, validCode(t, b, 0)); r.Event != EventLockout {
		t.Errorf("valid code after restart inside the lockout: got %q, want lockout", r.Event)
	}
	clk.Set(st.LockedUntil)
	if r := b.Login(owner, validCode(t, b, 0)); !r.OK {
		t.Fatalf("valid code after the lockout: got %q (%s), want ok", r.Event, r.Reason)
	}
	if got := b.Status(); got.Failures != 0 || !got.LockedUntil.IsZero() {
		t.Errorf("after success: got failures=%d until=%v, want 0 and none", got.Failures, got.LockedUntil)
	}
}

func TestLockoutPersistedBeforeAnswer(t *testing.T) {
	a, clk, c := newAuth(t, nil)
	for range 3 {
		a.Login(owner, wrongCode(t, clk.Now()))
	}
	// Read the file as a fresh process would, without a. It already holds
	// the lockout that the third answer reported.
	st, err := ReadStatus(c.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Failures != 3 || !st.LockedUntil.Equal(clk.Now().Add(time.Minute)) {
		t.Errorf("state file: got failures=%d until=%v, want 3, %v", st.Failures, st.LockedUntil, clk.Now().Add(time.Minute))
	}
}

func TestRateWindowCountsSuccesses(t *testing.T) {
	a, clk, _ := newAuth(t, nil)
	// Three successes within 30 s use up the window...
	for off := int64(-1); off <= 1; off++ {
		if r := a.Login(owner, validCode(t, a, off)); !r.OK {
			t.Fatalf("login %d: got %q, want ok", off, r.Event)
		}
	}
	clk.Add(29 * time.Second)
	r := a.Login(owner, validCode(t, a, 1))
	if r.OK || r.Event != EventLockout {
		t.Fatalf("4th attempt inside the window: got ok=%v event=%q, want lockout", r.OK, r.Event)
	}
	if want := t0.Add(30 * time.Second); !r.LockedUntil.Equal(want) {
		t.Errorf("window end: got %v, want %v", r.LockedUntil, want)
	}
	// ...and free up exactly when the first attempt leaves it.
	clk.Set(t0.Add(30 * time.Second))
	if r := a.Login(owner, validCode(t, a, 1)); !r.OK {
		t.Errorf("after the window: got %q (%s), want ok", r.Event, r.Reason)
	}
}

func TestSuccessResetsFailures(t *testing.T) {
	a, clk, _ := newAuth(t, nil)
	a.Login(owner, wrongCode(t, clk.Now()))
	a.Login(owner, wrongCode(t, clk.Now()))
	if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
		t.Fatalf("login: got %q, want ok", r.Event)
	}
	clk.Add(time.Minute)
	a.Login(owner, wrongCode(t, clk.Now()))
	r := a.Login(owner, wrongCode(t, clk.Now()))
	if !r.LockedUntil.IsZero() {
		t.Errorf("2 failures after a success: got lockout until %v, want none", r.LockedUntil)
	}
	if got := a.Status().Failures; got != 2 {
		t.Errorf("failures: got %d, want 2", got)
	}
}

// A failed state write must never hand out an unpersisted success.
func TestStateWriteFailureFailsClosed(t *testing.T) {
	boom := errors.New("disk full")
	t.Run("before verification", func(t *testing.T) {
		a, _, _ := newAuth(t, nil)
		a.save = func(string, *state) error { return boom }
		r := a.Login(owner, validCode(t, a, 0))
		if r.OK || r.Event != EventStateError || !errors.Is(r.Err, boom) {
			t.Fatalf("got ok=%v event=%q err=%v, want auth_state_error wrapping the cause", r.OK, r.Event, r.Err)
		}
		if _, ok := a.Session(owner); ok {
			t.Error("got a session, want none")
		}
		if got := a.Status().Failures; got != 1 {
			t.Errorf("failures in memory: got %d, want 1 (the attempt still counts)", got)
		}
	})
	t.Run("after verification", func(t *testing.T) {
		a, _, c := newAuth(t, nil)
		calls := 0
		a.save = func(p string, s *state) error {
			calls++
			if calls == 2 {
				return boom
			}
			return saveState(p, s)
		}
		code := validCode(t, a, 0)
		r := a.Login(owner, code)
		if r.OK || r.Event != EventStateError {
			t.Fatalf("got ok=%v event=%q, want auth_state_error", r.OK, r.Event)
		}
		if _, ok := a.Session(owner); ok {
			t.Error("got a session, want none")
		}
		// On disk the attempt counted as a failure, never as a success.
		if got := reopen(t, a, c).Status(); got.Failures != 1 {
			t.Errorf("state file: got failures=%d, want 1", got.Failures)
		}
		a.save = saveState
		if r := a.Login(owner, code); r.Event != EventReplay {
			t.Errorf("same code again: got %q, want replay (the step stays spent)", r.Event)
		}
	})
}

func TestStepUp(t *testing.T) {
	t.Run("needs a step newer than any used", func(t *testing.T) {
		a, _, _ := newAuth(t, nil)
		code := validCode(t, a, 0)
		if r := a.Login(owner, code); !r.OK {
			t.Fatal(r.Event)
		}
		if r := a.StepUp(owner, code); r.OK || r.Event != EventReplay {
			t.Errorf("login code reused for step-up: got ok=%v event=%q, want replay", r.OK, r.Event)
		}
		r := a.StepUp(owner, validCode(t, a, 1))
		if !r.OK || r.Event != EventStepUpOK {
			t.Errorf("fresh code: got ok=%v event=%q, want stepup_ok", r.OK, r.Event)
		}
		if r := a.StepUp(owner, validCode(t, a, 1)); r.OK {
			t.Error("step-up code reused: got ok, want replay")
		}
	})
	t.Run("whatever the session state", func(t *testing.T) {
		a, _, _ := newAuth(t, nil)
		if r := a.StepUp(owner, validCode(t, a, 0)); !r.OK {
			t.Errorf("without a session: got %q, want ok", r.Event)
		}
		if _, ok := a.Session(owner); ok {
			t.Error("step-up started a session")
		}
	})
	t.Run("wrong code counts against the limiter", func(t *testing.T) {
		a, clk, _ := newAuth(t, nil)
		for range 3 {
			if r := a.StepUp(owner, wrongCode(t, clk.Now())); r.OK || r.Event != EventStepUpFailed {
				t.Fatalf("got ok=%v event=%q, want stepup_failed", r.OK, r.Event)
			}
		}
		if r := a.Login(owner, validCode(t, a, 0)); r.Event != EventLockout {
			t.Errorf("login after 3 failed step-ups: got %q, want lockout", r.Event)
		}
	})
	t.Run("other chat", func(t *testing.T) {
		a, _, _ := newAuth(t, nil)
		if r := a.StepUp(-1001, validCode(t, a, 0)); r.OK {
			t.Error("got ok in another chat, want refused")
		}
	})
}

func TestRecoveryCodes(t *testing.T) {
	a, clk, c, codes := enrolled(t, 10)
	if len(codes) != 10 {
		t.Fatalf("got %d recovery codes, want 10", len(codes))
	}
	typed := strings.ToLower(strings.ReplaceAll(codes[0], "-", " "))
	r := a.Login(owner, typed)
	if !r.OK || !r.UsedRecovery || r.Event != EventRecoveryUsed || r.RecoveryLeft != 9 {
		t.Fatalf("recovery login: got ok=%v used=%v event=%q left=%d, want ok, used, recovery_used, 9", r.OK, r.UsedRecovery, r.Event, r.RecoveryLeft)
	}
	a.Logout(owner)
	clk.Add(31 * time.Second)
	if r := a.Login(owner, codes[0]); r.OK || r.Event != EventReplay {
		t.Errorf("spent code again: got ok=%v event=%q, want replay", r.OK, r.Event)
	}
	b := reopen(t, a, c)
	clk.Add(31 * time.Second)
	if r := b.Login(owner, codes[0]); r.OK || r.Event != EventReplay {
		t.Errorf("spent code after restart: got ok=%v event=%q, want replay", r.OK, r.Event)
	}
	clk.Add(31 * time.Second)
	if r := b.Login(owner, codes[1]); !r.OK || r.RecoveryLeft != 8 {
		t.Errorf("second code after restart: got ok=%v left=%d, want ok, 8", r.OK, r.RecoveryLeft)
	}
	clk.Add(31 * time.Second)
	if r := b.StepUp(owner, codes[2]); r.OK {
		t.Error("recovery code for step-up: got ok, want refused")
	}
	clk.Add(31 * time.Second)
	if r := b.Login(owner, "0000-0000-0000-0000"); r.OK || r.Event != EventLoginFailed {
		t.Errorf("unknown recovery code: got ok=%v event=%q, want login_failed", r.OK, r.Event)
	}
	if got := b.Status().RecoveryLeft; got != 8 {
		t.Errorf("recovery left: got %d, want 8 (step-up must not spend one)", got)
	}
}

func TestRecoveryCodeFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := newRecoveryCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 19 || c[4] != '-' || c[9] != '-' || c[14] != '-' {
			t.Fatalf("code %q: want XXXX-XXXX-XXXX-XXXX", c)
		}
		n, ok := normalizeRecovery(c)
		if !ok || len(n) != recoveryLen {
			t.Fatalf("own code does not normalize")
		}
		if seen[n] {
			t.Fatal("duplicate recovery code in 200 draws")
		}
		seen[n] = true
	}
	// 16 characters of a 32-letter alphabet: 80 bits, above the 50 required.
	if bits := recoveryLen * 5; bits < 50 || recoveryBytes*8 != bits {
		t.Errorf("got %d bits, want ≥ 50 and all of them random", bits)
	}
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"ABCD-EFGH-JKMN-PQRS", "ABCDEFGHJKMNPQRS", true},
		{"abcd efgh jkmn pqrs", "ABCDEFGHJKMNPQRS", true},
		{"OOOO-IIII-LLLL-0000", "0000111111110000", true},
		{"ABCD-EFGH-JKMN-PQR", "", false},
		{"ABCD-EFGH-JKMN-PQRST", "", false},
		{"UUUU-EFGH-JKMN-PQRS", "", false},
		{"ABCD_EFGH_JKMN_PQRS", "", false},
		{"123456", "", false},
		{strings.Repeat("-", 100) + "ABCDEFGHJKMNPQRS", "", false},
	} {
		got, ok := normalizeRecovery(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("normalizeRecovery(%q): got %q,%v, want %q,%v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLock(t *testing.T) {
	a, clk, c, codes := enrolled(t, 2)
	clk.Add(40 * time.Second)
	if r := a.Login(owner, validCode(t, a, 0)); !r.OK {
		t.Fatal(r.Event)
	}
	tok := a.NewConfirm(owner, &held{})
	clk.Add(5 * time.Second)
	if err := a.Lock(owner); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Session(owner); ok {
		t.Error("session after /lock: got live, want ended")
	}
	if _, err := a.Confirm(owner, owner, tok); err == nil {
		t.Error("confirmation after /lock: got accepted, want refused")
	}
	if st := a.Status(); !st.Locked {
		t.Error("status after /lock: got locked=false, want true")
	}
	if r := a.StepUp(owner, validCode(t, a, 1)); r.OK || r.Event != EventLocked {
		t.Errorf("step-up while locked: got ok=%v event=%q, want locked", r.OK, r.Event)
	}
	if r := a.Login(owner, codes[0]); r.OK || r.Event != EventLocked {
		t.Errorf("recovery code while locked: got ok=%v event=%q, want locked", r.OK, r.Event)
	}
	// The lock survives a restart.
	b := reopen(t, a, c)
	if !b.Status().Locked {
		t.Fatal("after restart: got locked=false, want true")
	}
	// A code from the step current at the lock (seen, perhaps, on the
	// owner's screen) does not unlock, though it was never used.
	if r := b.Login(owner, validCode(t, b, 0)); r.OK || r.Event != EventReplay {
		t.Errorf("code from the lock's step: got ok=%v event=%q, want replay", r.OK, r.Event)
	}
	clk.Add(30 * time.Second)
	if r := b.Login(owner, validCode(t, b, 0)); !r.OK {
		t.Fatalf("code from a newer step: got %q (%s), want ok", r.Event, r.Reason)
	}
	if b.Status().Locked {
		t.Error("after a fresh login: got locked=true, want false")
	}
	if reopen(t, b, c).Status().Locked {
		t.Error("after restart: got locked=true, want the unlock persisted")
	}
	if _, ok := b.Session(owner); !ok {
		t.Error("after a fresh login: got no session, want one")
	}
}

func TestLockPersistFailureStillLocks(t *testing.T) {
	a, _, _ := newAuth(t, nil)
	a.Login(owner, validCode(t, a, 0))
	a.save = func(string, *state) error { return errors.New("disk full") }
	if err := a.Lock(owner); err == nil {
		t.Error("got nil error, want the write failure reported")
	}
	if _, ok := a.Session(owner); ok || !a.Status().Locked {
		t.Error("a failed write must still lock in memory")
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no owner", func(c *Config) { c.OwnerID = 0 }, "owner_id"},
		{"negative owner", func(c *Config) { c.OwnerID = -5 }, "owner_id"},
		{"zero idle", func(c *Config) { c.SessionIdle = 0 }, "session_idle"},
		{"zero max age", func(c *Config) { c.MaxMessageAge = 0 }, "max_message_age"},
		{"zero attempts", func(c *Config) { c.Attempts = 0 }, "login_attempts"},
		{"max below base", func(c *Config) { c.LockoutMax = time.Second }, "lockout_max"},
		{"no state path", func(c *Config) { c.StatePath = "" }, "state_dir"},
		{"no secret", func(c *Config) { c.Secret = nil }, "totp secret is empty"},
		{"short secret", func(c *Config) { c.Secret = []byte("JBSWY3DPEHPK3PXP") }, "too short"},
		{"not base32", func(c *Config) { c.Secret = []byte("this is not base32!") }, "not valid base32"},
		{"guessable limits", func(c *Config) { c.LockoutBase, c.LockoutMax = time.Second, 10*time.Second }, "million guesses"},
		{"30s lockout cap", func(c *Config) { c.LockoutBase, c.LockoutMax = 30*time.Second, 30*time.Second }, "million guesses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: t0}
			c := testConfig(t, clk)
			tt.mut(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			assertNoSecret(t, "error", err.Error(), testSecret, string(c.Secret))
		})
	}
}

func TestCorruptStateRefused(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"garbage", "not json", 0o600, "corrupt"},
		{"empty", "", 0o600, "corrupt"},
		{"unknown key", `{"version":1,"last_step":1,"lockd":true}`, 0o600, "corrupt"},
		{"wrong version", `{"version":2}`, 0o600, "unsupported version"},
		{"trailing data", `{"version":1} {}`, 0o600, "trailing"},
		{"negative step", `{"version":1,"last_step":-1}`, 0o600, "negative"},
		{"hash without salt", `{"version":1,"recovery":[{"hmac_sha256":"` + strings.Repeat("ab", 32) + `","used":false}]}`, 0o600, "salt"},
		{"short hash", `{"version":1,"recovery_salt":"` + strings.Repeat("A", 43) + `=","recovery":[{"hmac_sha256":"abcd","used":false}]}`, 0o600, "32-byte"},
		{"group readable", `{"version":1}`, 0o640, "chmod 600"},
		{"world writable", `{"version":1}`, 0o606, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: t0}
			c := testConfig(t, clk)
			if err := os.MkdirAll(filepath.Dir(c.StatePath), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(c.StatePath, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(c.StatePath, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			if tt.mode == 0o600 && !errors.Is(err, ErrStateCorrupt) {
				t.Errorf("got %v, want ErrStateCorrupt (the CLI hints the fix)", err)
			}
		})
	}
	t.Run("a directory", func(t *testing.T) {
		c := testConfig(t, &clock{t: t0})
		if err := os.MkdirAll(c.StatePath, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := New(c); err == nil {
			t.Fatal("got nil, want an error")
		}
	})
}

func TestStateFileHoldsOnlyHashes(t *testing.T) {
	a, clk, c, codes := enrolled(t, 5)
	a.Login(owner, codes[0])
	clk.Add(time.Minute)
	a.Login(owner, validCode(t, a, 0))
	a.Login(owner, "123456")
	fi, err := os.Stat(c.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: got %04o, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(c.StatePath))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode: got %04o, want 0700", di.Mode().Perm())
	}
	body := readFile(t, c.StatePath)
	needles := []string{string(c.Secret), validCode(t, a, 0)}
	for _, rc := range codes {
		n, _ := normalizeRecovery(rc)
		needles = append(needles, rc, n)
	}
	assertNoSecret(t, "state file", body, needles...)
	if got := strings.Count(body, "hmac_sha256"); got != 5 {
		t.Errorf("got %d hashes in the state file, want 5", got)
	}
}

func TestConfigFrom(t *testing.T) {
	c := ConfigFrom(policyAuth(), "/var/lib/relay")
	if c.StatePath != "/var/lib/relay/auth.json" || c.OwnerID != owner || c.Attempts != 3 ||
		c.Window != 30*time.Second || c.LockoutBase != time.Minute || c.LockoutMax != 24*time.Hour ||
		c.SessionIdle != 15*time.Minute || c.SessionMax != 12*time.Hour || c.MaxMessageAge != time.Minute || c.Now == nil {
		t.Errorf("got %+v, want every policy field mapped", c)
	}
}
