// Package control is the relay daemon's local control socket, through which
// `relay notify` hands a message to the running daemon, and `relay
// serve-ssh` and `relay exec --host` hand it the audit records of remote
// calls. The daemon owns the audit log exclusively, so a second process must
// not append to it; going through the daemon keeps one writer and one chain.
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
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaychat/relay/internal/audit"
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
	Record *audit.Record `json:"record,omitempty"`
}

type response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Seq and MAC are the audit head after an appended record.
	Seq uint64 `json:"seq,omitempty"`
	MAC string `json:"mac,omitempty"`
}

// Handler serves notifications. Its error text is returned to the client.
type Handler func(ctx context.Context, n Notification) error

// AuditHandler appends a record made by another relay process to the
// daemon's audit log and returns the new head. Its error text is returned
// to the client, which must then not do what the record describes.
type AuditHandler func(ctx context.Context, r audit.Record) (audit.Head, error)

// Handlers serve the socket's operations; a nil one refuses its op.
type Handlers struct {
	Notify Handler
	// Audit receives only records of remote calls (see RemoteTypes): a
	// record of another type, or naming neither a call ID nor a peer, is
	// refused before it reaches the handler.
	Audit AuditHandler
}

// RemoteTypes are the record types the audit op accepts: those relay
// serve-ssh writes on a member and relay exec --host writes on a hub.
var RemoteTypes = []string{"request", "exec_start", "exec_end", "remote_request", "remote_end"}

// maxHeader bounds the header line a client may send.
const maxHeader = 64 << 10

// Serve listens on the socket under stateDir until ctx is done, serving
// notifications only. A stale socket file from a crashed daemon is
// replaced.
func Serve(ctx context.Context, stateDir string, maxBody int64, h Handler) error {
	return ServeHandlers(ctx, stateDir, maxBody, Handlers{Notify: h})
}

// ServeHandlers is Serve with every operation's handler.
func ServeHandlers(ctx context.Context, stateDir string, maxBody int64, hs Handlers) error {
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
		go serveConn(ctx, c, maxBody, hs)
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

func serveConn(ctx context.Context, c *net.UnixConn, maxBody int64, hs Handlers) {
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
	if err := json.Unmarshal(line, &req); err != nil || (req.Op != "notify" && req.Op != "audit") {
		answer(errors.New("malformed request"))
		return
	}
	if req.Op == "audit" {
		serveAudit(ctx, c, hs.Audit, req.Record)
		return
	}
	h := hs.Notify
	if h == nil {
		answer(errors.New("notifications are not accepted here"))
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

func serveAudit(ctx context.Context, c *net.UnixConn, h AuditHandler, r *audit.Record) {
	answer := func(hd audit.Head, err error) {
		resp := response{OK: err == nil, Seq: hd.Seq, MAC: hd.MAC}
		if err != nil {
			resp = response{Error: err.Error()}
		}
		_ = json.NewEncoder(c).Encode(resp)
	}
	switch {
	case h == nil:
		answer(audit.Head{}, errors.New("this daemon does not accept audit records (upgrade relay)"))
	case r == nil || (r.Call == "" && r.Peer == "") || !slices.Contains(RemoteTypes, r.Type):
		answer(audit.Head{}, errors.New("only the records of a remote call are accepted"))
	default:
		answer(h(ctx, *r))
	}
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
	_, err := readResponse(dec)
	return err
}

func readResponse(dec *json.Decoder) (response, error) {
	var r response
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("control socket: no answer from the daemon: %w", err)
	}
	if !r.OK {
		return r, fmt.Errorf("daemon refused: %s", r.Error)
	}
	return r, nil
}

// Append hands r to the running daemon's audit log and returns the new
// head. It fails with ErrNoDaemon when nothing listens; on any error the
// record may not be in the log, and its action must not happen.
func Append(ctx context.Context, stateDir string, r audit.Record) (audit.Head, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", Path(stateDir))
	if err != nil {
		return audit.Head{}, fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	hdr, err := json.Marshal(request{Op: "audit", Record: &r})
	if err != nil {
		return audit.Head{}, err
	}
	if len(hdr) > maxHeader {
		return audit.Head{}, fmt.Errorf("control socket: record of %d bytes is too large", len(hdr))
	}
	if _, err := c.Write(append(hdr, '\n')); err != nil {
		return audit.Head{}, fmt.Errorf("control socket: %w", err)
	}
	resp, err := readResponse(json.NewDecoder(c))
	if err != nil {
		return audit.Head{}, err
	}
	return audit.Head{Seq: resp.Seq, MAC: resp.MAC}, nil
}
