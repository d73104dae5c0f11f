package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFormat1LogStillVerifies: a log written by the format-1 writer
// (testdata/v1log: rotations, a torn write and its recovery) verifies with
// its K0 as it did, the key state included, and shows exactly as it did.
func TestFormat1LogStillVerifies(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "v1log"))
	sum, err := VerifyDir(dir, v1Key(t), nil)
	if err != nil {
		t.Fatalf("verify the format-1 fixture: %v", err)
	}
	if sum.Records != 52 || sum.Recoveries != 1 || !sum.StateChecked || sum.Head.Hash != "" {
		t.Fatalf("got %+v, want 52 records, 1 recovery, the state checked and no h", sum)
	}
	var b strings.Builder
	b.WriteString(ColumnsHeader + "\n")
	Scan(Files(dir), Filter{}, func(l Line) error { b.WriteString(l.Columns() + "\n"); return nil })
	b.WriteString("--- String\n")
	Scan(Files(dir), Filter{}, func(l Line) error { b.WriteString(l.String() + "\n"); return nil })
	want, err := os.ReadFile(filepath.Join("testdata", "v1log.show"))
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Fatalf("show of the format-1 log changed:\n%s\nwant\n%s", b.String(), want)
	}
	// A flipped byte is still caught under the format-1 MAC.
	f := Files(dir)[2]
	data, _ := os.ReadFile(f)
	os.WriteFile(f, bytes.Replace(data, []byte("uptime"), []byte("uptimf"), 1), 0o600)
	_, err = VerifyDir(dir, v1Key(t), nil)
	wantVerifyError(t, err, firstSeqOf(t, f)+1, "bad mac")
}

// TestFormat1LogUpgrades: the format-2 writer continues a format-1 log; the
// hash chain starts at its first record, the whole log verifies with K0, and
// a format-1 record after a format-2 one is refused even with a valid MAC.
func TestFormat1LogUpgrades(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "v1log"))
	k0 := v1Key(t)
	l, err := Open(dir, Options{RotateBytes: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Head(); h.Seq != 52 || h.Hash != "" {
		t.Fatalf("got head %+v, want seq 52 without h", h)
	}
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	h := mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	l.Close()
	if h.Seq != 54 || len(h.Hash) != 64 {
		t.Fatalf("got head %+v, want seq 54 with an h", h)
	}
	sum, err := VerifyDir(dir, k0, nil)
	if err != nil || sum.Head != h {
		t.Fatalf("got %+v, %v; want the upgraded log to verify to %+v", sum, err, h)
	}
	if _, err := VerifyDir(dir, nil, nil); err != nil {
		t.Fatalf("structure and hashes without a key: %v", err)
	}

	// Record 54 rewritten as format 1 and sealed with the right key:
	// only the format rule catches it.
	file := Files(dir)[len(Files(dir))-1]
	lines := readLines(t, file)
	lines = lines[:len(lines)-1]
	last := len(lines) - 1
	hd, _ := parseHeader(lines[last])
	// The caller's part of the record: `{"type":...}`.
	body := append(append([]byte("{"), hd.content[bytes.Index(hd.content, prefixType)+2:]...), '}')
	key := keyAt(t, k0, 53)
	ln, err := appendLineV1(nil, newSealer(key), 54, mustParse(t, lines[last]).Time, hd.prev, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRecord(ln); err != nil {
		t.Fatalf("the forged format-1 line does not parse: %v\n%s", err, ln)
	}
	lines[last] = ln
	writeLines(t, file, lines)
	_, err = Verify(Files(dir), k0, nil)
	wantVerifyError(t, err, 54, "format-1 record (no h) after format-2")
}

// keyAt returns K(n), derived from k0.
func keyAt(t testing.TB, k0 []byte, n uint64) []byte {
	t.Helper()
	s := newSealer(k0)
	for i := uint64(0); i < n; i++ {
		s.next()
	}
	return append([]byte(nil), s.key[:]...)
}

func mustParse(t testing.TB, line []byte) Entry {
	t.Helper()
	e, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func firstSeqOf(t testing.TB, path string) uint64 {
	t.Helper()
	h, reason := parseHeader(readLines(t, path)[0])
	if reason != "" {
		t.Fatalf("%s: %s", path, reason)
	}
	return h.seq
}

// TestHashChainWithoutKey: with no key at all, the unkeyed chain still
// catches an edited record, an edited h, and a record whose h was
// recomputed but whose successor was not.
func TestHashChainWithoutKey(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(ls [][]byte)
		seq    uint64
		reason string
	}{
		{"edit a byte", func(ls [][]byte) { ls[4] = bytes.Replace(ls[4], []byte("uptime"), []byte("uptimf"), 1) }, 5, "h does not match"},
		{"edit the h", func(ls [][]byte) {
			i := bytes.Index(ls[4], prefixHash) + len(prefixHash)
			ls[4][i] = "01"[btoi(ls[4][i] == '0')]
		}, 5, "h does not match"},
		{"recompute one h", func(ls [][]byte) {
			ls[4] = reseal(bytes.Replace(ls[4], []byte("uptime"), []byte("uptimf"), 1), ls[3], make([]byte, keySize))
			// The MAC changed too, so relink the next record's prev; its
			// h still chains from the old one.
			oh, _ := parseHeader(ls[5])
			nh, _ := parseHeader(ls[4])
			ls[5] = bytes.Replace(ls[5], oh.prev, nh.mac, 1)
		}, 6, "h does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _, file := tamperLog(t)
			lines := readLines(t, file)
			tt.tamper(lines)
			writeLines(t, file, lines)
			_, err := Verify([]string{file}, nil, nil)
			wantVerifyError(t, err, tt.seq, tt.reason)
			_, err = VerifyDir(dir, nil, nil)
			wantVerifyError(t, err, tt.seq, tt.reason)
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
