package audit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// faultFS fails chosen operations on cue.
type faultFS struct {
	osFS
	mu       sync.Mutex
	writeErr error // Write fails with it, after writing partial bytes
	partial  int
	syncErr  error
	stateErr error
	openErr  error // OpenFile for writing fails with it
}

func (f *faultFS) set(fn func(*faultFS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultFS) clear() {
	f.set(func(f *faultFS) { f.writeErr, f.syncErr, f.stateErr, f.openErr, f.partial = nil, nil, nil, nil, 0 })
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f.mu.Lock()
	err := f.openErr
	f.mu.Unlock()
	if err != nil && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	file, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	f.mu.Lock()
	err := f.stateErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.osFS.WriteFileAtomic(name, data, perm)
}

type faultFile struct {
	*os.File
	fs *faultFS
}

func (f *faultFile) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	err, n := f.fs.writeErr, f.fs.partial
	f.fs.mu.Unlock()
	if err == nil {
		return f.File.Write(b)
	}
	if n < 0 {
		n += len(b)
	}
	n = min(n, len(b))
	if n > 0 {
		if _, werr := f.File.Write(b[:n]); werr != nil {
			return 0, werr
		}
	}
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: err}
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	err := f.fs.syncErr
	f.fs.mu.Unlock()
	if err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

// checkOnlyTornTail asserts that verify, before the log recovers, finds
// either a valid chain or exactly a torn tail: nothing half-written in a
// way the recovery pattern does not cover.
func checkOnlyTornTail(t *testing.T, dir string, k0 []byte) {
	t.Helper()
	files, _ := ListFiles(dir)
	_, err := Verify(files, k0, nil)
	var ve *VerifyError
	if err == nil {
		return
	}
	head := l0Head(t, files)
	if !errors.As(err, &ve) || ve.Seq != head+1 || !(strings.Contains(ve.Reason, "torn") || strings.Contains(ve.Reason, "incomplete") || strings.Contains(ve.Reason, "malformed")) {
		t.Fatalf("before recovery verify says %v, want a valid chain or torn bytes right after seq %d", err, head)
	}
}

// l0Head is the seq of the last well-formed line in files.
func l0Head(t *testing.T, files []string) uint64 {
	var head uint64
	for _, f := range files {
		for _, ln := range readLines(t, f) {
			if h, r := parseHeader(ln); r == "" {
				head = h.seq
			}
		}
	}
	return head
}

func TestFailClosed(t *testing.T) {
	tests := []struct {
		name   string
		inject func(*faultFS)
		errno  error
		// rotate makes the failing append the one that starts a new file.
		rotate bool
	}{
		{"disk full, nothing written", func(f *faultFS) { f.writeErr = syscall.ENOSPC }, syscall.ENOSPC, false},
		{"disk full, torn write", func(f *faultFS) { f.writeErr, f.partial = syscall.ENOSPC, 37 }, syscall.ENOSPC, false},
		{"disk full, all but the newline", func(f *faultFS) { f.writeErr, f.partial = syscall.ENOSPC, -1 }, syscall.ENOSPC, false},
		{"EIO after the whole line", func(f *faultFS) { f.writeErr, f.partial = syscall.EIO, 1<<20 }, syscall.EIO, false},
		{"EIO", func(f *faultFS) { f.writeErr, f.partial = syscall.EIO, 5 }, syscall.EIO, false},
		{"permission denied", func(f *faultFS) { f.writeErr = syscall.EACCES }, syscall.EACCES, false},
		{"file too large", func(f *faultFS) { f.writeErr, f.partial = syscall.EFBIG, 100 }, syscall.EFBIG, false},
		{"fsync fails", func(f *faultFS) { f.syncErr = syscall.EIO }, syscall.EIO, false},
		{"rotation cannot create the file", func(f *faultFS) { f.openErr = syscall.EACCES }, syscall.EACCES, true},
		{"rotation write torn", func(f *faultFS) { f.writeErr, f.partial = syscall.ENOSPC, 20 }, syscall.ENOSPC, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ffs := &faultFS{}
			o := Options{FS: ffs}
			if tt.rotate {
				o.RotateBytes = 1200
			}
			dir, k0, l := newLog(t, o)
			for i := 0; i < 2; i++ {
				mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
			}
			before := l.Head()
			ffs.set(tt.inject)
			var err error
			for i := 0; i < 4 && err == nil; i++ { // with rotate, the first append that rotates fails
				_, err = l.Append(Record{Type: "exec_start", Outcome: "ok", Command: "reboot", Job: strconv.Itoa(i)})
			}
			if err == nil {
				t.Fatal("got nil from Append under the fault, want an error")
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("got %v, want it to wrap %v", err, tt.errno)
			}
			if herr := l.Healthy(); herr == nil || !errors.Is(herr, tt.errno) {
				t.Errorf("got Healthy() = %v, want an error wrapping %v", herr, tt.errno)
			}
			if _, err := l.Append(Record{Type: "request"}); err == nil {
				t.Fatal("got nil from a second Append while the fault lasts, want an error")
			}
			if err := l.Heal(); err == nil && !tt.rotate { // the old file may still take a recovery record
				t.Fatal("got nil from Heal while the fault lasts, want an error")
			}
			checkOnlyTornTail(t, dir, k0)

			ffs.clear()
			h := mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
			if err := l.Healthy(); err != nil {
				t.Fatalf("got Healthy() = %v after a successful append, want nil", err)
			}
			if h.Seq <= before.Seq {
				t.Fatalf("got head %d, want past %d", h.Seq, before.Seq)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			sum := mustVerify(t, dir, k0)
			if sum.Recoveries < 1 {
				t.Fatalf("got %d recovery records, want at least 1 explaining the failure", sum.Recoveries)
			}
			lines, _ := Summarize(Files(dir), Filter{Types: []string{"recovery"}}, 0)
			if len(lines) == 0 || !strings.Contains(lines[0].Reason, tt.errno.Error()) {
				t.Fatalf("got recovery records %v, want one naming %v", lines, tt.errno)
			}
		})
	}
}

func TestStateWriteFailure(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("SyncState=%v", sync), func(t *testing.T) {
			ffs := &faultFS{}
			dir, k0, l := newLog(t, Options{FS: ffs, SyncState: sync})
			mustAppend(t, l, Record{Type: "start"})
			// The background writer may still owe the first record's state;
			// flush it so the fault hits only the write under test.
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			ffs.set(func(f *faultFS) { f.stateErr = syscall.ENOSPC })
			_, err := l.Append(Record{Type: "request", Command: "reboot"})
			if sync && err == nil {
				t.Fatal("got nil from Append with SyncState and a failing state write, want an error")
			}
			if !sync {
				if err != nil {
					t.Fatalf("got %v, want the append itself to succeed (state written after)", err)
				}
				if err := l.Sync(); err == nil {
					t.Fatal("got nil from Sync, want the state write's error")
				}
			}
			if err := l.Healthy(); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("got Healthy() = %v, want ENOSPC", err)
			}
			if _, err := l.Append(Record{Type: "request", Command: "reboot"}); err == nil {
				t.Fatal("got nil from Append while the key state cannot be saved, want an error")
			}
			ffs.clear()
			mustAppend(t, l, Record{Type: "request", Command: "uptime"})
			if err := l.Healthy(); err != nil {
				t.Fatalf("got %v, want healthy", err)
			}
			l.Close()
			mustVerify(t, dir, k0)
		})
	}
}

// TestFileSizeLimit runs a child with a low RLIMIT_FSIZE, so the kernel
// itself refuses the write (EFBIG), and checks the parent can recover.
func TestFileSizeLimit(t *testing.T) {
	if dir := os.Getenv("AUDIT_FSIZE_CHILD"); dir != "" {
		fsizeChild(dir)
		return
	}
	dir, k0, l := newLog(t, Options{})
	l.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileSizeLimit$")
	cmd.Env = append(os.Environ(), "AUDIT_FSIZE_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "child: fail-closed ok") {
		t.Fatalf("child output %q, want it to report the fail-closed checks", out)
	}
	checkOnlyTornTail(t, dir, k0)
	l, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, Record{Type: "start"})
	l.Close()
	if sum := mustVerify(t, dir, k0); sum.Recoveries != 1 {
		t.Fatalf("got %+v, want one recovery record", sum)
	}
}

func fsizeChild(dir string) {
	fail := func(f string, a ...any) {
		fmt.Printf("child: "+f+"\n", a...)
		os.Exit(1)
	}
	fi, err := os.Stat(filepath.Join(dir, "audit-000001.jsonl"))
	if err != nil {
		fail("%v", err)
	}
	lim := uint64(fi.Size()) + 1000
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
		fail("setrlimit: %v", err)
	}
	l, err := Open(dir, Options{})
	if err != nil {
		fail("open: %v", err)
	}
	var aerr error
	for i := 0; i < 20 && aerr == nil; i++ {
		_, aerr = l.Append(Record{Type: "request", Outcome: "ok", Command: "uptime", Detail: strings.Repeat("x", 100)})
	}
	if !errors.Is(aerr, syscall.EFBIG) {
		fail("got %v, want EFBIG", aerr)
	}
	if !errors.Is(l.Healthy(), syscall.EFBIG) {
		fail("got Healthy() = %v, want EFBIG", l.Healthy())
	}
	if _, err := l.Append(Record{Type: "request"}); err == nil {
		fail("second append succeeded at the size limit")
	}
	l.Close()
	fmt.Println("child: fail-closed ok")
	os.Exit(0)
}
