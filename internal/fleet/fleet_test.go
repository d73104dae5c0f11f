package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/audit"
)

func TestCommandOnOneMember(t *testing.T) {
	m := newMember(t, "nas", memberOpts{})
	h := newHub(t, "", m)
	r := h.call(t, "nas", "hello", "world")
	if r.Kind != KindOK || output(r) != "world\n" || r.Trailer == nil || r.Trailer.Exit != 0 {
		t.Fatalf("got %s %q output %q\nsshd: %s", r.Kind, r.Reason, output(r), m.sshdLog())
	}
	if !strings.HasPrefix(r.Version, "relay ") {
		t.Errorf("got member version %q", r.Version)
	}
	// The member recorded request, start and end with the hub's call ID
	// and key, and the trailer names its end record.
	recs := m.records(t)
	var got []string
	for _, e := range recs {
		if e.Call == r.Call {
			got = append(got, string(e.Type)+":"+string(e.Outcome))
			if !strings.HasPrefix(e.Peer, "SHA256:") || !strings.Contains(e.Peer, "hub-test from 127.0.0.1") {
				t.Errorf("%s record peer %q, want the key's fingerprint, the label and the address", e.Type, e.Peer)
			}
		}
	}
	if strings.Join(got, " ") != "request:allowed exec_start:ok exec_end:ok" {
		t.Errorf("member records for the call: %v", got)
	}
	last := recs[len(recs)-1]
	if last.Seq != r.Trailer.AuditSeq || !strings.HasPrefix(last.MAC, r.Trailer.AuditMAC) {
		t.Errorf("trailer names #%d %s, the member's end record is #%d %s", r.Trailer.AuditSeq, r.Trailer.AuditMAC, last.Seq, last.MAC)
	}
	// The hub recorded the call, with the member's head.
	hubRecs := entries(t, hubFiles(h))
	end := hubRecs[len(hubRecs)-1]
	if end.Type != TypeRemoteEnd || end.Host != "nas" || end.Call != r.Call || end.RemoteSeq != last.Seq || end.Outcome != "ok" {
		t.Errorf("hub's last record %+v", end.Record)
	}
	if prev := hubRecs[len(hubRecs)-2]; prev.Type != TypeRemoteRequest || strings.Join(prev.Args, " ") != "world" {
		t.Errorf("hub's request record %+v", prev.Record)
	}
}

func hubFiles(h *hub) []string { return audit.Files(h.cfg.Audit.Dir) }

// TestFanOutThreeMembers: one member down, one returning a large output.
func TestFanOutThreeMembers(t *testing.T) {
	web1 := newMember(t, "web1", memberOpts{})
	web2 := newMember(t, "web2", memberOpts{})
	web3 := newMember(t, "web3", memberOpts{})
	h := newHub(t, "fleet: {parallel: 3, max_output: 64MiB}\ngroups:\n  web: [web1, web2, web3]", web1, web2, web3)
	web2.stop()
	hosts, err := h.f.Resolve("WEB")
	if err != nil || strings.Join(hosts, ",") != "web1,web2,web3" {
		t.Fatalf("resolve: %v %v", hosts, err)
	}
	const size = 20 << 20
	var live int64
	s := h.f.FanOut(context.Background(), hosts, "big", []string{"20971520"}, FanOutOptions{
		CallOptions: CallOptions{Audit: h.audit, Output: func(host string, p []byte) {
			if host == "web3" {
				live += int64(len(p))
			}
		}},
	})
	defer s.Close()
	if len(s.Results) != 3 {
		t.Fatalf("got %d results", len(s.Results))
	}
	r1, r2, r3 := s.Results[0], s.Results[1], s.Results[2]
	if r1.Host != "web1" || r1.Kind != KindOK || r1.Output.Size() != size {
		t.Errorf("web1: %s %q, %d bytes", r1.Kind, r1.Reason, sizeOf(r1))
	}
	if r2.Kind != KindUnreachable || !strings.Contains(r2.Reason, "connection refused") || r2.Ran() {
		t.Errorf("web2 (down): got %s %q", r2.Kind, r2.Reason)
	}
	if r3.Kind != KindOK || r3.Output.Size() != size || r3.Truncated {
		t.Fatalf("web3: %s %q, %d bytes", r3.Kind, r3.Reason, sizeOf(r3))
	}
	sum := sha256.New()
	io.Copy(sum, r3.Output.Open())
	if hex.EncodeToString(sum.Sum(nil)) != r3.Trailer.SHA256 || live != size {
		t.Errorf("web3's output does not hash to the member's digest, or was not streamed live (%d bytes)", live)
	}
	if ok, failed, notRun := s.Counts(); ok != 2 || failed != 0 || notRun != 1 {
		t.Errorf("counts %d ok, %d failed, %d not run", ok, failed, notRun)
	}
}

func sizeOf(r *Result) int64 {
	if r.Output == nil {
		return 0
	}
	return r.Output.Size()
}
