package fleet

import (
	"context"
	"strings"
	"testing"
)

func levels(cs []Check) map[string]CheckLevel {
	m := map[string]CheckLevel{}
	for _, c := range cs {
		m[c.Name] = c.Level
	}
	return m
}

func TestDoctorOnARestrictedMember(t *testing.T) {
	m := newMember(t, "nas", memberOpts{})
	h := newHub(t, "", m)
	cs := h.f.Doctor(context.Background(), "nas")
	for _, c := range cs {
		if c.Level != CheckOK {
			t.Errorf("%s: %s (fix: %s)", c.Name, c.Detail, c.Fix)
		}
	}
	for _, want := range []string{"reach", "host key", "serve-ssh", "allowlist", "restricted", "forwarding"} {
		if _, ok := levels(cs)[want]; !ok {
			t.Errorf("no %s check in %+v", want, cs)
		}
	}
	// The probes ran nothing; the member recorded its refusal of the
	// shell-command probe, as it records every refusal.
	recs := m.records(t)
	if m.ran() || len(recs) != 2 || recs[1].Type != "request" || recs[1].Outcome != "denied" {
		t.Errorf("after doctor, the member's log holds %d records (last %+v), want init and one denial", len(recs), recs[len(recs)-1].Record)
	}
}

// TestDoctorReportsAnUnrestrictedKey: the hub's key forces serve-ssh but
// lacks restrict (forwarding allowed), or has no command= at all (a shell).
func TestDoctorReportsAnUnrestrictedKey(t *testing.T) {
	noCommand := newMember(t, "shell", memberOpts{keyLine: "%s"})
	noRestrict := newMember(t, "fwd", memberOpts{keyLine: `command="` + relayBin + ` serve-ssh --config CFG" %s`})
	// The member's own config path, now that it exists.
	rewriteKeys(t, noRestrict, `command="`+relayBin+` serve-ssh --config `+noRestrict.cfgPath+`" `+readPub(t, hubKey))
	h := newHub(t, "", noCommand, noRestrict)
	shell := h.f.Doctor(context.Background(), "shell")
	if l := levels(shell); l["restricted"] != CheckFail || l["serve-ssh"] != CheckFail {
		t.Errorf("a key without command=: got %+v, want restricted and serve-ssh failed", shell)
	}
	for _, c := range shell {
		if c.Name == "restricted" && !strings.Contains(c.Detail, "runs a shell") {
			t.Errorf("got %q, want it to say the key runs a shell", c.Detail)
		}
	}
	fwd := h.f.Doctor(context.Background(), "fwd")
	if l := levels(fwd); l["restricted"] != CheckOK || l["forwarding"] != CheckFail {
		t.Errorf("a key with command= but not restrict: got %+v, want forwarding failed", fwd)
	}
	// A call to the shell-key member is not mistaken for a member's answer.
	r := h.call(t, "shell", "hello", "x")
	if r.Kind != KindProtocol || !strings.Contains(r.Reason, "not restricted") {
		t.Errorf("call through an unrestricted key: got %s %q", r.Kind, r.Reason)
	}
}
