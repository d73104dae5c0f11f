package auth

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoginCode: any string sent to /login or as a step-up code never
// panics, and succeeds only if it is a valid code for the current window.
// The state is reset before each input so that the limiter and replay
// rules do not hide a wrongly accepted code; writes go nowhere for speed.
func FuzzLoginCode(f *testing.F) {
	a, _, _ := newAuth(f, nil)
	a.save = func(string, *state) error { return nil }
	valid := map[string]bool{}
	for off := int64(-1); off <= 1; off++ {
		c := validCode(f, a, off)
		valid[c] = true
		f.Add(c)
	}
	f.Add("")
	f.Add("123456")
	f.Add("ABCD-EFGH-JKMN-PQRS")
	f.Fuzz(func(t *testing.T, code string) {
		norm, isTOTP := normalizeTOTP(code)
		want := isTOTP && valid[norm]
		for _, login := range []bool{true, false} {
			a.mu.Lock()
			a.st, a.sess, a.confirms = &state{}, nil, nil
			a.mu.Unlock()
			var r LoginResult
			if login {
				r = a.Login(owner, code)
			} else {
				r = a.StepUp(owner, code)
			}
			if r.OK != want {
				t.Fatalf("login=%v: got ok=%v (%s), want %v", login, r.OK, r.Event, want)
			}
			if _, has := a.Session(owner); has != (login && want) {
				t.Fatalf("login=%v: got session=%v, want %v", login, has, login && want)
			}
			if r.Event == "" || (!r.OK && r.Reason == "") {
				t.Fatalf("got %+v, want an event and, on failure, a reason", r)
			}
			if len(code) >= 4 && (strings.Contains(r.Reason, code) || strings.Contains(string(r.Event), code)) {
				t.Fatalf("result quotes the input")
			}
		}
	})
}

// FuzzStateFile: a state file never panics the loader, and whatever it
// accepts survives a write and a re-read unchanged.
func FuzzStateFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"last_step":5,"locked":true,"failures":2,"recent_attempts":["2026-01-01T00:00:00Z"],"locked_until":"2026-01-01T00:01:00Z","recovery_salt":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","recovery":[{"hmac_sha256":"` + strings.Repeat("ab", 32) + `","used":true}]}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := unmarshalState(b, 3)
		if err != nil {
			return
		}
		out, err := s.marshal()
		if err != nil {
			t.Fatalf("marshal accepted state: %v", err)
		}
		s2, err := unmarshalState(out, 3)
		if err != nil {
			t.Fatalf("re-read own output: %v", err)
		}
		out2, _ := s2.marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the state:\n%s\n%s", out, out2)
		}
	})
}

func TestFuzzSeedCorpora(t *testing.T) {
	for _, name := range []string{"FuzzLoginCode", "FuzzStateFile"} {
		ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
		if err != nil || len(ents) == 0 {
			t.Errorf("%s: got %d seed files (%v), want some", name, len(ents), err)
			continue
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join("testdata", "fuzz", name, e.Name()))
			if err != nil || !bytes.HasPrefix(b, []byte("go test fuzz v1\n")) {
				t.Errorf("%s/%s: not in the Go corpus format", name, e.Name())
			}
		}
	}
}
