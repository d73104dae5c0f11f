package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tamperLog writes a closed log of init + 9 records and returns its only
// file's path.
func tamperLog(t *testing.T) (dir string, k0 []byte, file string) {
	dir, k0, l := newLog(t, Options{})
	for i := 0; i < 9; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime", Params: map[string]string{"n": string(rune('a' + i))}})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, k0, filepath.Join(dir, "audit-000001.jsonl")
}

// reseal rewrites line's h and MAC with key, as an attacker holding key
// would, chaining h from the record before it, prevLine.
func reseal(line, prevLine []byte, key []byte) []byte {
	h, reason := parseHeader(line)
	if reason != "" {
		panic(reason)
	}
	var hprev [32]byte
	if ph, _ := parseHeader(prevLine); ph.hash != nil {
		hex.Decode(hprev[:], ph.hash)
	}
	hv := newLinkHash().of(&hprev, h.content)
	s := newSealer(key)
	m := s.mac(hv[:], nil)
	out := append([]byte(nil), h.content...)
	out = append(out, prefixHash...)
	out = hex.AppendEncode(out, hv[:])
	out = append(out, '"')
	out = append(out, prefixMAC...)
	out = hex.AppendEncode(out, m[:])
	return append(out, '"', '}', '\n')
}

func stateKey(t *testing.T, dir string) []byte {
	st, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), st.Key...)
}

func TestTamperDetected(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir, file string, lines [][]byte) [][]byte
		seq    uint64
		reason string
	}{
		{"edit a byte", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			ls[4] = bytes.Replace(ls[4], []byte("uptime"), []byte("uptimf"), 1)
			return ls
		}, 5, "bad mac"},
		{"edit the mac", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			// Swap one hex digit for another, so the line stays well formed
			// and only the MAC is wrong (flipping a bit can leave hex).
			i := len(ls[4]) - 5
			if ls[4][i] == '0' {
				ls[4][i] = '1'
			} else {
				ls[4][i] = '0'
			}
			return ls
		}, 5, "bad mac"},
		{"delete a record", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			return append(ls[:4:4], ls[5:]...)
		}, 6, "1 record(s) deleted"},
		{"delete three records", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			return append(ls[:2:2], ls[5:]...)
		}, 6, "3 record(s) deleted"},
		{"swap two records", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			ls[4], ls[5] = ls[5], ls[4]
			return ls
		}, 6, "reordered"},
		{"replay a record of this log", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			return append(ls[:7:7], append([][]byte{ls[2]}, ls[7:]...)...)
		}, 3, "repeats or goes backwards"},
		{"truncate mid-line", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			ls[9] = ls[9][:len(ls[9])/2]
			return ls
		}, 10, "torn last line"},
		{"join two lines", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			ls[4] = ls[4][:len(ls[4])-1]
			return ls
		}, 5, "bad mac"},
		{"replay a record from another log", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			_, _, other := tamperLog(t)
			ols := readLines(t, other)
			ls[4] = ols[4]
			return ls
		}, 5, "another"},
		{"replay from another log, prev relinked", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			_, _, other := tamperLog(t)
			ols := readLines(t, other)
			h, _ := parseHeader(ls[4])
			oh, _ := parseHeader(ols[4])
			ls[4] = bytes.Replace(ols[4], oh.prev, h.prev, 1)
			return ls
		}, 5, "bad mac"},
		{"reseal an earlier record with the stolen current key", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			kn := stateKey(t, dir) // K10: what an attacker finds on the host
			ls[8] = reseal(bytes.Replace(ls[8], []byte(`"ok"`), []byte(`"no"`), 1), ls[7], kn)
			return ls
		}, 9, "bad mac"},
		{"reseal an earlier record with a guessed later key", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			k := stateKey(t, dir)
			s := newSealer(k)
			s.next()
			s.next()
			ls[3] = reseal(bytes.Replace(ls[3], []byte(`"ok"`), []byte(`"no"`), 1), ls[2], s.key[:])
			return ls
		}, 4, "bad mac"},
		{"torn line in the middle without recovery", func(t *testing.T, dir, file string, ls [][]byte) [][]byte {
			torn := ls[3][:40]
			return append(ls[:3:3], append([][]byte{torn}, ls[3:]...)...)
		}, 4, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, k0, file := tamperLog(t)
			mustVerify(t, dir, k0)
			lines := readLines(t, file)
			lines = lines[:len(lines)-1] // the empty tail after the last "\n"
			if len(lines) != 10 {
				t.Fatalf("got %d lines, want 10", len(lines))
			}
			writeLines(t, file, tt.tamper(t, dir, file, lines))
			_, err := Verify([]string{file}, k0, nil)
			wantVerifyError(t, err, tt.seq, tt.reason)
			_, err = VerifyDir(dir, k0, nil)
			wantVerifyError(t, err, tt.seq, tt.reason)
		})
	}
}

func TestTruncatedTail(t *testing.T) {
	dir, k0, file := tamperLog(t)
	head := mustVerify(t, dir, k0).Head
	lines := readLines(t, file)
	writeLines(t, file, lines[:7]) // whole records 8..10 cut

	// The file alone is a valid, shorter chain: only the checkpoint and
	// the key state reveal the cut.
	if _, err := Verify([]string{file}, k0, nil); err != nil {
		t.Fatalf("got %v for a cleanly cut log without checkpoint, want nil (documented limit)", err)
	}
	cp, err := ParseCheckpoint(head.Checkpoint())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify([]string{file}, k0, []Head{cp})
	wantVerifyError(t, err, 10, "truncated after checkpoint")
	_, err = VerifyDir(dir, k0, nil)
	wantVerifyError(t, err, 10, "truncated")
	_, err = VerifyDir(dir, nil, nil)
	wantVerifyError(t, err, 10, "truncated")
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("got Open error %v, want a refusal naming the truncation", err)
	}
}

// An attacker holding K(n) can reseal records after n. Verify with K0 alone
// cannot tell; a checkpoint sent off the host after those records can.
func TestTailRewriteWithStolenKeyCaughtByCheckpoint(t *testing.T) {
	dir, k0, l := newLog(t, Options{})
	for i := 0; i < 4; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	}
	l.Sync()
	stolen := stateKey(t, dir) // K5, taken at seq 5
	for i := 0; i < 4; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "reboot"})
	}
	cp, _ := ParseCheckpoint(l.Head().Checkpoint()) // sent to the chat at seq 9
	l.Close()

	file := filepath.Join(dir, "audit-000001.jsonl")
	lines := readLines(t, file)
	lines = lines[:len(lines)-1]
	s := newSealer(stolen)
	var prev []byte
	for i := 5; i < 9; i++ { // records 6..9 rewritten: "reboot" hidden
		h, _ := parseHeader(lines[i])
		ln := bytes.Replace(lines[i], []byte("reboot"), []byte("uptime"), 1)
		if prev != nil {
			ln = bytes.Replace(ln, h.prev, prev, 1)
		}
		ln = reseal(ln, lines[i-1], s.key[:])
		s.next()
		nh, _ := parseHeader(ln)
		prev = append([]byte(nil), nh.mac...)
		lines[i] = ln
	}
	writeLines(t, file, lines)
	if _, err := Verify([]string{file}, k0, nil); err != nil {
		t.Fatalf("got %v, want the resealed tail to verify without a checkpoint (documented limit)", err)
	}
	_, err := Verify([]string{file}, k0, []Head{cp})
	wantVerifyError(t, err, 9, "does not match checkpoint")
}

func TestVerifyWithoutKeyChecksLinksOnly(t *testing.T) {
	dir, _, file := tamperLog(t)
	sum, err := VerifyDir(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.MACsVerified || !strings.Contains(sum.String(), "NOT VERIFIED") {
		t.Fatalf("got %+v / %q, want MACs reported as not verified", sum, sum)
	}
	lines := readLines(t, file)
	lines[3], lines[4] = lines[4], lines[3]
	writeLines(t, file, lines)
	_, err = Verify([]string{file}, nil, nil)
	wantVerifyError(t, err, 5, "reordered")
}

func TestVerifyWrongKey(t *testing.T) {
	dir, k0, _ := tamperLog(t)
	bad := append([]byte(nil), k0...)
	bad[0] ^= 1
	_, err := VerifyDir(dir, bad, nil)
	wantVerifyError(t, err, 1, "bad mac")
	if _, err := VerifyDir(dir, k0[:16], nil); err == nil {
		t.Fatal("got nil for a 16-byte key, want an error")
	}
}

func TestVerifyMissingFirstFile(t *testing.T) {
	dir, k0, l := newLog(t, Options{RotateBytes: 1500})
	for i := 0; i < 30; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	}
	l.Close()
	files, _ := ListFiles(dir)
	if len(files) < 3 {
		t.Fatalf("got %d files, want at least 3", len(files))
	}
	firstSeq := func(path string) uint64 {
		h, _ := parseHeader(readLines(t, path)[0])
		return h.seq
	}
	_, err := Verify(files[1:], k0, nil)
	wantVerifyError(t, err, firstSeq(files[1]), "deleted")
	os.Remove(files[1])
	_, err = VerifyDir(dir, k0, nil)
	wantVerifyError(t, err, firstSeq(files[2]), "deleted")
}

func TestCheckpointFormat(t *testing.T) {
	h := Head{Seq: 1234, MAC: strings.Repeat("3f9a", 16)}
	got := h.Checkpoint()
	if want := "audit checkpoint seq=1234 mac=3f9a3f9a3f9a3f9a"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	tests := []struct {
		in   string
		want Head
		ok   bool
	}{
		{got, Head{Seq: 1234, MAC: "3f9a3f9a3f9a3f9a"}, true},
		{"🔐 " + got + "\nsent by relay", Head{Seq: 1234, MAC: "3f9a3f9a3f9a3f9a"}, true},
		{"seq=1 mac=" + strings.Repeat("a", 64), Head{Seq: 1, MAC: strings.Repeat("a", 64)}, true},
		{"seq=1 mac=abc", Head{}, false},
		{"seq=0 mac=3f9a3f9a3f9a3f9a", Head{}, false},
		{"seq=1 mac=3F9A3F9A3F9A3F9A", Head{}, false},
		{got + " " + got, Head{}, false},
		{"", Head{}, false},
	}
	for _, tt := range tests {
		h, err := ParseCheckpoint(tt.in)
		if (err == nil) != tt.ok || h != tt.want {
			t.Errorf("ParseCheckpoint(%q) = %+v, %v; want %+v, ok=%v", tt.in, h, err, tt.want, tt.ok)
		}
	}
}

func TestCheckpointsMatch(t *testing.T) {
	dir, k0, l := newLog(t, Options{})
	var cps []Head
	for i := 0; i < 5; i++ {
		h := mustAppend(t, l, Record{Type: "start"})
		cp, _ := ParseCheckpoint(h.Checkpoint())
		cps = append(cps, cp)
	}
	l.Close()
	sum, err := VerifyDir(dir, k0, cps)
	if err != nil || sum.Checkpoints != 5 {
		t.Fatalf("got %+v, %v; want 5 checkpoints matched", sum, err)
	}
	cps[2].MAC = strings.Repeat("0", 16)
	_, err = VerifyDir(dir, k0, cps)
	wantVerifyError(t, err, cps[2].Seq, "does not match checkpoint")
}

func TestRecordJSONIsValid(t *testing.T) {
	_, _, file := tamperLog(t)
	for _, ln := range readLines(t, file) {
		if len(ln) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ln, &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", ln, err)
		}
		if m["mac"] == nil || m["seq"] == nil || m["ts"] == nil {
			t.Fatalf("line %q lacks mac, seq or ts", ln)
		}
	}
}
