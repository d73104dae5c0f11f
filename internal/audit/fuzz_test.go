package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func FuzzParseRecord(f *testing.F) {
	s := newSealer(make([]byte, 32))
	exit := 3
	for _, r := range []Record{
		{Type: "init", Outcome: "ok"},
		{Type: "request", Outcome: "denied", Command: "x", Params: map[string]string{"a": "b\"\n"}, Argv: []string{"/bin/x", "é"}, Exit: &exit},
		{Type: "recovery", TornBytes: 5, TornSHA256: string(bytes.Repeat([]byte("a"), 64))},
	} {
		body, _ := encodeBody(&r)
		line, _, _ := appendLine(nil, s, newLinkHash(), 7, time.Unix(1, 2), bytes.Repeat([]byte("b"), 64), &[32]byte{1}, body)
		f.Add(line)
		v1, _ := appendLineV1(nil, s, 7, time.Unix(1, 2), bytes.Repeat([]byte("b"), 64), body)
		f.Add(v1)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseRecord(line)
		if err != nil {
			return
		}
		// The fast header scanner agrees with the full parser.
		ln := line
		if len(ln) == 0 || ln[len(ln)-1] != '\n' {
			ln = append(append([]byte(nil), line...), '\n')
		}
		h, reason := parseHeader(ln)
		if reason != "" || h.seq != e.Seq || string(h.prev) != e.Prev || string(h.mac) != e.MAC || Kind(h.typ) != e.Type || string(h.hash) != e.Hash {
			t.Fatalf("header %+v (%s) disagrees with parsed %+v", h, reason, e)
		}
		// Structure re-verifies consistently: a chain at seq-1 with that
		// prev accepts it exactly when the MAC is ignored.
		if e.Seq > 1 && e.Prev != "" && e.Type != "recovery" && e.Type != "archive" {
			c := newChain(nil)
			c.seq = e.Seq - 1
			copy(c.mac[:], e.Prev)
			c.trustHash = true // the hprev is not known here
			if ok, verr := c.feed(ln, "f", 1); !ok || verr != nil {
				t.Fatalf("parsed record not accepted structurally: %v", verr)
			}
		}
		// Re-encoding the parsed record round-trips.
		body, err := encodeBody(&e.Record)
		if err != nil {
			return
		}
		out, _, err := appendLine(nil, newSealer(make([]byte, 32)), newLinkHash(), e.Seq, e.Time, []byte(e.Prev), &[32]byte{}, body)
		if err != nil {
			return
		}
		e2, err := ParseRecord(out)
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v\n%s", err, out)
		}
		b1, _ := encodeBody(&e2.Record)
		if !bytes.Equal(b1, body) || e2.Seq != e.Seq || !e2.Time.Equal(e.Time) || e2.Prev != e.Prev {
			t.Fatalf("round trip changed the record:\n%s\n%s", body, b1)
		}
	})
}

func TestFuzzSeedCorpusNotEmpty(t *testing.T) {
	for _, name := range []string{"FuzzParseRecord", "FuzzChainExtend", "FuzzPrecheck", "FuzzIsCheckpointText", "FuzzOpenCheckpoint", "FuzzExtends", "FuzzArchiveRecord"} {
		ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
		if err != nil || len(ents) == 0 {
			t.Fatalf("%s: got %d seed files (%v), want a non-empty seed corpus", name, len(ents), err)
		}
	}
}

// FuzzChainExtend holds verify's fast path to the full one: for any line
// and a chain positioned just before it, extend accepts exactly the lines
// the full path accepts, recoveries aside (extend leaves those to it), and
// leaves the chain in the same state.
func FuzzChainExtend(f *testing.F) {
	key := bytes.Repeat([]byte{7}, keySize)
	s := newSealer(key)
	exit := 3
	for i, r := range []Record{
		{Type: "init", Outcome: "ok"},
		{Type: "request", Outcome: "denied", Command: "x", Params: map[string]string{"a": "b\"\n"}, Argv: []string{"/bin/x", "é"}, Exit: &exit},
		{Type: "recovery", Outcome: "ok"},
	} {
		body, _ := encodeBody(&r)
		prev := bytes.Repeat([]byte("b"), 64)
		seq := uint64(7 + i*1000)
		if i == 0 {
			prev, seq = nil, 1
		}
		line, _, _ := appendLine(nil, s, newLinkHash(), seq, time.Unix(1, 2), prev, &[32]byte{}, body)
		v1, _ := appendLineV1(nil, s, seq, time.Unix(1, 2), prev, body)
		for _, l := range [][]byte{line, v1} {
			f.Add(l, true, int8(0), false, false)
			f.Add(l, false, int8(0), false, false)
			f.Add(l, true, int8(1), false, false)
			f.Add(l, false, int8(0), true, false)
			f.Add(l, false, int8(0), false, true)
		}
	}
	// The chain is put just before the line (seqOff and otherPrev move it
	// off), so that the fuzzer reaches the checks past seq and prev.
	// hashed puts the chain after a format-2 head with a zero h, so that a
	// format-1 line must be refused.
	f.Fuzz(func(t *testing.T, line []byte, withKey bool, seqOff int8, otherPrev bool, hashed bool) {
		c := newChain(nil)
		if withKey {
			c = newChain(key)
		}
		c.hashed = hashed
		if h, reason := parseHeader(line); reason == "" && h.seq > 0 {
			c.seq = h.seq - 1 + uint64(int64(seqOff))
			if len(h.prev) == macHex {
				copy(c.mac[:], h.prev)
			}
			if otherPrev {
				c.mac[macHex/2] ^= 1
			}
		}
		fast, full := c.clone(), c.clone()
		okFast := fast.extend(line, "f", 1)
		okFull, verr := full.feedFull(line, "f", 1)
		h, _ := parseHeader(line)
		recovery := string(h.typ) == "recovery" || string(h.typ) == "archive"
		switch {
		case okFast && (!okFull || verr != nil):
			t.Fatalf("fast path accepted a line the full path refuses (%v): %q", verr, line)
		case okFull && !okFast && !recovery:
			t.Fatalf("fast path refused a line the full path accepts: %q", line)
		case okFast && okFull:
			if fast.seq != full.seq || fast.mac != full.mac || fast.hash != full.hash || fast.hashed != full.hashed || (fast.s != nil) != (full.s != nil) ||
				(fast.s != nil && fast.s.key != full.s.key) || fast.recoveries != full.recoveries {
				t.Fatalf("paths disagree on the chain after %q", line)
			}
		}
	})
}

// TestSealerIsHMACSHA256 holds the hand-rolled sealer, and the log's lines,
// to crypto/hmac and the package doc's formulas: mac = HMAC-SHA256(K(seq-1),
// S) and K(i) = HMAC-SHA256(K(i-1), "next"). Without it, a wrong MAC would
// go unnoticed, because the writer and verify share the sealer.
func TestSealerIsHMACSHA256(t *testing.T) {
	ref := func(k, msg []byte) []byte {
		h := hmac.New(sha256.New, k)
		h.Write(msg)
		return h.Sum(nil)
	}
	k := randomKey(t)
	s := newSealer(k)
	msg := make([]byte, 1000)
	rand.Read(msg)
	for i, n := range []int{0, 1, 54, 55, 56, 63, 64, 65, 119, 120, 128, 300, 1000} {
		// Twice under one key: once from the fresh pad states, once
		// restored, and split differently between a and b.
		for _, cut := range []int{n / 2, 0} {
			got := s.mac(msg[:cut], msg[cut:n])
			if want := ref(k, msg[:n]); !bytes.Equal(got[:], want) {
				t.Fatalf("key %d, %d bytes cut at %d: got %x, want %x", i, n, cut, got, want)
			}
		}
		k = ref(k, []byte("next"))
		s.next()
		if !bytes.Equal(s.key[:], k) {
			t.Fatalf("key %d: next gave %x, want %x", i+1, s.key, k)
		}
	}

	// Format 2, as the writer writes it: h = SHA-256(hprev || T) with T the
	// line up to the h field plus "}", mac = HMAC-SHA256(K(seq-1), h).
	dir := filepath.Join(t.TempDir(), "audit")
	k0 := randomKey(t)
	genLog(t, dir, k0, 300, 10_000, stepClock(time.Unix(0, 0), time.Second), benchRecord)
	key := k0
	hprev := make([]byte, 32)
	for _, p := range Files(dir) {
		for _, line := range readLines(t, p) {
			if len(line) == 0 {
				continue
			}
			n := len(line)
			tt := append(line[:n-suffixLen-hashFieldLen:n-suffixLen-hashFieldLen], '}')
			hs := sha256.Sum256(append(append([]byte(nil), hprev...), tt...))
			if got, want := string(line[n-suffixLen-hashFieldLen+len(prefixHash):n-suffixLen-1]), hex.EncodeToString(hs[:]); got != want {
				t.Fatalf("%s: got h %s, want %s: %s", p, got, want, line)
			}
			if got, want := string(line[n-suffixLen+len(prefixMAC):n-3]), hex.EncodeToString(ref(key, hs[:])); got != want {
				t.Fatalf("%s: got mac %s, want %s: %s", p, got, want, line)
			}
			key = ref(key, []byte("next"))
			hprev = hs[:]
		}
	}

	// Format 1, in the fixture the v1 writer wrote: mac = HMAC-SHA256(K(seq-1), S).
	key = v1Key(t)
	for _, p := range Files(filepath.Join("testdata", "v1log")) {
		for _, line := range readLines(t, p) {
			h, reason := parseHeader(line)
			if reason != "" {
				continue // the torn fragment
			}
			n := len(line)
			s := append(line[:n-suffixLen:n-suffixLen], '}')
			if got, want := string(h.mac), hex.EncodeToString(ref(key, s)); got != want {
				t.Fatalf("%s: got mac %s, want %s: %s", p, got, want, line)
			}
			key = ref(key, []byte("next"))
		}
	}
}
