package auth

import "time"

// limiter is the login rate limiter. It is pure (state in, state out, the
// time passed in) so that a test can drive the very code the Authenticator
// uses through a million guesses in memory, and so that its state can be
// persisted as a whole before any code is verified.
//
// The rules, checked before a code is even looked at:
//   - at most attempts tries in any window (sliding), successes included;
//   - the attempts-th consecutive failure locks logins for base, and each
//     further consecutive failure doubles it, up to max;
//   - only a success resets the failure count: failures never decay with
//     time, so an attacker who sits out a lockout is no better off.
type limiter struct {
	attempts int
	window   time.Duration
	base     time.Duration
	max      time.Duration
}

// limitState is the limiter's persisted state.
type limitState struct {
	// Recent holds the start times of the attempts still inside the
	// window, oldest first; never more than attempts entries.
	Recent []time.Time
	// Failures counts consecutive failed attempts since the last success.
	Failures int
	// LockedUntil: no attempt is verified before it. Zero when never locked.
	LockedUntil time.Time
}

// check reports whether an attempt at now may proceed to verification and,
// if not, when the earliest next attempt may be made. It prunes Recent.
func (l limiter) check(s *limitState, now time.Time) (ok bool, until time.Time) {
	if now.Before(s.LockedUntil) {
		return false, s.LockedUntil
	}
	// Entries from the future (the clock stepped back) stay counted:
	// a clock change must never hand out extra attempts.
	keep := s.Recent[:0]
	for _, t := range s.Recent {
		if now.Sub(t) < l.window {
			keep = append(keep, t)
		}
	}
	s.Recent = keep
	if len(s.Recent) >= l.attempts {
		return false, s.Recent[len(s.Recent)-l.attempts].Add(l.window)
	}
	return true, time.Time{}
}

// begin records an attempt at now as failed, provisionally: the state is
// persisted in this form before the code is verified, so a crash or a
// failed write during verification costs the guesser an attempt instead of
// handing out a free one. succeed undoes the failure.
func (l limiter) begin(s *limitState, now time.Time) {
	s.Recent = append(s.Recent, now)
	s.Failures++
	if s.Failures >= l.attempts {
		s.LockedUntil = now.Add(l.lockout(s.Failures))
	}
}

// succeed turns the attempt begin recorded into a success.
func (l limiter) succeed(s *limitState) {
	s.Failures = 0
	s.LockedUntil = time.Time{}
}

// lockout is the lockout after the n-th consecutive failure (n ≥ attempts):
// base·2^(n-attempts), capped at max, computed without overflow.
func (l limiter) lockout(n int) time.Duration {
	d := l.base
	for i := l.attempts; i < n && d < l.max; i++ {
		d *= 2
	}
	return min(d, l.max)
}

// minGuessSeconds is the least wall time, in seconds, an attacker needs
// for guesses verified attempts, starting from a clean state and always
// trying at the earliest moment the limiter allows. It drives the real
// limiter; once the lockout has reached max and max ≥ window, every further
// guess costs exactly max (the failure count only grows), and the rest is
// multiplied out instead of simulated so that New can afford the check.
// Seconds, not a Duration: the answer is usually beyond Duration's 292 years.
func (l limiter) minGuessSeconds(guesses int) float64 {
	t0 := time.Unix(0, 0)
	now := t0
	var s limitState
	var last time.Time
	for done := 0; done < guesses; {
		ok, until := l.check(&s, now)
		if !ok {
			now = until
			continue
		}
		l.begin(&s, now)
		last = now
		done++
		if s.Failures >= l.attempts && l.lockout(s.Failures) == l.max && l.max >= l.window {
			return last.Sub(t0).Seconds() + float64(guesses-done)*l.max.Seconds()
		}
	}
	return last.Sub(t0).Seconds()
}
