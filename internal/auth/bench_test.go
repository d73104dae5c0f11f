package auth

import "testing"

// The limiter, not CPU, bounds guessing; these show where a login's time
// goes: the fsync'd state writes dwarf the three HMACs.

func BenchmarkMatchTOTP(b *testing.B) {
	code := "123456"
	for b.Loop() {
		if _, err := matchTOTP(testSecret, code, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAdmit(b *testing.B) {
	a, _, _ := newAuth(b, nil)
	u := Update{UserID: owner, ChatID: owner, ChatType: "private", Date: t0}
	for b.Loop() {
		if a.Admit(u) != Allow {
			b.Fatal("not allowed")
		}
	}
}

// BenchmarkLoginFailed is one rejected /login including the atomic,
// fsync'd write of the attempt before verification.
func BenchmarkLoginFailed(b *testing.B) {
	a, clk, _ := newAuth(b, nil)
	wrong := wrongCode(b, t0)
	for b.Loop() {
		a.mu.Lock()
		a.st.limit = limitState{}
		a.mu.Unlock()
		if r := a.Login(owner, wrong); r.OK {
			b.Fatal("accepted")
		}
	}
	_ = clk
}

// BenchmarkLoginFailedNoDisk is the same without the write: the CPU cost.
func BenchmarkLoginFailedNoDisk(b *testing.B) {
	a, _, _ := newAuth(b, nil)
	a.save = func(string, *state) error { return nil }
	wrong := wrongCode(b, t0)
	for b.Loop() {
		a.st.limit = limitState{}
		if r := a.Login(owner, wrong); r.OK {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkRecoveryLogin checks a wrong recovery code against 10 hashes.
func BenchmarkRecoveryLoginNoDisk(b *testing.B) {
	a, _, _, _ := enrolled(b, 10)
	a.save = func(string, *state) error { return nil }
	for b.Loop() {
		a.st.limit = limitState{}
		if r := a.Login(owner, "0000-0000-0000-0000"); r.OK {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkSessionTouch(b *testing.B) {
	a, _, _ := newAuth(b, nil)
	a.Login(owner, validCode(b, a, 0))
	for b.Loop() {
		a.Touch(owner)
		if _, ok := a.Session(owner); !ok {
			b.Fatal("no session")
		}
	}
}

// BenchmarkNewDefaults is the start-up cost, brute-force check included.
// Each Authenticator holds the state lock until closed, so each is closed
// before the next New (which would otherwise fail with ErrStateInUse).
func BenchmarkNewDefaults(b *testing.B) {
	clk := &clock{t: t0}
	c := testConfig(b, clk)
	for b.Loop() {
		a, err := New(c)
		if err != nil {
			b.Fatal(err)
		}
		a.Close()
	}
}
