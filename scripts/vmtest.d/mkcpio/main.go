// Command mkcpio writes an initramfs: a cpio archive in the "newc" format
// the kernel unpacks, described by a spec in the format of the kernel's own
// usr/gen_init_cpio (one entry a line, "#" starts a comment):
//
//	dir   <name> <mode> <uid> <gid>
//	file  <name> <location> <mode> <uid> <gid>
//	nod   <name> <mode> <uid> <gid> <b|c> <maj> <min>
//	slink <name> <target> <mode> <uid> <gid>
//
// It reads the spec on stdin and writes the archive on stdout. Owners, modes
// and device nodes come from the spec, not from the files, so building an
// initramfs needs neither root nor the cpio package, and the same inputs
// give the same bytes (every mtime is 0).
//
// It exists for scripts/vmtest and must never be part of the relay.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const usage = `usage: mkcpio <spec >initramfs.cpio`

func main() {
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	if err := write(w, os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "mkcpio: %v\n", err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "mkcpio: %v\n", err)
		os.Exit(1)
	}
}

// File types, as cpio's mode field carries them.
const (
	typeDir  = 0o040000
	typeReg  = 0o100000
	typeLink = 0o120000
	typeChr  = 0o020000
	typeBlk  = 0o060000
)

// header is a newc entry's header, less the fields that are always zero
// (mtime, the device holding the file, the checksum).
type header struct {
	mode, uid, gid, nlink uint32
	size                  int64
	rmaj, rmin            uint32
	name                  string
}

// write turns the spec read from r into an archive on w.
func write(w io.Writer, r io.Reader) error {
	a := &archive{w: w}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := a.entry(f); err != nil {
			return fmt.Errorf("spec line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	return a.put(header{name: "TRAILER!!!", nlink: 1}, nil)
}

type archive struct {
	w   io.Writer
	ino uint32
	off int64 // bytes written, for the 4-byte alignment newc wants
}

// entry writes the entry of one spec line, split into fields.
func (a *archive) entry(f []string) error {
	want := map[string]int{"dir": 5, "file": 6, "nod": 8, "slink": 6}[f[0]]
	if want == 0 {
		return fmt.Errorf("unknown entry type %q (want dir, file, nod or slink)", f[0])
	}
	if len(f) != want {
		return fmt.Errorf("%s: got %d fields, want %d", f[0], len(f), want)
	}
	// The name, then the fields after the type-specific one.
	h := header{name: strings.TrimPrefix(f[1], "/"), nlink: 1}
	if h.name == "" {
		return fmt.Errorf("%s: empty name", f[0])
	}
	rest := f[2:]
	if f[0] == "file" || f[0] == "slink" {
		rest = f[3:]
	}
	nums, err := octalDec(rest[0], rest[1], rest[2])
	if err != nil {
		return fmt.Errorf("%s %s: %w", f[0], f[1], err)
	}
	h.mode, h.uid, h.gid = nums[0]&0o7777, nums[1], nums[2]
	switch f[0] {
	case "dir":
		h.mode |= typeDir
		h.nlink = 2
		return a.put(h, nil)
	case "slink":
		h.mode |= typeLink
		h.size = int64(len(f[2]))
		return a.put(h, strings.NewReader(f[2]))
	case "nod":
		switch f[5] {
		case "c":
			h.mode |= typeChr
		case "b":
			h.mode |= typeBlk
		default:
			return fmt.Errorf("nod %s: device type %q (want b or c)", f[1], f[5])
		}
		maj, err1 := strconv.ParseUint(f[6], 10, 32)
		min, err2 := strconv.ParseUint(f[7], 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("nod %s: %w", f[1], err)
		}
		h.rmaj, h.rmin = uint32(maj), uint32(min)
		return a.put(h, nil)
	}
	src, err := os.Open(f[2])
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("file %s: %s is not a regular file", f[1], f[2])
	}
	h.mode |= typeReg
	h.size = fi.Size()
	return a.put(h, src)
}

// octalDec parses a mode (octal) and a uid and gid (decimal).
func octalDec(mode, uid, gid string) ([3]uint32, error) {
	var v [3]uint32
	for i, s := range []string{mode, uid, gid} {
		base := 10
		if i == 0 {
			base = 8
		}
		n, err := strconv.ParseUint(s, base, 32)
		if err != nil {
			return v, err
		}
		v[i] = uint32(n)
	}
	return v, nil
}

// put writes one entry: header, NUL-terminated name and data, each of the
// latter two padded to a multiple of 4 bytes from the archive's start.
func (a *archive) put(h header, data io.Reader) error {
	if h.size > 0xffffffff {
		return fmt.Errorf("%s: %d bytes is too large for cpio", h.name, h.size)
	}
	a.ino++
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		a.ino, h.mode, h.uid, h.gid, h.nlink, 0, h.size, 0, 0, h.rmaj, h.rmin, len(h.name)+1, 0)
	if err := a.emit(strings.NewReader(hdr+h.name+"\x00"), -1); err != nil {
		return err
	}
	if data != nil {
		if err := a.emit(data, h.size); err != nil {
			return fmt.Errorf("%s: %w", h.name, err)
		}
	}
	return nil
}

// emit copies r (exactly n bytes when n >= 0, so a file that changes size
// under us fails instead of corrupting the archive) and pads to 4 bytes.
func (a *archive) emit(r io.Reader, n int64) error {
	var got int64
	var err error
	if n >= 0 {
		got, err = io.CopyN(a.w, r, n)
	} else {
		got, err = io.Copy(a.w, r)
	}
	a.off += got
	if err != nil {
		return err
	}
	pad := (4 - a.off%4) % 4
	_, err = a.w.Write(make([]byte, pad))
	a.off += pad
	return err
}
