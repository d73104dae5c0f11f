package audit

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// tailBlock is how much the tail reader reads at a time: a few records'
// worth of lines for -n 10, and big enough that a full scan backwards
// costs about what a forward one does.
const tailBlock = 64 << 10

// eachLineBack calls fn with the lines of the first size bytes of r, the
// last line first. It splits them as scanShow does: a line ends after each
// "\n", and a final fragment without one (a torn write) is a line too. fn
// gets the line with its newline (the fragment without), aliasing a buffer
// that the next call reuses, and the offset where it starts; a line whose
// text is longer than MaxRecordBytes comes as nil with long set, its bytes
// skipped and never held. fn returns false to stop. Memory stays at one
// block plus one record, however long the file.
func eachLineBack(r io.ReaderAt, size int64, block int, fn func(line []byte, start int64, long bool) bool) error {
	buf := make([]byte, 0, block+MaxRecordBytes+1)
	// data is buf[:len(data)], holding file[pos:end]: the part of what is
	// left, after the lines already passed to fn, that has been read.
	data, pos, end := buf[:0], size, size
	// more reads up to a block from before pos in front of the first keep
	// bytes of data, dropping the rest, and returns how much it read.
	more := func(keep int) (int, error) {
		n := int(min(int64(block), pos))
		buf = buf[:n+keep]
		copy(buf[n:], data[:keep])
		if _, err := r.ReadAt(buf[:n], pos-int64(n)); err != nil {
			return 0, err
		}
		pos -= int64(n)
		data = buf
		return n, nil
	}
	for end > 0 {
		if len(data) == 0 {
			if _, err := more(0); err != nil {
				return err
			}
		}
		// The line ends at end; its text stops before a final newline,
		// and the newline before the line is searched for from there.
		text := len(data)
		if data[text-1] == '\n' {
			text--
		}
		i := bytes.LastIndexByte(data[:text], '\n')
		for i < 0 && pos > 0 && text <= MaxRecordBytes {
			n, err := more(len(data))
			if err != nil {
				return err
			}
			text += n
			i = bytes.LastIndexByte(data[:n], '\n')
		}
		long := false
		if i < 0 && pos > 0 {
			// Longer than any record: drop it and look for its start.
			long = true
			for i < 0 && pos > 0 {
				if _, err := more(0); err != nil {
					return err
				}
				i = bytes.LastIndexByte(data, '\n')
			}
		}
		start := pos + int64(i+1)
		long = long || text-(i+1) > MaxRecordBytes
		var line []byte
		if !long {
			line = data[i+1:]
		}
		if !fn(line, start, long) {
			return nil
		}
		data, end = data[:i+1], start
	}
	return nil
}

// pendingNo is a shown unreadable line whose number in its file is not
// known yet: the tail reader counts lines only when it shows one.
type pendingNo struct {
	idx   int // into the result
	path  string
	start int64
}

// summarizeTail is Summarize for n > 0: it reads the newest file from its
// end backwards, and the one before only when the newest holds fewer than
// n matches, decoding only lines the pre-check could not rule out.
func summarizeTail(files []string, f Filter, n, block int) ([]Line, error) {
	q := newQuery(&f)
	var out []Line // newest first
	var pending []pendingNo
	files = sortFiles(files)
	for k := len(files) - 1; k >= 0 && len(out) < n; k-- {
		path := files[k]
		name := filepath.Base(path)
		if strings.HasSuffix(path, ArchiveSuffix) {
			// A compressed file reads forwards only: keep its last
			// matches.
			var got []Line
			want := n - len(out)
			err := scanShow(path, q, func(l Line) error {
				if got = append(got, l); len(got) > want {
					got = got[1:]
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			slices.Reverse(got)
			out = append(out, got...)
			continue
		}
		fh, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		fi, err := fh.Stat()
		if err == nil {
			err = eachLineBack(fh, fi.Size(), block, func(s []byte, start int64, long bool) bool {
				l, show, unreadable := q.classify(name, s, long)
				if !show {
					return true
				}
				if unreadable {
					pending = append(pending, pendingNo{idx: len(out), path: path, start: start})
				}
				out = append(out, l)
				return len(out) < n
			})
		}
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("read audit log %s: %w", name, err)
		}
	}
	if err := numberLines(out, pending); err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}

// numberLines fills in the line numbers of the unreadable lines in out,
// counting newlines from the start of each file up to them: the cost of a
// forward pass, paid only when a damaged line is shown.
func numberLines(out []Line, pending []pendingNo) error {
	slices.SortFunc(pending, func(a, b pendingNo) int {
		if c := cmp.Compare(a.path, b.path); c != 0 {
			return c
		}
		return cmp.Compare(a.start, b.start)
	})
	var buf []byte
	for i := 0; i < len(pending); {
		path := pending[i].path
		fh, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		if len(buf) == 0 {
			buf = make([]byte, 1<<20)
		}
		var off int64
		lines := 1
		for ; i < len(pending) && pending[i].path == path; i++ {
			p := pending[i]
			for off < p.start {
				m := int(min(int64(len(buf)), p.start-off))
				n, err := fh.ReadAt(buf[:m], off)
				lines += bytes.Count(buf[:n], []byte{'\n'})
				off += int64(n)
				if err != nil && n < m {
					fh.Close()
					return fmt.Errorf("read audit log %s: %w", filepath.Base(path), err)
				}
			}
			out[p.idx] = unreadableLine(out[p.idx].File, lines)
		}
		fh.Close()
	}
	return nil
}
