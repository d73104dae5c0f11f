package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ArchiveDirName is the default archive directory, inside the audit
// directory, so that it keeps the audit directory's 0700 and its place
// outside every sandbox.
const ArchiveDirName = "archive"

// ArchiveOptions adjust Archive.
type ArchiveOptions struct {
	// Before selects whole files whose last record is older than this.
	Before time.Time
	// Dir is the archive directory; "" means ArchiveDirName inside the
	// log's directory.
	Dir string
	// Key is K0: what is archived is first verified with it, MACs and all.
	Key []byte
	// ForceUnwitnessed allows archiving records after the last checkpoint
	// a witness stored (RecordWitnessed), or with no witness at all.
	ForceUnwitnessed bool
}

// ArchiveResult says what Archive did.
type ArchiveResult struct {
	Dir   string
	Files []ArchivedFile
	// Record is the head after the archive record was written.
	Record Head
}

// Archive moves the log's oldest whole files whose last record is older
// than o.Before into the archive directory, compressed with zstd, and
// records that in an archive record naming the last archived record's
// seq, mac and h (and a signed checkpoint of it, when the log has a
// checkpoint key). The live log then starts at the record after it and
// still verifies; verify over the archived and live files together checks
// the whole history.
//
// It never removes data it has not verified: the whole log is verified
// with K0 first and must end at the writer's head, each compressed copy is
// read back and must decompress to the original's bytes (length and
// SHA-256) before the original is removed, and the archive record is
// durable before anything is removed. The active file is never archived,
// nor, unless o.ForceUnwitnessed, any record after the last witnessed
// checkpoint. A failed removal (chattr +a) leaves both copies, which
// verify reads as one.
//
// Appends wait while it runs: the log's lock is held throughout, because
// the files must not change between the verification and the record.
func (l *Log) Archive(o ArchiveOptions) (ArchiveResult, error) {
	var res ArchiveResult
	if o.Key == nil {
		return res, errors.New("audit archive: K0 is needed to verify what is archived (pass --key K0, or keep it in the secret store)")
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(l.dir, ArchiveDirName)
	}
	res.Dir = o.Dir
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return res, errClosed
	}
	if l.failed != nil || l.stateErr() != nil {
		return res, errors.New("audit archive: the log is unhealthy; append a record (or restart relay) so it recovers first")
	}

	files, err := ListFiles(l.dir)
	if err != nil {
		return res, fmt.Errorf("audit archive: %w", err)
	}
	var ends []fileEnd
	sum, _, err := verify(files, &VerifyOptions{Key: o.Key, fileEnds: &ends}, 0)
	if err != nil {
		return res, fmt.Errorf("audit archive: the log does not verify, so nothing is archived: %w", err)
	}
	if sum.Head.Seq != l.c.seq || sum.Head.MAC != string(l.c.mac[:]) {
		return res, fmt.Errorf("audit archive: the files end at seq %d but the writer's head is seq %d", sum.Head.Seq, l.c.seq)
	}

	var limit uint64 = ^uint64(0)
	if !o.ForceUnwitnessed {
		w, err := LastWitnessed(l.dir)
		if err != nil {
			return res, fmt.Errorf("audit archive: %w: nothing outside this host pins the records yet (run the witness first, or pass --force-unwitnessed)", err)
		}
		limit = w.Seq
	}

	// The oldest files, up to the first one that is too new, never the
	// active one.
	var pick []string
	var last fileEnd
	for i, path := range files[:len(files)-1] {
		h, ok, err := lastRecord(path)
		if err != nil {
			return res, fmt.Errorf("audit archive: %w", err)
		}
		if !ok || i >= len(ends) || ends[i].seq != h.seq {
			return res, fmt.Errorf("audit archive: %s does not end in the record verify saw", filepath.Base(path))
		}
		ts, err := time.Parse(tsLayout, string(h.ts))
		if err != nil || !ts.Before(o.Before) || h.seq > limit {
			break
		}
		pick, last = append(pick, path), ends[i]
	}
	if len(pick) == 0 {
		why := fmt.Sprintf("no whole file ends before %s", o.Before.UTC().Format(time.RFC3339))
		if limit != ^uint64(0) {
			why += fmt.Sprintf(" and at or before the last witnessed checkpoint (seq %d)", limit)
		}
		return res, fmt.Errorf("audit archive: nothing to archive: %s (the newest file is never archived)", why)
	}

	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return res, fmt.Errorf("audit archive: %w", err)
	}
	if err := checkDir(o.Dir); err != nil {
		return res, fmt.Errorf("audit archive: %w", err)
	}
	for _, path := range pick {
		af, err := archiveFile(path, o.Dir)
		if err != nil {
			return res, fmt.Errorf("audit archive: %w (nothing was removed)", err)
		}
		res.Files = append(res.Files, af)
	}
	if err := l.fs.SyncDir(o.Dir); err != nil {
		return res, fmt.Errorf("audit archive: %w (nothing was removed)", err)
	}

	a := &Archived{Seq: last.seq, MAC: string(last.mac[:]), Dir: o.Dir, Files: res.Files}
	if last.hashed {
		a.Hash = hex.EncodeToString(last.hash[:])
		if l.signer != nil {
			cp, err := l.signer.sign(last.seq, &last.hash)
			if err != nil {
				return res, fmt.Errorf("audit archive: %w (nothing was removed)", err)
			}
			a.Note = string(cp.Note)
		}
	}
	first := res.Files[0].First
	rec := Record{Type: KindArchive, Outcome: OutcomeOK, Archived: a,
		Detail: fmt.Sprintf("archived records %d-%d (%d file(s)) to %s", first, last.seq, len(res.Files), o.Dir)}
	if res.Record, err = l.appendLocked(&rec, false); err != nil {
		return res, fmt.Errorf("audit archive: %w (the copies are in %s; nothing was removed)", err, o.Dir)
	}
	if err := l.state.flush(); err != nil {
		return res, fmt.Errorf("audit archive: write key state: %w (nothing was removed)", err)
	}

	var failed []string
	for _, path := range pick {
		if err := os.Remove(path); err != nil {
			failed = append(failed, filepath.Base(path))
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return res, fmt.Errorf("audit archive: %w", err)
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("audit archive: archived and recorded, but %s could not be removed (chattr +a? remove the attribute and delete them: their verified copies are in %s)", strings.Join(failed, ", "), o.Dir)
	}
	return res, nil
}

// archiveWindow bounds the zstd window the archiver uses, well under what
// a reader accepts (maxDecoderMemory).
const archiveWindow = 8 << 20

// archiveFile compresses path into dir as <name>.zst: to a temp file,
// fsynced, read back and compared with the original, then renamed. A copy
// already there from an interrupted run is kept if it reads back the same.
func archiveFile(path, dir string) (ArchivedFile, error) {
	name := filepath.Base(path)
	af := ArchivedFile{Name: name}
	first, err := firstLine(path)
	if err != nil {
		return af, err
	}
	fh, reason := parseHeader(first)
	lh, ok, err := lastRecord(path)
	if err != nil {
		return af, err
	}
	if reason != "" || !ok {
		return af, fmt.Errorf("%s: no records to archive", name)
	}
	af.First, af.Last = fh.seq, lh.seq

	src, err := os.Open(path)
	if err != nil {
		return af, err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, ".archive-*")
	if err != nil {
		return af, err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	enc, err := zstd.NewWriter(tmp, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(archiveWindow), zstd.WithEncoderCRC(true))
	if err != nil {
		tmp.Close()
		return af, err
	}
	sh := sha256.New()
	n, err := io.Copy(enc, io.TeeReader(src, sh))
	if err == nil {
		err = enc.Close()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return af, fmt.Errorf("compress %s: %w", name, err)
	}
	af.Bytes, af.SHA256 = n, hex.EncodeToString(sh.Sum(nil))

	if err := sameContent(tmp.Name(), af); err != nil {
		return af, fmt.Errorf("the compressed copy of %s does not read back: %w", name, err)
	}
	dst := filepath.Join(dir, name+ArchiveSuffix)
	if _, err := os.Stat(dst); err == nil {
		if err := sameContent(dst, af); err != nil {
			return af, fmt.Errorf("%s already exists and differs from %s: %w", dst, name, err)
		}
		return af, nil
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return af, err
	}
	return af, nil
}

// sameContent reads an archived file back and checks that it decompresses
// to af's length and SHA-256.
func sameContent(path string, af ArchivedFile) error {
	r, closeFn, err := openReader(path, true, nil)
	if err != nil {
		return err
	}
	defer closeFn()
	sh := sha256.New()
	n, err := io.Copy(sh, r)
	if err != nil {
		return err
	}
	if n != af.Bytes || !bytes.Equal([]byte(hex.EncodeToString(sh.Sum(nil))), []byte(af.SHA256)) {
		return fmt.Errorf("got %d bytes, SHA-256 %.16x…; want %d bytes, %.16s…", n, sh.Sum(nil), af.Bytes, af.SHA256)
	}
	return nil
}
