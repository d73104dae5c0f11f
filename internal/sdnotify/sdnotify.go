// Package sdnotify tells systemd about the daemon's state over the
// sd_notify protocol (READY, STOPPING, STATUS, WATCHDOG), using only the
// standard library.
//
// It must never fail or block the daemon when not run under systemd: every
// call is a no-op when NOTIFY_SOCKET is unset. It must never let a status
// text inject another assignment (a newline would start one).
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends to the socket its environment names. The zero value is
// not usable; use New, or the package functions, which read os.Getenv.
type Notifier struct {
	getenv func(string) string
	pid    int
}

// New returns a Notifier that reads NOTIFY_SOCKET, WATCHDOG_USEC and
// WATCHDOG_PID through getenv, and takes pid as this process's ID.
func New(getenv func(string) string, pid int) *Notifier {
	return &Notifier{getenv: getenv, pid: pid}
}

var std = New(os.Getenv, os.Getpid())

// Ready tells systemd start-up is finished (Type=notify).
func Ready() error { return std.Ready() }

// Stopping tells systemd a graceful shutdown has begun.
func Stopping() error { return std.Stopping() }

// Watchdog pings the watchdog (WatchdogSec=).
func Watchdog() error { return std.Watchdog() }

// Status sets the one-line status `systemctl status` shows.
func Status(s string) error { return std.Status(s) }

// WatchdogInterval is the watchdog timeout systemd expects pings within;
// ping at half of it. ok is false when no watchdog is set for this process.
func WatchdogInterval() (time.Duration, bool) { return std.WatchdogInterval() }

// Ready sends READY=1.
func (n *Notifier) Ready() error { return n.Send("READY=1") }

// Stopping sends STOPPING=1.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

// Watchdog sends WATCHDOG=1.
func (n *Notifier) Watchdog() error { return n.Send("WATCHDOG=1") }

// Status sends STATUS=s. It replaces control characters, so the text stays one assignment.
func (n *Notifier) Status(s string) error {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return n.Send("STATUS=" + s)
}

// Send writes one datagram of newline-separated assignments to
// NOTIFY_SOCKET. A name starting with "@" is an abstract socket.
func (n *Notifier) Send(state string) error {
	name := n.getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if name[0] != '/' && name[0] != '@' {
		return fmt.Errorf("sd_notify: unsupported NOTIFY_SOCKET %q (want an absolute path or @abstract name)", name)
	}
	// net maps a leading "@" to the abstract namespace on Linux.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// WatchdogInterval parses WATCHDOG_USEC; WATCHDOG_PID, when set, must be
// this process (a child that inherited the variables must not ping).
func (n *Notifier) WatchdogInterval() (time.Duration, bool) {
	usec, err := strconv.ParseUint(n.getenv("WATCHDOG_USEC"), 10, 63)
	if err != nil || usec == 0 || usec > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, false
	}
	if p := n.getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil || pid != n.pid {
			return 0, false
		}
	}
	return time.Duration(usec) * time.Microsecond, true
}
