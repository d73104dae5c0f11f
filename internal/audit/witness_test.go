package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostFetch is what the witness's transport does, without the transport:
// the host's RecordsSince over its live files.
func hostFetch(t testing.TB, dir string) Fetch {
	return func(since uint64) (io.ReadCloser, error) {
		var b bytes.Buffer
		if _, err := RecordsSince(Files(dir), since, &b); err != nil {
			return nil, err
		}
		return io.NopCloser(&b), nil
	}
}

func latest(t testing.TB, dir string) []byte {
	t.Helper()
	cp, err := LatestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Note
}

func newStore(t testing.TB, pub string) *WitnessStore {
	t.Helper()
	s, err := CreateWitnessStore(filepath.Join(t.TempDir(), "witness"), pub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func wantWitnessError(t *testing.T, err error, kind WitnessKind, first uint64) {
	t.Helper()
	var we *WitnessError
	if !errors.As(err, &we) || we.Kind != kind || we.FirstBad != first {
		t.Fatalf("got %v, want a %s at seq %d", err, kind, first)
	}
}

// TestWitnessFollowsTheLog: the witness takes the first checkpoint on
// trust, then checks each new one by replaying the records since the last,
// across rotation, and keeps them all; reopened, it holds the same.
func TestWitnessFollowsTheLog(t *testing.T) {
	dir, _, l, pub := signedLog(t, Options{RotateBytes: 2000})
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	s := newStore(t, pub)
	res, err := s.Witness(latest(t, dir), hostFetch(t, dir))
	if err != nil || !res.First || res.Checkpoint.Seq != 2 {
		t.Fatalf("first contact: %+v, %v", res, err)
	}
	for round := 0; round < 3; round++ {
		for i := 0; i < 15; i++ {
			mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
		}
		if round == 1 {
			// A torn write and its recovery record: the torn bytes are
			// not a record, the recovery record is one like any other.
			l.Close()
			appendRawFile(t, Files(dir)[len(Files(dir))-1], []byte(`{"seq":77,"ts":"20`))
			var err error
			if l, err = Open(dir, Options{RotateBytes: 2000}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
		}
		res, err := s.Witness(latest(t, dir), hostFetch(t, dir))
		if err != nil || res.First || res.Records == 0 || res.Checkpoint.Seq != l.Head().Seq {
			t.Fatalf("round %d: %+v, %v", round, res, err)
		}
	}
	if len(Files(dir)) < 3 {
		t.Fatalf("got %d files, want rotation covered", len(Files(dir)))
	}
	if sum, err := VerifyDir(dir, nil, nil); err != nil || sum.Recoveries != 1 {
		t.Fatalf("got %+v, %v; want the torn write's recovery in the witnessed records", sum, err)
	}
	// Nothing new: accepted, not stored twice.
	if _, err := s.Witness(latest(t, dir), hostFetch(t, dir)); err != nil {
		t.Fatal(err)
	}
	if got := len(s.Checkpoints()); got != 4 {
		t.Fatalf("got %d stored checkpoints, want 4", got)
	}
	path := s.dir
	s.Close()
	if _, err := OpenWitnessStore(path); err != nil {
		t.Fatalf("reopen: %v", err)
	}
}

// TestWitnessStoreOpenChecks: the store refuses to be opened twice, drops
// hashes a crash left past the newest checkpoint, and refuses a
// checkpoints file that was edited.
func TestWitnessStoreOpenChecks(t *testing.T) {
	dir, _, l, pub := signedLog(t, Options{})
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	s := newStore(t, pub)
	if _, err := s.Witness(latest(t, dir), hostFetch(t, dir)); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	if _, err := s.Witness(latest(t, dir), hostFetch(t, dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWitnessStore(s.dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("got %v for a second open, want a refusal", err)
	}
	path := s.dir
	s.Close()

	// A crash between the hashes and the checkpoint: extra hashes.
	f, _ := os.OpenFile(filepath.Join(path, witnessHashes), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, 3*sha256.Size))
	f.Close()
	s2, err := OpenWitnessStore(path)
	if err != nil {
		t.Fatalf("open after a crash: %v", err)
	}
	fi, _ := os.Stat(filepath.Join(path, witnessHashes))
	if fi.Size() != 2*sha256.Size {
		t.Fatalf("got %d bytes of hashes, want the 2 the checkpoints need", fi.Size())
	}
	s2.Close()

	b, _ := os.ReadFile(filepath.Join(path, witnessCPs))
	os.WriteFile(filepath.Join(path, witnessCPs), bytes.Replace(b, []byte(`"seq":3`), []byte(`"seq":4`), 1), 0o600)
	if _, err := OpenWitnessStore(path); err == nil || !strings.Contains(err.Error(), "disagrees") {
		t.Fatalf("got %v for an edited checkpoints file, want a refusal", err)
	}
}

// TestExtends: the records between two checkpoints must be exactly the
// chain from one to the other; each way a host can serve something else
// is named at the record where it departs.
func TestExtends(t *testing.T) {
	dir, _, l, pub := signedLog(t, Options{})
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	old, _ := OpenCheckpoint(latest(t, dir), pub)
	for i := 0; i < 6; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	}
	cur, _ := OpenCheckpoint(latest(t, dir), pub) // seq 8
	var buf bytes.Buffer
	RecordsSince(Files(dir), old.Seq, &buf)
	recs := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	recs = recs[:len(recs)-1] // seqs 3..8
	join := func(ls ...[]byte) io.Reader { return bytes.NewReader(bytes.Join(ls, nil)) }
	clone := func() [][]byte {
		out := make([][]byte, len(recs))
		for i := range recs {
			out[i] = append([]byte(nil), recs[i]...)
		}
		return out
	}
	tests := []struct {
		name  string
		in    func() io.Reader
		kind  WitnessKind
		first uint64
	}{
		{"the records", func() io.Reader { return join(recs...) }, "", 0},
		{"and more after", func() io.Reader { return join(append(clone(), []byte("garbage\n"))...) }, "", 0},
		{"one left out", func() io.Reader { r := clone(); return join(append(r[:2:2], r[3:]...)...) }, WitnessMissing, 5},
		{"cut short", func() io.Reader { return join(recs[:4]...) }, WitnessMissing, 7},
		{"two swapped", func() io.Reader { r := clone(); r[1], r[2] = r[2], r[1]; return join(r...) }, WitnessMissing, 4},
		{"one repeated", func() io.Reader { r := clone(); return join(append(r[:2:2], r[1:]...)...) }, WitnessBadRecords, 5},
		{"one edited", func() io.Reader {
			r := clone()
			r[3] = bytes.Replace(r[3], []byte("uptime"), []byte("uptimf"), 1)
			return join(r...)
		}, WitnessFork, 6},
		{"one edited and its h recomputed", func() io.Reader {
			r := clone()
			r[3] = reseal(bytes.Replace(r[3], []byte("uptime"), []byte("uptimf"), 1), r[2], make([]byte, keySize))
			return join(r...)
		}, WitnessBadRecords, 7}, // the next prev no longer links
		{"torn", func() io.Reader { r := clone(); r[2] = r[2][:40]; return join(r...) }, WitnessBadRecords, 5},
		{"nothing", func() io.Reader { return join() }, WitnessMissing, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen []uint64
			err := Extends(old, cur, tt.in(), func(seq uint64, _ *[sha256.Size]byte) error { seen = append(seen, seq); return nil })
			if tt.kind == "" {
				if err != nil || len(seen) != 6 {
					t.Fatalf("got %v after %v, want the 6 records accepted", err, seen)
				}
				return
			}
			wantWitnessError(t, err, tt.kind, tt.first)
		})
	}
	// A checkpoint whose hash the records do not reach.
	bad := cur
	bad.Hash[0] ^= 1
	wantWitnessError(t, Extends(old, bad, join(recs...), nil), WitnessFork, 8)
}

// TestRecordWitnessed: the host notes what a witness stored, only if it is
// its own checkpoint of a record it holds, and never going back.
func TestRecordWitnessed(t *testing.T) {
	dir, _, l, _ := signedLog(t, Options{})
	if _, err := LastWitnessed(dir); !errors.Is(err, ErrNotWitnessed) {
		t.Fatalf("got %v, want ErrNotWitnessed", err)
	}
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	a := latest(t, dir)
	mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	b := latest(t, dir)
	if _, err := RecordWitnessed(dir, b); err != nil {
		t.Fatal(err)
	}
	if _, err := RecordWitnessed(dir, a); err == nil || !strings.Contains(err.Error(), "older") {
		t.Fatalf("got %v for an older checkpoint, want a refusal", err)
	}
	w, err := LastWitnessed(dir)
	if err != nil || w.Seq != 3 {
		t.Fatalf("got %v, %v; want seq 3", w, err)
	}
	// Another log's checkpoint with this log's key does not match a record.
	other, _, ol, _ := signedLog(t, Options{})
	mustAppend(t, ol, Record{Type: "start", Outcome: "ok"})
	os.WriteFile(filepath.Join(other, CheckpointKeyFile), mustRead(t, filepath.Join(dir, CheckpointKeyFile)), 0o600)
	mustAppend(t, ol, Record{Type: "start", Outcome: "ok"})
	mustAppend(t, ol, Record{Type: "start", Outcome: "ok"})
	if _, err := RecordWitnessed(dir, latest(t, other)); err == nil || !strings.Contains(err.Error(), "no record") {
		t.Fatalf("got %v, want a refusal naming the missing record", err)
	}
}

// TestCheckWitnessed is the attacker's table for audit-witnessed: a note
// the host must refuse as not its log's (ErrNotThisLog), and one it takes.
func TestCheckWitnessed(t *testing.T) {
	dir, _, l, _ := signedLog(t, Options{})
	for i := 0; i < 4; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	}
	head := l.Head().Seq
	sg, err := loadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	good, err := LatestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	signAt := func(seq uint64, h [sha256.Size]byte) []byte {
		cp, err := sg.sign(seq, &h)
		if err != nil {
			t.Fatal(err)
		}
		return cp.Note
	}
	other, _, ol, _ := signedLog(t, Options{})
	mustAppend(t, ol, Record{Type: "start", Outcome: "ok"})
	flipped := good.Hash
	flipped[0] ^= 1
	for _, tt := range []struct {
		name string
		note []byte
		want string
	}{
		{"signed with another log's key", latest(t, other), "not signed by"},
		{"a seq after the head", signAt(head+1, good.Hash), "no record"},
		{"a hash not in the log", signAt(head, flipped), "another h"},
		{"an earlier record's seq with the head's hash", signAt(head-1, good.Hash), "another h"},
		{"seq 0", signAt(0, good.Hash), "positive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckWitnessed(dir, tt.note)
			if !errors.Is(err, ErrNotThisLog) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrNotThisLog naming %q", err, tt.want)
			}
		})
	}
	if cp, err := CheckWitnessed(dir, good.Note); err != nil || cp.Seq != head {
		t.Fatalf("the head's own checkpoint: got %v, %v", cp, err)
	}
	if _, err := RecordWitnessed(dir, good.Note); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckWitnessed(dir, signedNoteAt(t, dir, head-1)); !errors.Is(err, ErrNotThisLog) || !strings.Contains(err.Error(), "older") {
		t.Errorf("an older checkpoint: got %v, want ErrNotThisLog", err)
	}
	// The head record's T rewritten on disk, its h kept: the note names
	// the h the record claims, but the record no longer hashes to it.
	files := Files(dir)
	last := files[len(files)-1]
	b := mustRead(t, last)
	i := bytes.LastIndex(b, []byte(`"uptime"`))
	copy(b[i:], `"uptimf"`)
	if err := os.WriteFile(last, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckWitnessed(dir, good.Note); !errors.Is(err, ErrNotThisLog) || !strings.Contains(err.Error(), "does not hash") {
		t.Errorf("a rewritten record: got %v, want ErrNotThisLog", err)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzExtends: whatever a host serves, the witness's replay never panics
// or accepts records that do not reach the checkpoint's hash.
func FuzzExtends(f *testing.F) {
	dir, _, l, pub := signedLog(f, Options{})
	mustAppend(f, l, Record{Type: "start", Outcome: "ok"})
	oldNote := latest(f, dir)
	for i := 0; i < 3; i++ {
		mustAppend(f, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	}
	old, _ := OpenCheckpoint(oldNote, pub)
	cur, _ := OpenCheckpoint(latest(f, dir), pub)
	var buf bytes.Buffer
	RecordsSince(Files(dir), old.Seq, &buf)
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add([]byte("{}\n"))
	want := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	f.Fuzz(func(t *testing.T, records []byte) {
		if Extends(old, cur, bytes.NewReader(records), nil) != nil {
			return
		}
		// Only the log's records reach the hash: h pins each T, T pins
		// the mac before it. The last record's own mac is pinned by
		// nothing the witness holds, and need not be the log's.
		got := bytes.SplitAfter(records, []byte("\n"))
		for i := 0; i < 3; i++ {
			if i >= len(got) {
				t.Fatalf("accepted %d records, want 3", len(got))
			}
			a, _ := parseHeader(got[i])
			b, _ := parseHeader(want[i])
			if !bytes.Equal(a.content, b.content) || !bytes.Equal(a.hash, b.hash) || (i < 2 && !bytes.Equal(a.mac, b.mac)) {
				t.Fatalf("accepted record %d that is not the log's: %q", i, got[i])
			}
		}
	})
}

// TestRecordsSinceSeeks: RecordsSince serves exactly the records after
// any seq, as a plain filter over every line would, while it bisects into
// the file where they start; a torn line in the way changes nothing.
func TestRecordsSinceSeeks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	genLog(t, dir, randomKey(t), 3000, 300_000, stepClock(time.Unix(0, 0), time.Second), benchRecord)
	files := Files(dir)
	appendRawFile(t, files[len(files)-1], []byte(`{"seq":3001,"ts":"1970`))
	var all [][]byte
	for _, f := range files {
		for _, ln := range readLines(t, f) {
			if _, reason := parseHeader(ln); reason == "" {
				all = append(all, ln)
			}
		}
	}
	for _, since := range []uint64{0, 1, 2, 999, 1000, 1001, 2500, 2998, 2999, 3000, 5000} {
		var got bytes.Buffer
		n, err := RecordsSince(files, since, &got)
		var want []byte
		for _, ln := range all {
			if h, _ := parseHeader(ln); h.seq > since {
				want = append(want, ln...)
			}
		}
		if err != nil || !bytes.Equal(got.Bytes(), want) || int(n) != bytes.Count(want, []byte("\n")) {
			t.Fatalf("since %d: got %d records (%v), want %d", since, n, err, bytes.Count(want, []byte("\n")))
		}
	}
	if off, err := seekSeq(files[0], 1500); err != nil || off == 0 {
		t.Fatalf("seekSeq: %d, %v; want it to skip the start of the file", off, err)
	}
}
