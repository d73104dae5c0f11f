package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestHiddenPromptInterrupted: Ctrl-C at a hidden prompt returns at once
// and turns echo back on; otherwise whatever the owner typed next at the
// shell (another password, say) would be invisible, or worse, the next
// visible prompt would be read with echo off.
func TestHiddenPromptInterrupted(t *testing.T) {
	_, slave := openPTY(t)
	var errb bytes.Buffer
	env := &Env{Stdin: slave, Stderr: &errb, IsTerminal: true, StdinFd: int(slave.Fd())}
	ctx, cancel := context.WithCancel(context.Background())
	p := newPrompter(ctx, env)
	done := make(chan error, 1)
	go func() {
		_, err := p.askHidden("secret: ")
		done <- err
	}()
	deadline := time.Now().Add(time.Minute) // hang guard only
	for {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the prompt never turned echo off")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, errInterrupted) {
			t.Errorf("got %v, want errInterrupted", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the prompt did not return after the interrupt")
	}
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Error("echo is still off after the interrupted prompt")
	}
}

// TestPromptLines: each question reads one line, CRLF or not; an endless
// line is refused without being kept, and the next line is read cleanly.
func TestPromptLines(t *testing.T) {
	in := "first\r\n" + strings.Repeat("x", 3*maxLine) + "\nafter\nlast"
	var errb bytes.Buffer
	p := newPrompter(context.Background(), &Env{Stdin: strings.NewReader(in), Stderr: &errb})
	for _, want := range []struct {
		line string
		err  error
	}{
		{"first", nil}, {"", errLineTooLong}, {"after", nil}, {"last", nil}, {"", io.EOF},
	} {
		b, err := p.ask("? ")
		if string(b) != want.line || !errors.Is(err, want.err) {
			t.Errorf("got %q, %v; want %q, %v", b, err, want.line, want.err)
		}
	}
	if len(p.buf) > 0 {
		t.Errorf("the prompter still holds %d bytes", len(p.buf))
	}
}

func TestPromptLinesSeedCorpus(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzPromptLines"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus: %d files, %v; want at least one", len(ents), err)
	}
}

// FuzzPromptLines: whatever arrives on the terminal, in whatever chunks,
// the prompter never panics, returns exactly the lines typed (without CR),
// refuses each line longer than maxLine, and keeps nothing once input ends.
func FuzzPromptLines(f *testing.F) {
	f.Add([]byte("first\r\nsecond\nthird"), uint8(3))
	f.Add([]byte(strings.Repeat("x", maxLine+1)+"\nok\n"), uint8(200))
	f.Add([]byte(strings.Repeat("y", maxLine)+"\n"+strings.Repeat("z", maxLine+7)), uint8(63))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const tooLong = "\x00too long"
		var want []string
		segs := bytes.Split(in, []byte("\n"))
		for i, seg := range segs {
			last := i == len(segs)-1
			switch {
			case last && (len(seg) == 0 || len(seg) > maxLine):
			case len(seg) > maxLine:
				want = append(want, tooLong)
			default:
				want = append(want, string(bytes.TrimRight(seg, "\r")))
			}
		}
		p := newPrompter(context.Background(), &Env{Stdin: &chunked{b: in, n: int(chunk%64) + 1}, Stderr: io.Discard})
		var got []string
		for {
			b, err := p.ask("")
			if errors.Is(err, errLineTooLong) {
				got = append(got, tooLong)
				continue
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("got %v, want io.EOF at the end", err)
				}
				break
			}
			got = append(got, string(b))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("got %d lines %.200q, want %d %.200q", len(got), got, len(want), want)
		}
		if len(p.buf) > 0 {
			t.Fatalf("the prompter kept %d bytes after the end of input", len(p.buf))
		}
	})
}

// chunked reads b in pieces of n bytes, as a terminal delivers input.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}
