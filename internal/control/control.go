// Package control is the relay daemon's local control socket, through which
// `relay notify` hands a message to the running daemon, and `relay
// serve-ssh` and `relay exec --host` hand it the audit records of remote
// calls, and `relay serve-ssh --witness` asks it for a signed checkpoint.
// The daemon owns the audit log exclusively, so a second process must
// not append to it; going through the daemon keeps one writer and one chain.
//
// It must never accept a request from another user, nor from a command the
// relay runs: the socket lives in the 0700 state directory, is created 0600,
// and every connection's peer is checked twice, by uid (the relay's or
// root's) and by pid namespace: a sandboxed job, or anything it started,
// lives in a pid namespace below the relay's, and is refused even though
// it has the relay's uid. Each peer is limited in rate, and its uid, pid
// and program name go with its notification for the audit record.
//
// One named local group may be let in too (notify.group), through a second
// socket, ServeGroup's, in a directory of its own: owned by the relay's
// user, with that group, closed to everyone else, which ServeGroup checks
// before it listens. There the peer must be a member of the group, as the
// kernel attests at connect time (SO_PEERCRED, SO_PEERGROUPS); no command
// of the relay can be, since the relay refuses to serve the group when it
// has the group itself (and policy refuses a command_user whose group it
// is). Its notifications carry the group's name as their sender
// (Peer.Group, Peer.Sender), never the program name the peer chose.
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
	"strconv"
	"strings"
	"sync"
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
	// Peer is who sent it; set by the server.
	Peer Peer `json:"-"`
}

// Peer identifies the process at the other end of a connection.
type Peer struct {
	UID, PID int
	// Program is the peer's command name (comm), as the peer set it:
	// for the record, never trusted. It may be "" for a peer of the group
	// socket whose /proc entry the relay cannot read (ProtectProc=).
	Program string
	// Group is set for a peer that came through the group socket: the
	// notify.group name it is a member of. "" for the relay's own socket.
	Group string
}

func (p Peer) String() string {
	s := fmt.Sprintf("uid %d pid %d (%s)", p.UID, p.PID, strconv.Quote(p.Program))
	if p.Group != "" {
		s += " via group " + p.Group
	}
	return s
}

// Sender is the name a notification is marked with in the chat: the group
// for a peer of the group socket (the one name the relay vouches for), the
// program name otherwise (the relay's own user or root chose it).
func (p Peer) Sender() string {
	if p.Group != "" {
		return p.Group
	}
	return p.Program
}

// MaxText bounds a notification's text: one Telegram message.
const MaxText = 3500

// Check refuses a notification the relay must not send whatever its
// source: text longer than one message, or text shaped like an audit
// checkpoint, which the owner must only ever get from the relay itself.
func (n Notification) Check() error {
	if len(n.Text) > MaxText {
		return fmt.Errorf("text too long: %d bytes, the limit is %d", len(n.Text), MaxText)
	}
	if audit.IsCheckpointText(n.Text) || audit.IsCheckpointText(n.FileName) {
		return errors.New("the text looks like an audit checkpoint, which only the relay itself sends")
	}
	return nil
}

// Rate limits per peer uid: a burst, then one notification per interval.
const (
	rateBurst    = 10
	rateInterval = 6 * time.Second
)

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
	// Note is the signed checkpoint a checkpoint op asked for.
	Note string `json:"note,omitempty"`
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
	// Checkpoint signs the head of the daemon's audit log, for relay
	// serve-ssh --witness: the daemon owns the log while it runs.
	Checkpoint CheckpointHandler
}

// CheckpointHandler returns a signed checkpoint (its note) of the head of
// the daemon's audit log. Its error text is returned to the client.
type CheckpointHandler func(ctx context.Context) ([]byte, error)

// RemoteTypes are the record types the audit op accepts: those relay
// serve-ssh writes on a member and relay exec --host writes on a hub.
var RemoteTypes = []audit.Kind{audit.KindRequest, audit.KindExecStart, audit.KindExecEnd, audit.KindRemoteRequest, audit.KindRemoteEnd}

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
	return accept(ctx, ln, maxBody, hs, peer)
}

func accept(ctx context.Context, ln *net.UnixListener, maxBody int64, hs Handlers, check func(*net.UnixConn) (Peer, error)) error {
	lim := newLimiter(time.Now)
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
		go serveConn(ctx, c, maxBody, hs, lim, check)
	}
}

// peer identifies the other end of c and refuses it unless it has the
// relay's uid (or root's) and lives in the relay's own pid namespace.
func peer(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	pidfd := -1
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		// A pidfd names the peer itself, not whoever holds its pid now
		// (Linux 6.5); without one, the pid read below may be stale.
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD); err == nil {
			pidfd = v
		}
	}); err != nil {
		return Peer{}, err
	}
	if pidfd >= 0 {
		defer unix.Close(pidfd)
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	p := Peer{UID: int(cred.Uid), PID: int(cred.Pid)}
	if p.UID != os.Getuid() && p.UID != 0 {
		return p, fmt.Errorf("peer %s is not the relay's uid", p)
	}
	depth, err := pidDepth(pidfd, p.PID)
	if err != nil {
		return p, fmt.Errorf("peer %s: %w", p, err)
	}
	if depth != 1 {
		return p, fmt.Errorf("peer %s lives in a pid namespace below the relay's: a command the relay runs", p)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.PID)); err == nil {
		p.Program = strings.TrimSpace(string(b))
	}
	return p, nil
}

// pidDepth returns how many pid namespaces, from the relay's own down,
// the peer has a pid in: 1 for a process of the relay's namespace, more
// for one inside a job's. A peer in no namespace the relay can see (pid
// 0) is refused.
func pidDepth(pidfd, pid int) (int, error) {
	if pid <= 0 {
		return 0, errors.New("peer outside the relay's pid namespace")
	}
	path := fmt.Sprintf("/proc/%d/status", pid)
	if pidfd >= 0 {
		path = fmt.Sprintf("/proc/self/fdinfo/%d", pidfd)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 || f[0] != strconv.Itoa(pid) {
				return 0, errors.New("peer exited or its pid was reused")
			}
			return len(f), nil
		}
	}
	return 0, errors.New("no NSpid line: cannot tell the peer's pid namespace")
}

// limiter is a token bucket per peer uid.
type limiter struct {
	now func() time.Time
	mu  sync.Mutex
	// tokens and last, per uid.
	tokens map[int]float64
	last   map[int]time.Time
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, tokens: map[int]float64{}, last: map[int]time.Time{}}
}

func (l *limiter) allow(uid int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	t, seen := l.tokens[uid]
	if !seen {
		t = rateBurst
	}
	t = min(rateBurst, t+float64(now.Sub(l.last[uid]))/float64(rateInterval))
	l.last[uid] = now
	if t < 1 {
		l.tokens[uid] = t
		return false
	}
	l.tokens[uid] = t - 1
	return true
}

func serveConn(ctx context.Context, c *net.UnixConn, maxBody int64, hs Handlers, lim *limiter, check func(*net.UnixConn) (Peer, error)) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	answer := func(err error) {
		r := response{OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		_ = json.NewEncoder(c).Encode(r)
	}
	// Who connected is known from the connection itself, before anything
	// it sends; the header is still read first (it is bounded), so that a
	// refused client reads its refusal rather than a broken pipe.
	who, perr := check(c)
	br := bufio.NewReaderSize(io.LimitReader(c, maxHeader+maxBody+1), 4096)
	line, err := readLine(br)
	if perr != nil {
		answer(errors.New("permission denied: " + perr.Error()))
		return
	}
	if err != nil {
		answer(err)
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil || (req.Op != "notify" && req.Op != "audit" && req.Op != "checkpoint") {
		answer(errors.New("malformed request"))
		return
	}
	if req.Op == "checkpoint" {
		// One signature per witness round: cheap, and it writes nothing.
		serveCheckpoint(ctx, c, hs.Checkpoint)
		return
	}
	if req.Op == "audit" {
		// The records of the relay's own remote calls: as many as the
		// calls, so not rate-limited like notifications.
		serveAudit(ctx, c, hs.Audit, req.Record)
		return
	}
	h := hs.Notify
	if h == nil {
		answer(errors.New("notifications are not accepted here"))
		return
	}
	if !lim.allow(who.UID) {
		answer(fmt.Errorf("too many notifications: at most %d at once, then one per %s", rateBurst, rateInterval))
		return
	}
	n := req.Notification
	n.Peer = who
	if err := n.Check(); err != nil {
		answer(err)
		return
	}
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
		answer(audit.Head{}, errors.New("this socket does not accept audit records"))
	case r == nil || (r.Call == "" && r.Peer == "") || !slices.Contains(RemoteTypes, r.Type):
		answer(audit.Head{}, errors.New("only the records of a remote call are accepted"))
	default:
		answer(h(ctx, *r))
	}
}

func serveCheckpoint(ctx context.Context, c *net.UnixConn, h CheckpointHandler) {
	resp := response{}
	if h == nil {
		resp.Error = "this socket does not sign checkpoints"
	} else if note, err := h(ctx); err != nil {
		resp.Error = err.Error()
	} else {
		resp = response{OK: true, Note: string(note)}
	}
	_ = json.NewEncoder(c).Encode(resp)
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

// AccessError means the kernel kept the caller from the socket: the
// directory or the socket does not let its uid in. Nothing was sent, and
// the daemon may well be running.
type AccessError struct {
	Path string
	UID  int
}

func (e *AccessError) Error() string {
	return fmt.Sprintf("the relay's socket %s does not accept uid %d", e.Path, e.UID)
}

// RefusedError is the daemon's refusal of a request, with its reason.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "the relay refused: " + e.Reason }

// Send hands n (and body, when it is a file of n.Size bytes) to the daemon
// through the relay's own socket under stateDir.
func Send(ctx context.Context, stateDir string, n Notification, body io.Reader) error {
	return SendTo(ctx, Path(stateDir), n, body)
}

// SendTo is Send through the socket at path, such as the group socket.
// It returns ErrNoDaemon when nothing listens there, an *AccessError when
// the caller may not reach it, and a *RefusedError when the daemon says no.
func SendTo(ctx context.Context, path string, n Notification, body io.Reader) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return &AccessError{Path: path, UID: os.Getuid()}
		}
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
	dec := json.NewDecoder(c)
	if _, err := c.Write(append(hdr, '\n')); err != nil {
		// The daemon may have refused the peer before reading a byte:
		// its answer says why, which a broken pipe does not.
		var re *RefusedError
		if aerr := readAnswer(dec); errors.As(aerr, &re) {
			return re
		}
		return fmt.Errorf("control socket: %w", err)
	}
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
		return r, &RefusedError{Reason: r.Error}
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

// Checkpoint asks the running daemon for a signed checkpoint of its audit
// log's head, as a note to be verified (audit.OpenCheckpoint). It fails
// with ErrNoDaemon when nothing listens.
func Checkpoint(ctx context.Context, stateDir string) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", Path(stateDir))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	hdr, _ := json.Marshal(request{Op: "checkpoint"})
	if _, err := c.Write(append(hdr, '\n')); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	resp, err := readResponse(json.NewDecoder(c))
	if err != nil {
		return nil, err
	}
	if resp.Note == "" {
		return nil, errors.New("control socket: the daemon answered no checkpoint")
	}
	return []byte(resp.Note), nil
}
