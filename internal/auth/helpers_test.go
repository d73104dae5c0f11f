package auth

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaychat/relay/policy"
)

// testSecret is 20 bytes of base32; only ever used in tests.
const testSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

const owner int64 = 4242

// t0 is 10 s into a TOTP step, so ±few seconds stay in the same step.
var t0 = time.Date(2026, 3, 4, 5, 6, 10, 0, time.UTC)

// clock is the injected time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// defaults mirror policy's defaults for auth.
func testConfig(t testing.TB, clk *clock) Config {
	t.Helper()
	return configAt(filepath.Join(t.TempDir(), "state", StateFile), clk)
}

// configAt is testConfig with the state file at statePath.
func configAt(statePath string, clk *clock) Config {
	return Config{
		OwnerID:       owner,
		MaxMessageAge: 60 * time.Second,
		SessionIdle:   15 * time.Minute,
		SessionMax:    12 * time.Hour,
		Attempts:      3,
		Window:        30 * time.Second,
		LockoutBase:   time.Minute,
		LockoutMax:    24 * time.Hour,
		StatePath:     statePath,
		Secret:        []byte(testSecret),
		Now:           clk.Now,
		StartedAt:     t0,
	}
}

func newAuth(t testing.TB, mut func(*Config)) (*Authenticator, *clock, Config) {
	t.Helper()
	clk := &clock{t: t0}
	c := testConfig(t, clk)
	if mut != nil {
		mut(&c)
	}
	a, err := New(c)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a, clk, c
}

// reopen is a restart: old stops (releasing the state lock) and a new
// Authenticator starts on the same state file.
func reopen(t testing.TB, old *Authenticator, c Config) *Authenticator {
	t.Helper()
	old.Close()
	a, err := New(c)
	if err != nil {
		t.Fatalf("New after restart: %v", err)
	}
	return a
}

// codeFor is the valid code at step offset off from t's step.
func codeFor(t testing.TB, at time.Time, off int64) string {
	t.Helper()
	c, err := codeAt(testSecret, stepAt(at)+off)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a six-digit code valid for no step in at's window.
func wrongCode(t testing.TB, at time.Time) string {
	t.Helper()
	valid := map[string]bool{}
	for off := int64(-1); off <= 1; off++ {
		valid[codeFor(t, at, off)] = true
	}
	for _, c := range []string{"000000", "111111", "123456", "999999"} {
		if !valid[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

// memStore is a SecretStore in memory.
type memStore struct {
	m      map[string][]byte
	setErr error
}

func (s *memStore) Get(name string) ([]byte, error) {
	v, ok := s.m[name]
	if !ok {
		return nil, errNotFound
	}
	return v, nil
}

func (s *memStore) Set(name string, v []byte) error {
	if s.setErr != nil {
		return s.setErr
	}
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[name] = append([]byte(nil), v...)
	return nil
}

var errNotFound = errors.New("secret not found")

// confirmed is a new enrolment whose code at time at was confirmed, ready
// to Save.
func confirmed(t testing.TB, at time.Time) *Enrollment {
	t.Helper()
	e, err := Enroll("relay", "owner")
	if err != nil {
		t.Fatal(err)
	}
	code, err := codeAt(e.secret, stepAt(at))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Confirm(code, at); err != nil {
		t.Fatal(err)
	}
	return e
}

// enrolled runs a real enrolment at clk's time and returns its recovery
// codes and a Config using the saved secret.
func enrolled(t testing.TB, n int) (*Authenticator, *clock, Config, []string) {
	t.Helper()
	clk := &clock{t: t0}
	c := testConfig(t, clk)
	e := confirmed(t, clk.Now())
	st := &memStore{}
	codes, err := e.Save(st, c.StatePath, n)
	if err != nil {
		t.Fatal(err)
	}
	c.Secret = st.m[SecretName]
	a, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return a, clk, c, codes
}

// assertNoSecret fails if s contains any of the needles.
func assertNoSecret(t testing.TB, where, s string, needles ...string) {
	t.Helper()
	for _, n := range needles {
		if n == "" {
			continue
		}
		if isDigits(n) {
			// A six-digit code may occur inside a longer number (a step,
			// a timestamp) by chance; only a standalone run is a leak.
			if regexp.MustCompile(`(^|\D)` + n + `(\D|$)`).MatchString(s) {
				t.Errorf("%s contains a code", where)
			}
			continue
		}
		if strings.Contains(s, n) || strings.Contains(strings.ToUpper(s), strings.ToUpper(n)) {
			t.Errorf("%s contains a secret (%d chars)", where, len(n))
		}
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// validCode is a's valid code at its clock's step plus off.
func validCode(t testing.TB, a *Authenticator, off int64) string {
	t.Helper()
	c, err := codeAt(a.secret, stepAt(a.c.Now())+off)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// policyAuth is policy's documented defaults for the auth block.
func policyAuth() policy.Auth {
	return policy.Auth{
		OwnerID: owner, MaxMessageAge: time.Minute, SessionIdle: 15 * time.Minute,
		SessionMax: 12 * time.Hour, LoginAttempts: 3, LoginWindow: 30 * time.Second,
		LockoutBase: time.Minute, LockoutMax: 24 * time.Hour, RecoveryCodes: 10,
	}
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
