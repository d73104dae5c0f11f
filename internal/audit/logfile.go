package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// ArchiveSuffix ends the name of an archived, zstd-compressed file.
const ArchiveSuffix = ".zst"

// maxDecoderMemory bounds what a zstd decoder may allocate for its window,
// so that a hostile archive cannot make a reader take gigabytes: the
// archiver writes with a window well below it.
const maxDecoderMemory = 64 << 20

// openLog opens a record file for reading, decompressing an archived one.
// wrap, if not nil, wraps the file beneath the decompressor.
func openLog(path string, wrap func(io.Reader) io.Reader) (io.Reader, func(), error) {
	return openReader(path, strings.HasSuffix(path, ArchiveSuffix), wrap)
}

func openReader(path string, compressed bool, wrap func(io.Reader) io.Reader) (io.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	var raw io.Reader = f
	if wrap != nil {
		raw = wrap(f)
	}
	if !compressed {
		return raw, func() { f.Close() }, nil
	}
	d, err := zstd.NewReader(raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecoderMemory), zstd.WithDecoderMaxWindow(maxDecoderMemory))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return d, func() { d.Close(); f.Close() }, nil
}

// firstLine returns the first line of a record file (with its newline), or
// what there is of it up to a record's length.
func firstLine(path string) ([]byte, error) {
	r, closeFn, err := openLog(path, nil)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	br := bufio.NewReaderSize(r, MaxRecordBytes+1)
	line, err := br.ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return bytes.Clone(line), nil
}

// progressReader counts the bytes read from the file beneath a reader and
// reports them every progressStep.
type progressReader struct {
	r     io.Reader
	done  *int64
	total int64
	last  int64
	fn    func(done, total int64)
}

const progressStep = 4 << 20

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	*p.done += int64(n)
	if *p.done-p.last >= progressStep || (err == io.EOF && *p.done != p.last) {
		p.last = *p.done
		p.fn(min(*p.done, p.total), p.total)
	}
	return n, err
}
