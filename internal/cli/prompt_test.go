package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
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
