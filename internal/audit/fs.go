package audit

import (
	"io"
	"os"

	"github.com/relaychat/relay/internal/atomicfile"
)

// FS is the filesystem the log writes through. Tests substitute one that
// fails on cue (ENOSPC, EIO, EACCES, a failed fsync or state write); the
// default is the real one.
type FS interface {
	// OpenFile opens a record file (O_APPEND for writing, O_RDONLY for
	// reading back the tail).
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// WriteFileAtomic replaces name with data, durably (internal/atomicfile).
	WriteFileAtomic(name string, data []byte, perm os.FileMode) error
	// SyncDir makes a new directory entry durable.
	SyncDir(dir string) error
}

// File is the part of *os.File the log uses.
type File interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Close() error
	Stat() (os.FileInfo, error)
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(name, data, perm)
}

func (osFS) SyncDir(dir string) error { return atomicfile.SyncDir(dir) }
