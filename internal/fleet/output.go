package fleet

import (
	"io"

	"github.com/relaychat/relay/internal/exec"
)

// piece is a run of output bytes inside the framed stream.
type piece struct{ off, n int64 }

// Output is a member's output as the hub received it: a view of the
// output frames inside the call's spool, so that it is never copied and
// its memory stays bounded however large it is.
type Output struct {
	spool  *exec.Spool
	pieces []piece
	size   int64
}

// Size is the number of output bytes.
func (o *Output) Size() int64 { return o.size }

// Open streams the output from its start. Each reader is independent.
func (o *Output) Open() io.Reader { return &outputReader{o: o} }

// Bytes returns at most max bytes from the start of the output.
func (o *Output) Bytes(max int) []byte {
	b := make([]byte, min(int64(max), o.size))
	n, _ := io.ReadFull(o.Open(), b)
	return b[:n]
}

// Close frees the spool.
func (o *Output) Close() { o.spool.Close() }

type outputReader struct {
	o   *Output
	i   int   // current piece
	pos int64 // bytes read of it
}

func (r *outputReader) Read(p []byte) (int, error) {
	for r.i < len(r.o.pieces) {
		pc := r.o.pieces[r.i]
		if r.pos == pc.n {
			r.i, r.pos = r.i+1, 0
			continue
		}
		k := min(int64(len(p)), pc.n-r.pos)
		n, err := r.o.spool.ReadAt(p[:k], pc.off+r.pos)
		r.pos += int64(n)
		if n > 0 {
			return n, nil
		}
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return 0, io.EOF
}
