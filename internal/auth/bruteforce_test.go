package auth

import (
	"math"
	"testing"
	"time"
)

const year = 365.25 * 24 * 3600 // seconds

// attack drives the limiter with the injected time, as an attacker who
// guesses at the earliest instant it allows, and returns the seconds from
// the first to the last of n verified guesses. No formula: every guess goes
// through check and begin, exactly as Login does.
func attack(t *testing.T, l limiter, n int) float64 {
	t.Helper()
	start := t0
	now := start
	var s limitState
	for done := 0; done < n; {
		ok, until := l.check(&s, now)
		if !ok {
			if !until.After(now) {
				t.Fatalf("guess %d: refused with retry time %v not after now %v", done, until, now)
			}
			now = until
			continue
		}
		l.begin(&s, now)
		if done++; done == n {
			break
		}
	}
	return float64(now.Unix()-start.Unix()) + float64(now.Nanosecond()-start.Nanosecond())/1e9
}

func defaultLimiter(t *testing.T) limiter {
	c := ConfigFrom(policyAuth(), t.TempDir())
	return limiter{attempts: c.Attempts, window: c.Window, base: c.LockoutBase, max: c.LockoutMax}
}

func TestBruteForceIsHopeless(t *testing.T) {
	l := defaultLimiter(t)

	// A million guesses: the whole six-digit space once.
	total := attack(t, l, 1_000_000)
	t.Logf("1,000,000 guesses at the enforced rate take at least %.0f years", total/year)
	if total < 1000*year {
		t.Errorf("1e6 guesses: got %.1f years, want more than 1000", total/year)
	}

	// Expected guesses to succeed: at most 3 of the 10^6 codes (steps
	// c-1..c+1) are accepted at any moment, so a guess wins with p ≤ 3e-6
	// and the expected number of guesses is ≥ 1/p.
	p := 3.0 / 1e6
	expected := int(math.Ceil(1 / p))
	if expected < 333_333 {
		t.Fatalf("expected guesses: got %d, want ≥ 333,333", expected)
	}
	exp := attack(t, l, expected)
	t.Logf("expected guesses to hit one of 3 valid codes: %d, taking at least %.0f years", expected, exp/year)
	if exp < 100*year {
		t.Errorf("expected-case attack: got %.1f years, want more than 100", exp/year)
	}

	// New's fast extrapolation agrees with the full simulation.
	if got := l.minGuessSeconds(1_000_000); math.Abs(got-total) > 1e-6*total {
		t.Errorf("minGuessSeconds: got %.0f s, want %.0f s (the simulated figure)", got, total)
	}
}

// The extrapolation agrees with the full simulation for other limits too,
// including ones where the window, not the lockout, binds at first.
func TestMinGuessSecondsMatchesSimulation(t *testing.T) {
	for _, l := range []limiter{
		{attempts: 3, window: 30 * time.Second, base: time.Minute, max: 24 * time.Hour},
		{attempts: 5, window: time.Minute, base: 10 * time.Second, max: time.Hour},
		{attempts: 1, window: time.Second, base: time.Second, max: time.Second},
		{attempts: 10, window: time.Hour, base: time.Second, max: time.Minute}, // window > max
	} {
		const n = 20_000
		want := attack(t, l, n)
		if got := l.minGuessSeconds(n); math.Abs(got-want) > 1e-6*want {
			t.Errorf("%+v: got %.3f s, want %.3f s", l, got, want)
		}
	}
}

// The Authenticator uses that very limiter: an attacker driving Login with
// the injected clock is verified at exactly the instants the simulation
// predicts.
func TestLoginFollowsLimiter(t *testing.T) {
	a, clk, _ := newAuth(t, nil)
	l := defaultLimiter(t)
	var s limitState
	sim := t0
	for guess := range 20 {
		// The simulated attacker's next verified guess.
		for {
			ok, until := l.check(&s, sim)
			if ok {
				break
			}
			sim = until
		}
		l.begin(&s, sim)
		// The real one: retry at each LockedUntil it is told.
		for {
			r := a.Login(owner, wrongCode(t, clk.Now()))
			if r.Event != EventLockout {
				break
			}
			clk.Set(r.LockedUntil)
		}
		if !clk.Now().Equal(sim) {
			t.Fatalf("guess %d verified at %v, want %v", guess, clk.Now(), sim)
		}
	}
	if lu := a.Status().LockedUntil; !lu.Equal(s.LockedUntil) {
		t.Errorf("lockout after 20 failures: got %v, want %v", lu, s.LockedUntil)
	}
}
