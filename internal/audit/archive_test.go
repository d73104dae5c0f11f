package audit

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// dayClock moves an hour per call, so that a rotated log spans days.
func dayClock() func() time.Time {
	return stepClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour)
}

// archiveLog is a log over a few days, rotated every ~2 KB, witnessed at
// its head.
func archiveLog(t *testing.T) (dir string, k0 []byte, l *Log, pub string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "audit")
	clk := dayClock()
	k0, err := InitWith(dir, nil, InitOptions{Now: clk})
	if err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, Options{RotateBytes: 2000, Now: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for i := 0; i < 80; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime", Detail: strings.Repeat("x", i%7)})
	}
	if _, err := RecordWitnessed(dir, latest(t, dir)); err != nil {
		t.Fatal(err)
	}
	pub, _ = ReadPublicKey(dir)
	return dir, k0, l, pub
}

var archiveBefore = time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)

// TestArchive: whole old files move to the archive, compressed; the live
// log still verifies, from the record after the archived ones; live and
// archive together verify the whole history; show reads both; and the
// relay goes on writing.
func TestArchive(t *testing.T) {
	dir, k0, l, pub := archiveLog(t)
	before := Files(dir)
	headBefore := l.Head()
	res, err := l.Archive(ArchiveOptions{Before: archiveBefore, Key: k0})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) == 0 || len(res.Files) >= len(before)-1 {
		t.Fatalf("archived %d of %d files, want some, not all", len(res.Files), len(before))
	}
	last := res.Files[len(res.Files)-1]
	for _, af := range res.Files {
		if _, err := os.Stat(filepath.Join(dir, af.Name)); !os.IsNotExist(err) {
			t.Fatalf("%s is still in the live log", af.Name)
		}
		if _, err := os.Stat(filepath.Join(dir, ArchiveDirName, af.Name+ArchiveSuffix)); err != nil {
			t.Fatalf("no archived copy of %s: %v", af.Name, err)
		}
	}
	if e := lastEntry(t, filepath.Join(dir, res.Record.File)); e.Seq != res.Record.Seq || e.Type != "archive" || e.Archived == nil || e.Archived.Seq != last.Last || e.Archived.Note == "" || res.Record.Seq > headBefore.Seq+2 {
		t.Fatalf("got %+v at the head, want the archive record naming seq %d, written after %d (a rotate record may come first)", e, last.Last, headBefore.Seq)
	}
	// The archived ones end before the date; the next one does not.
	al := bytes.SplitAfter(decompress(t, filepath.Join(dir, ArchiveDirName, last.Name+ArchiveSuffix)), []byte("\n"))
	e := mustParse(t, al[len(al)-2])
	if !e.Time.Before(archiveBefore) {
		t.Fatalf("archived a file ending %v, not before %v", e.Time, archiveBefore)
	}

	live, err := VerifyDirWith(dir, VerifyOptions{Key: k0, PublicKey: pub})
	if err != nil {
		t.Fatalf("the live log after archiving: %v", err)
	}
	if live.Start != last.Last+1 || live.Archives != 1 || !live.StateChecked {
		t.Fatalf("got %+v, want it to start at %d with the archive record checked", live, last.Last+1)
	}
	arch, _ := ListArchive(filepath.Join(dir, ArchiveDirName))
	all, err := VerifyFiles(append(arch, Files(dir)...), VerifyOptions{Key: k0, PublicKey: pub})
	if err != nil {
		t.Fatalf("archive and live together: %v", err)
	}
	if all.Start != 1 || all.Records != res.Record.Seq || all.Archives != 1 || !strings.Contains(live.String(), "archived") {
		t.Fatalf("got %+v (live %q), want the whole history from seq 1", all, live)
	}
	if _, err := VerifyFiles(append(arch, Files(dir)...), VerifyOptions{}); err != nil {
		t.Fatalf("without a key: %v", err)
	}
	// show reads archived files too, forwards and from the tail.
	var n int
	Scan(append(arch, Files(dir)...), Filter{}, func(Line) error { n++; return nil })
	if uint64(n) != res.Record.Seq {
		t.Fatalf("show saw %d records, want %d", n, res.Record.Seq)
	}
	lines, err := Summarize(arch, Filter{}, 3)
	if err != nil || len(lines) != 3 || lines[2].Seq != last.Last {
		t.Fatalf("show -n 3 of the archive: %v, %v", lines, err)
	}

	// The relay goes on, and opens again.
	mustAppend(t, l, Record{Type: "stop", Outcome: "ok"})
	l.Close()
	l2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l2, Record{Type: "start", Outcome: "ok"})
	l2.Close()
	if _, err := VerifyDir(dir, k0, nil); err != nil {
		t.Fatal(err)
	}
}

// TestArchiveRefuses: archive never moves what it has not verified, nor
// past what a witness holds, nor the active file.
func TestArchiveRefuses(t *testing.T) {
	t.Run("no witness", func(t *testing.T) {
		dir, k0, l, _ := archiveLog(t)
		os.Remove(filepath.Join(dir, WitnessedFile))
		_, err := l.Archive(ArchiveOptions{Before: archiveBefore, Key: k0})
		if err == nil || !strings.Contains(err.Error(), "--force-unwitnessed") {
			t.Fatalf("got %v, want a refusal naming --force-unwitnessed", err)
		}
		if _, err := l.Archive(ArchiveOptions{Before: archiveBefore, Key: k0, ForceUnwitnessed: true}); err != nil {
			t.Fatalf("forced: %v", err)
		}
	})
	t.Run("not past the witnessed checkpoint", func(t *testing.T) {
		dir, k0, l, _ := archiveLog(t)
		os.Remove(filepath.Join(dir, WitnessedFile))
		second := firstSeqOf(t, Files(dir)[1])
		if _, err := RecordWitnessed(dir, signedNoteAt(t, dir, second+1)); err != nil {
			t.Fatal(err)
		}
		res, err := l.Archive(ArchiveOptions{Before: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Key: k0})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Files) != 1 {
			t.Fatalf("archived %d files, want only the first: the second ends after the witnessed seq %d", len(res.Files), second+1)
		}
	})
	t.Run("never the active file", func(t *testing.T) {
		_, k0, l, _ := archiveLog(t)
		before := len(Files(l.dir))
		res, err := l.Archive(ArchiveOptions{Before: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Key: k0})
		if err != nil || len(res.Files) != before-1 {
			t.Fatalf("got %d files, %v; want all but the active one of %d", len(res.Files), err, before)
		}
	})
	t.Run("a log that does not verify", func(t *testing.T) {
		dir, k0, l, _ := archiveLog(t)
		f := Files(dir)[0]
		data := mustRead(t, f)
		os.WriteFile(f, bytes.Replace(data, []byte(`"uptime"`), []byte(`"uptimf"`), 1), 0o600)
		_, err := l.Archive(ArchiveOptions{Before: archiveBefore, Key: k0})
		if err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("got %v, want a refusal", err)
		}
		if _, err := os.Stat(filepath.Join(dir, ArchiveDirName)); !os.IsNotExist(err) {
			t.Fatal("an archive directory was made for a log that does not verify")
		}
		if got := mustRead(t, f); !bytes.Contains(got, []byte("uptimf")) {
			t.Fatal("the unverified file was touched")
		}
	})
	t.Run("a different copy already archived", func(t *testing.T) {
		dir, k0, l, _ := archiveLog(t)
		ad := filepath.Join(dir, ArchiveDirName)
		os.Mkdir(ad, 0o700)
		os.WriteFile(filepath.Join(ad, "audit-000001.jsonl"+ArchiveSuffix), compress(t, []byte("not the file\n")), 0o600)
		_, err := l.Archive(ArchiveOptions{Before: archiveBefore, Key: k0})
		if err == nil || !strings.Contains(err.Error(), "differs") || !strings.Contains(err.Error(), "nothing was removed") {
			t.Fatalf("got %v, want a refusal", err)
		}
		if !fileExists(filepath.Join(dir, "audit-000001.jsonl")) {
			t.Fatal("a file was removed")
		}
		if _, err := VerifyDir(dir, k0, nil); err != nil {
			t.Fatalf("the log after a refused archive: %v", err)
		}
	})
	t.Run("no key", func(t *testing.T) {
		_, _, l, _ := archiveLog(t)
		if _, err := l.Archive(ArchiveOptions{Before: archiveBefore}); err == nil || !strings.Contains(err.Error(), "K0") {
			t.Fatalf("got %v, want a refusal naming K0", err)
		}
	})
}

// TestArchiveTampering: what verify says about an archived log that was
// interfered with afterwards.
func TestArchiveTampering(t *testing.T) {
	setup := func(t *testing.T) (dir string, k0 []byte, arch []string, res ArchiveResult) {
		dir, k0, l, _ := archiveLog(t)
		res, err := l.Archive(ArchiveOptions{Before: archiveBefore, Key: k0})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		arch, _ = ListArchive(filepath.Join(dir, ArchiveDirName))
		return dir, k0, arch, res
	}
	t.Run("removal interrupted: both copies", func(t *testing.T) {
		dir, k0, arch, res := setup(t)
		for _, af := range res.Files {
			b := decompress(t, filepath.Join(dir, ArchiveDirName, af.Name+ArchiveSuffix))
			os.WriteFile(filepath.Join(dir, af.Name), b, 0o600)
		}
		if _, err := VerifyDir(dir, k0, nil); err != nil {
			t.Fatalf("live with the originals back: %v", err)
		}
		if sum, err := VerifyFiles(append(arch, Files(dir)...), VerifyOptions{Key: k0}); err != nil || sum.Start != 1 {
			t.Fatalf("archive and live with both copies: %+v, %v", sum, err)
		}
	})
	t.Run("an archived record edited", func(t *testing.T) {
		dir, k0, arch, _ := setup(t)
		b := decompress(t, arch[0])
		os.WriteFile(arch[0], compress(t, bytes.Replace(b, []byte(`"uptime"`), []byte(`"uptimf"`), 1)), 0o600)
		_, err := VerifyFiles(append(arch, Files(dir)...), VerifyOptions{Key: k0})
		wantVerifyError(t, err, 2, "bad mac")
		_, err = VerifyFiles(append(arch, Files(dir)...), VerifyOptions{})
		wantVerifyError(t, err, 2, "h does not match")
	})
	t.Run("the archive record removed", func(t *testing.T) {
		dir, k0, _, res := setup(t)
		cutAfter(t, dir, res.Record.Seq-1)
		_, err := Verify(Files(dir), k0, nil)
		wantVerifyError(t, err, res.Files[len(res.Files)-1].Last+1, "no archive record names")
	})
	t.Run("the first live file removed as well", func(t *testing.T) {
		dir, k0, _, _ := setup(t)
		os.Remove(Files(dir)[0])
		_, err := Verify(Files(dir), k0, nil)
		wantVerifyError(t, err, firstSeqOf(t, Files(dir)[0]), "deleted")
	})
	t.Run("archived files without the last one", func(t *testing.T) {
		dir, k0, arch, _ := setup(t)
		_, err := VerifyFiles(append(arch[:len(arch)-1:len(arch)-1], Files(dir)...), VerifyOptions{Key: k0})
		wantVerifyError(t, err, firstSeqOf(t, Files(dir)[0]), "where")
	})
}

// signedNoteAt signs seq's record as a checkpoint, as the host would have
// then.
func signedNoteAt(t testing.TB, dir string, seq uint64) []byte {
	t.Helper()
	sg, err := loadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got *Checkpoint
	eachRecordAfter(Files(dir), seq-1, func(_ []byte, h *header) (bool, error) {
		var hv [32]byte
		copy(hv[:], decodeHex(t, h.hash))
		cp, err := sg.sign(h.seq, &hv)
		got = &cp
		return false, err
	})
	if got == nil {
		t.Fatalf("no record %d", seq)
	}
	return got.Note
}

func decodeHex(t testing.TB, b []byte) []byte {
	out := make([]byte, len(b)/2)
	if _, err := hex.Decode(out, b); err != nil {
		t.Fatal(err)
	}
	return out
}

func compress(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, _ := zstd.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func decompress(t *testing.T, path string) []byte {
	t.Helper()
	r, closeFn, err := openLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// FuzzArchiveRecord: an archive record is read from the log, which an
// attacker may have written: checkArchive never panics, and accepts one
// only when it names a file end of the log exactly, with valid fields.
func FuzzArchiveRecord(f *testing.F) {
	var end fileEnd
	end.seq = 40
	copy(end.mac[:], bytes.Repeat([]byte("ab"), 32))
	end.hash[0], end.hashed = 7, true
	a := &Archived{Seq: 40, MAC: string(end.mac[:]), Hash: hex.EncodeToString(end.hash[:]), Dir: "/x",
		Files: []ArchivedFile{{Name: "audit-000001.jsonl", First: 1, Last: 40, Bytes: 9, SHA256: strings.Repeat("0", 64)}}}
	body, _ := encodeBody(&Record{Type: "archive", Outcome: "ok", Archived: a})
	line, _, _ := appendLine(nil, newSealer(make([]byte, keySize)), newLinkHash(), 77, time.Unix(5, 0), bytes.Repeat([]byte("c"), 64), &[32]byte{}, body)
	f.Add(line)
	f.Add(bytes.Replace(line, []byte(`"seq":40`), []byte(`"seq":41`), 1))
	f.Add(bytes.Replace(line, []byte(`"last":40`), []byte(`"last":39`), 1))
	f.Fuzz(func(t *testing.T, line []byte) {
		h, reason := parseHeader(line)
		if reason != "" || string(h.typ) != "archive" {
			return
		}
		if checkArchive(&h, []fileEnd{end}, nil, h.seq, "") != "" {
			return
		}
		e, err := ParseRecord(line)
		if err != nil {
			return // the JSON decoder is laxer than the record parser; verify frames first
		}
		ar := e.Archived
		if ar == nil || ar.Seq != end.seq || ar.MAC != string(end.mac[:]) || ar.Hash != hex.EncodeToString(end.hash[:]) || ar.check(h.seq) != "" {
			t.Fatalf("accepted an archive record that does not name the file end: %+v", ar)
		}
	})
}
