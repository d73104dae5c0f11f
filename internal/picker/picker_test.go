package picker

import (
	"encoding/base64"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

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
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type state struct {
	Command string
	Words   []string
}

func newTable(t *testing.T) (*Table[state], *clock) {
	t.Helper()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	return New[state](c.Now, time.Minute, 4), c
}

func put(t *testing.T, tb *Table[state], session uint64, s state) string {
	t.Helper()
	tok, err := tb.Put(session, s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTakeWorksOnce(t *testing.T) {
	tb, _ := newTable(t)
	tok := put(t, tb, 7, state{"light", []string{"kitchen"}})
	got, err := tb.Take(7, tok)
	if err != nil || got.Command != "light" || len(got.Words) != 1 || got.Words[0] != "kitchen" {
		t.Fatalf("got %+v, %v; want the state put", got, err)
	}
	if _, err := tb.Take(7, tok); !errors.Is(err, ErrUsed) {
		t.Errorf("second press: got %v, want ErrUsed", err)
	}
}

// TestTakeExpiry: a keyboard works until just before its TTL; at exactly
// the TTL it is too late, and the late press spends it.
func TestTakeExpiry(t *testing.T) {
	tb, c := newTable(t)
	early := put(t, tb, 1, state{Command: "a"})
	late := put(t, tb, 1, state{Command: "b"})
	c.Add(time.Minute - time.Nanosecond)
	if _, err := tb.Take(1, early); err != nil {
		t.Errorf("just before the TTL: got %v, want the state", err)
	}
	c.Add(time.Nanosecond)
	if _, err := tb.Take(1, late); !errors.Is(err, ErrExpired) {
		t.Errorf("at the TTL: got %v, want ErrExpired", err)
	}
	if _, err := tb.Take(1, late); !errors.Is(err, ErrUsed) {
		t.Errorf("after an expired press: got %v, want ErrUsed", err)
	}
}

// TestForeignSessionRefused: a keyboard from an earlier session does
// nothing in a new one, and is spent by the attempt.
func TestForeignSessionRefused(t *testing.T) {
	tb, _ := newTable(t)
	tok := put(t, tb, 1, state{Command: "reboot"})
	if _, err := tb.Take(2, tok); !errors.Is(err, ErrSession) {
		t.Fatalf("got %v, want ErrSession", err)
	}
	if _, err := tb.Take(1, tok); !errors.Is(err, ErrUsed) {
		t.Errorf("after a foreign press: got %v, want ErrUsed", err)
	}
}

// TestGuessesRefused: tokens are 128 random bits; anything but the token
// itself, including a token one character off, is refused.
func TestGuessesRefused(t *testing.T) {
	tb, _ := newTable(t)
	tok := put(t, tb, 1, state{Command: "x"})
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 16 {
		t.Fatalf("token %q: %v, %d bytes; want 16 random bytes", tok, err, len(raw))
	}
	off := []byte(tok)
	off[0] ^= 1
	for _, guess := range []string{"", "x", string(off), tok + "A", tok[:21]} {
		if _, err := tb.Take(1, guess); !errors.Is(err, ErrUsed) {
			t.Errorf("guess %q: got %v, want ErrUsed", guess, err)
		}
	}
	if _, err := tb.Take(1, tok); err != nil {
		t.Errorf("the real token after the guesses: got %v, want the state", err)
	}
	seen := map[string]bool{}
	for range 1000 {
		tok := put(t, tb, 1, state{})
		if seen[tok] {
			t.Fatalf("token %q handed out twice", tok)
		}
		seen[tok] = true
	}
}

func TestOldestEvicted(t *testing.T) {
	tb, _ := newTable(t)
	first := put(t, tb, 1, state{Command: "first"})
	var last string
	for range 4 {
		last = put(t, tb, 1, state{Command: "later"})
	}
	if tb.Len() != 4 {
		t.Errorf("got %d keyboards, want the bound of 4", tb.Len())
	}
	if _, err := tb.Take(1, first); !errors.Is(err, ErrUsed) {
		t.Errorf("the oldest: got %v, want it evicted", err)
	}
	if _, err := tb.Take(1, last); err != nil {
		t.Errorf("the newest: got %v", err)
	}
}

func TestForget(t *testing.T) {
	tb, _ := newTable(t)
	tok := put(t, tb, 1, state{Command: "x"})
	tb.Forget()
	if _, err := tb.Take(1, tok); !errors.Is(err, ErrUsed) || tb.Len() != 0 {
		t.Errorf("got %v with %d kept, want nothing left after Forget", err, tb.Len())
	}
}

// TestConcurrentPresses: two presses of one keyboard at once get the
// state exactly once.
func TestConcurrentPresses(t *testing.T) {
	tb := New[int](time.Now, time.Minute, 1000)
	for range 50 {
		tok, _ := tb.Put(1, 42)
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v, err := tb.Take(1, tok); err == nil && v == 42 {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("%d presses got the state, want exactly 1", won)
		}
	}
}

func TestData(t *testing.T) {
	tb, _ := newTable(t)
	tok := put(t, tb, 1, state{})
	for _, i := range []int{0, 9, 23, 99} {
		d := Data(tok, i)
		if len(d) > 64 {
			t.Errorf("%q is %d bytes, over Telegram's 64", d, len(d))
		}
		gt, gi, ok := ParseData(d)
		if !ok || gt != tok || gi != i {
			t.Errorf("ParseData(%q) = %q, %d, %v; want %q, %d", d, gt, gi, ok, tok, i)
		}
	}
	for _, bad := range []string{"", "p:", "r:" + tok + ":1", "p:" + tok, "p:" + tok + ":", "p:" + tok + ":-1", "p:" + tok + ":01",
		"p:" + tok + ":100", "p:" + tok + ":1:2", "p:" + tok[:21] + ":1", "p:" + tok[:21] + "=:1", "p:" + tok + ":+1", "p:" + tok + ": 1"} {
		if gt, gi, ok := ParseData(bad); ok {
			t.Errorf("ParseData(%q) = %q, %d; want a refusal", bad, gt, gi)
		}
	}
}

// FuzzParseData: callback data comes from the client. What ParseData
// accepts is exactly what Data writes.
func FuzzParseData(f *testing.F) {
	f.Fuzz(func(t *testing.T, data string) {
		tok, i, ok := ParseData(data)
		if !ok {
			return
		}
		if Data(tok, i) != data {
			t.Fatalf("ParseData(%q) = %q, %d, which Data writes as %q", data, tok, i, Data(tok, i))
		}
	})
}

func TestFuzzSeedCorpusNotEmpty(t *testing.T) {
	ents, err := os.ReadDir("testdata/fuzz/FuzzParseData")
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus: got %d files (%v), want some", len(ents), err)
	}
}
