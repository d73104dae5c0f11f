// Package control is the relay daemon's local control socket, through which
// `relay notify` hands a message to the running daemon. The daemon owns the
// audit log exclusively, so a second process must not append to it; going
// through the daemon keeps one writer and one chain.
//
// It must never accept a request from another user: the socket lives in the
// 0700 state directory, is created 0600, and every connection's peer
// credentials are checked.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SocketName is the socket's file name inside the state directory.
const SocketName = "control.sock"

// Path returns the control socket path for a state directory.
func Path(stateDir string) string { return filepath.Join(stateDir, SocketName) }

// Notification is a message or file for the owner's chat.
type Notification struct {
	Text     string `json:"text,omitempty"`
	Silent   bool   `json:"silent,omitempty"`
	FileName string `json:"file_name,omitempty"`
	// Size is the number of body bytes after the header line (a file).
	Size int64 `json:"size,omitempty"`
	// File streams the body; set by the server for file notifications.
	File io.Reader `json:"-"`
}

type request struct {
	Op string `json:"op"`
	Notification
}

type response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Handler serves notifications. Its error text is returned to the client.
type Handler func(ctx context.Context, n Notification) error

// maxHeader bounds the header line a client may send.
const maxHeader = 64 << 10

// Serve listens on the socket under stateDir until ctx is done. A stale
// socket file from a crashed daemon is replaced.
func Serve(ctx context.Context, stateDir string, maxBody int64, h Handler) error {
	p := Path(stateDir)
	_ = os.Remove(p)
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", p, err)
	}
	ln.SetUnlinkOnClose(true)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		}
		go serveConn(ctx, c, maxBody, h)
	}
}

func peerAllowed(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if int(cred.Uid) != os.Getuid() && cred.Uid != 0 {
		return fmt.Errorf("peer uid %d is not the relay's", cred.Uid)
	}
	return nil
}

func serveConn(ctx context.Context, c *net.UnixConn, maxBody int64, h Handler) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	answer := func(err error) {
		r := response{OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		_ = json.NewEncoder(c).Encode(r)
	}
	if err := peerAllowed(c); err != nil {
		answer(errors.New("permission denied"))
		return
	}
	br := bufio.NewReaderSize(io.LimitReader(c, maxHeader+maxBody+1), 4096)
	line, err := readLine(br)
	if err != nil {
		answer(err)
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil || req.Op != "notify" {
		answer(errors.New("malformed request"))
		return
	}
	n := req.Notification
	if n.Size < 0 || n.Size > maxBody {
		answer(fmt.Errorf("file too large: %d bytes, the limit is %d", n.Size, maxBody))
		return
	}
	if n.Size > 0 {
		// Like HTTP's 100-continue: the client sends the body only once
		// the header is accepted, so a refusal reaches it instead of a
		// broken pipe.
		answer(nil)
		n.File = io.LimitReader(br, n.Size)
	}
	answer(h(ctx, n))
}

func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return nil, errors.New("malformed request")
		}
		line = append(line, chunk...)
		if len(line) > maxHeader {
			return nil, errors.New("request header too large")
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// ErrNoDaemon means no daemon is listening on the socket.
var ErrNoDaemon = errors.New("relay daemon not running")

// Send hands n (and body, when it is a file of n.Size bytes) to the daemon.
func Send(ctx context.Context, stateDir string, n Notification, body io.Reader) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", Path(stateDir))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	hdr, err := json.Marshal(request{Op: "notify", Notification: n})
	if err != nil {
		return err
	}
	if _, err := c.Write(append(hdr, '\n')); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	dec := json.NewDecoder(c)
	if n.Size > 0 {
		if err := readAnswer(dec); err != nil {
			return err
		}
		if _, err := io.CopyN(c, body, n.Size); err != nil {
			return fmt.Errorf("control socket: sending file: %w", err)
		}
	}
	return readAnswer(dec)
}

func readAnswer(dec *json.Decoder) error {
	var r response
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("control socket: no answer from the daemon: %w", err)
	}
	if !r.OK {
		return fmt.Errorf("daemon refused: %s", r.Error)
	}
	return nil
}
