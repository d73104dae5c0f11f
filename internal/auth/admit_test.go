package auth

import (
	"testing"
	"time"
)

func TestAdmit(t *testing.T) {
	const stranger int64 = 777
	now := t0.Add(10 * time.Minute)
	fresh := now.Add(-5 * time.Second).Truncate(time.Second)
	tests := []struct {
		name string
		u    Update
		want Verdict
	}{
		{"owner private fresh", Update{UserID: owner, ChatID: owner, ChatType: "private", Date: fresh}, Allow},
		{"stranger private", Update{UserID: stranger, ChatID: stranger, ChatType: "private", Date: fresh}, Ignore},
		{"stranger in owner's chat id", Update{UserID: stranger, ChatID: owner, ChatType: "private", Date: fresh}, Ignore},
		{"owner in group", Update{UserID: owner, ChatID: -100123, ChatType: "group", Date: fresh}, Ignore},
		{"owner in supergroup", Update{UserID: owner, ChatID: -100123, ChatType: "supergroup", Date: fresh}, Ignore},
		{"owner's channel post", Update{UserID: owner, ChatID: -100999, ChatType: "channel", Date: fresh}, Ignore},
		{"group type with owner's chat id", Update{UserID: owner, ChatID: owner, ChatType: "group", Date: fresh}, Ignore},
		{"private type, other chat id", Update{UserID: owner, ChatID: stranger, ChatType: "private", Date: fresh}, Ignore},
		{"empty chat type", Update{UserID: owner, ChatID: owner, Date: fresh}, Ignore},
		{"owner edited message", Update{UserID: owner, ChatID: owner, ChatType: "private", Date: fresh, Edited: true}, Ignore},
		{"user id zero", Update{ChatType: "private", Date: fresh}, Ignore},
		{"stranger stale", Update{UserID: stranger, ChatID: stranger, ChatType: "private", Date: now.Add(-time.Hour)}, Ignore},
		{"age 59s", Update{UserID: owner, ChatID: owner, ChatType: "private", Date: now.Add(-59 * time.Second)}, Allow},
		{"age exactly 60s", Update{UserID: owner, ChatID: owner, ChatType: "private", Date: now.Add(-60 * time.Second)}, Stale},
		{"age 1h", Update{UserID: owner, ChatID: owner, ChatType: "private", Date: now.Add(-time.Hour)}, Stale},
		{"no date", Update{UserID: owner, ChatID: owner, ChatType: "private"}, Stale},
		{"owner callback", Update{UserID: owner, ChatID: owner, ChatType: "private", Date: now, Press: true}, Allow},
		{"stranger callback", Update{UserID: stranger, ChatID: owner, ChatType: "private", Date: now, Press: true}, Ignore},
		{"owner callback in group", Update{UserID: owner, ChatID: -100123, ChatType: "group", Date: now, Press: true}, Ignore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clk, _ := newAuth(t, nil)
			clk.Set(now)
			if got := a.Admit(tt.u); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAdmitBeforeStart(t *testing.T) {
	// Telegram dates are whole seconds, rounded down: a message dated in
	// the start's own second may only pass if its second is not before it.
	tests := []struct {
		name    string
		started time.Time
		date    time.Time
		want    Verdict
	}{
		{"a second before start", t0, t0.Add(-time.Second), Stale},
		{"same second, start on the second", t0, t0, Allow},
		{"same second, start mid-second", t0.Add(500 * time.Millisecond), t0, Stale},
		{"next second", t0.Add(500 * time.Millisecond), t0.Add(time.Second), Allow},
		{"backlog from yesterday", t0, t0.Add(-24 * time.Hour), Stale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, clk, _ := newAuth(t, func(c *Config) { c.StartedAt = tt.started })
			clk.Set(tt.started.Add(2 * time.Second))
			got := a.Admit(Update{UserID: owner, ChatID: owner, ChatType: "private", Date: tt.date})
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFirstStaleOncePerStart(t *testing.T) {
	a, clk, c := newAuth(t, nil)
	if a.FirstStale() {
		t.Fatal("FirstStale before any stale message: got true, want false")
	}
	stale := Update{UserID: owner, ChatID: owner, ChatType: "private", Date: t0.Add(-time.Hour)}
	for i := range 3 {
		if v := a.Admit(stale); v != Stale {
			t.Fatalf("message %d: got %v, want stale", i, v)
		}
		got := a.FirstStale()
		if want := i == 0; got != want {
			t.Errorf("message %d: FirstStale got %v, want %v", i, got, want)
		}
	}
	// An ignored stranger's old message must not use up the notice.
	b := reopen(t, a, c)
	b.Admit(Update{UserID: 1, ChatID: 1, ChatType: "private", Date: clk.Now().Add(-time.Hour)})
	if b.FirstStale() {
		t.Error("stranger's stale message: FirstStale got true, want false")
	}
	b.Admit(stale)
	if !b.FirstStale() {
		t.Error("after a restart: FirstStale got false, want true")
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Allow: "allow", Ignore: "ignore", Stale: "stale", Verdict(99): "ignore"} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d): got %q, want %q", int(v), got, want)
		}
	}
	var zero Verdict
	if zero != Ignore {
		t.Errorf("zero Verdict: got %v, want ignore (fail closed)", zero)
	}
}
