package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// errInterrupted is what a prompt returns when the context ends while it
// waits (Ctrl-C, SIGTERM): the caller says what was and was not done.
var errInterrupted = errors.New("interrupted")

// errLineTooLong is a line longer than maxLine; the rest of it is dropped.
var errLineTooLong = errors.New("line too long")

// maxLine bounds one answer; nothing relay asks for is longer than a URL.
const maxLine = 4096

// prompter asks the person at the terminal, one line per question. Each
// question reads only once it has been asked (so input typed for a later
// question is not consumed early), and gives up at once when ctx ends: a
// read blocked on a terminal cannot be interrupted, so it is left behind
// and the process exits. Hidden answers are read with echo off, restored
// on every path out, including an interrupt.
type prompter struct {
	ctx context.Context
	env *Env
	buf []byte // bytes read past the last line; cleared once consumed
	// reading is a read still outstanding from a question that was
	// interrupted; the next question waits for it instead of starting a
	// second one.
	reading chan readResult
	eof     error // the error that ended input, returned from then on
	drop    bool  // discarding the rest of an over-long line
}

type readResult struct {
	b   []byte
	err error
}

func newPrompter(ctx context.Context, env *Env) *prompter {
	return &prompter{ctx: ctx, env: env}
}

// ask prints question on stderr and returns the answer without its line
// ending. The caller owns (and should clear) the returned slice.
func (p *prompter) ask(question string) ([]byte, error) {
	fmt.Fprint(p.env.Stderr, question)
	return p.readLine()
}

// askHidden is ask with terminal echo off, for secrets. On something other
// than a terminal it is ask.
func (p *prompter) askHidden(question string) ([]byte, error) {
	if !p.env.IsTerminal {
		return p.ask(question)
	}
	restore, err := echoOff(p.env.StdinFd)
	if err != nil {
		return nil, fmt.Errorf("turn terminal echo off: %w", err)
	}
	fmt.Fprint(p.env.Stderr, question)
	line, err := p.readLine()
	restore()
	// Echo was off, so the Enter did not move to a new line.
	fmt.Fprintln(p.env.Stderr)
	return line, err
}

// readLine returns the next line. A line longer than maxLine is dropped
// (errLineTooLong) without being kept whole in memory, however it arrives.
func (p *prompter) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(p.buf, '\n'); i >= 0 {
			tooLong := p.drop || i > maxLine
			var line []byte
			if !tooLong {
				line = bytes.Clone(bytes.TrimRight(p.buf[:i], "\r"))
			}
			clear(p.buf[:i+1])
			p.buf, p.drop = p.buf[i+1:], false
			if tooLong {
				return nil, errLineTooLong
			}
			return line, nil
		}
		if len(p.buf) > maxLine {
			clear(p.buf)
			p.buf, p.drop = nil, true
		}
		if p.eof != nil {
			if len(p.buf) > 0 && !p.drop {
				// A last line without a newline is still an answer.
				line := bytes.Clone(bytes.TrimRight(p.buf, "\r"))
				clear(p.buf)
				p.buf = nil
				return line, nil
			}
			clear(p.buf)
			p.buf = nil
			return nil, p.eof
		}
		b, err := p.read()
		if err != nil {
			return nil, err
		}
		p.buf = append(p.buf, b.b...)
		clear(b.b)
		if b.err != nil {
			p.eof = b.err
		}
	}
}

// read waits for one Read of stdin, or for ctx.
func (p *prompter) read() (readResult, error) {
	if p.reading == nil {
		ch := make(chan readResult, 1)
		go func() {
			b := make([]byte, 512)
			n, err := p.env.Stdin.Read(b)
			if n == 0 && err == nil {
				err = io.ErrNoProgress
			}
			ch <- readResult{b[:n], err}
		}()
		p.reading = ch
	}
	select {
	case r := <-p.reading:
		p.reading = nil
		return r, nil
	case <-p.ctx.Done():
		return readResult{}, errInterrupted
	}
}

// echoOff turns terminal echo off on fd (line editing and Ctrl-C keep
// working) and returns the function that restores the previous state.
func echoOff(fd int) (restore func(), err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	t.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
