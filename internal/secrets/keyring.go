package secrets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dbus "github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

// Kinds of keyring failure, for errors.Is. Each KeyringError wraps exactly
// one of them and carries a hint that names the fix.
var (
	// ErrNoSessionBus: there is no D-Bus session bus to reach the Secret
	// Service through (typical of a system service or an ssh login).
	ErrNoSessionBus = errors.New("no D-Bus session bus")
	// ErrNoSecretService: the bus is there, but nothing provides
	// org.freedesktop.secrets.
	ErrNoSecretService = errors.New("no Secret Service provider")
	// ErrKeyringLocked: the collection is locked and unlocking it needs a
	// prompt that was dismissed or cannot be shown.
	ErrKeyringLocked = errors.New("keyring collection is locked")
	// ErrKeyringTimeout: the Secret Service did not answer in time.
	ErrKeyringTimeout = errors.New("keyring did not answer")
	// ErrKeyringOff: the keyring source is turned off (Options.KeyringOff
	// or the NoKeyring backend).
	ErrKeyringOff = errors.New("keyring is turned off")
	// ErrKeyring: any other keyring failure.
	ErrKeyring = errors.New("keyring failed")
)

// errKeyringNotFound is what keyringGet/keyringDelete return when the
// keyring answered and does not hold the item. It never leaves the package.
var errKeyringNotFound = errors.New("not in keyring")

// NoKeyring is a Keyring that is always off, for headless deployments and
// for tests that must not touch the real keyring.
var NoKeyring Keyring = noKeyring{}

type noKeyring struct{}

func (noKeyring) Get(string, string) (string, error) { return "", ErrKeyringOff }
func (noKeyring) Set(string, string, string) error   { return ErrKeyringOff }
func (noKeyring) Delete(string, string) error        { return ErrKeyringOff }

// KeyringError is a keyring failure: its Kind (one of the Err* values
// above), the operation, and the cause, which never contains a secret value.
type KeyringError struct {
	Op   string // "get", "set" or "delete"
	Name string // the secret's name
	Kind error
	Err  error // the cause from go-keyring / godbus
}

// Error is short, one clause: it is printed on every command of a host
// without a keyring. The fix is in Hint, the cause behind Unwrap.
func (e *KeyringError) Error() string {
	msg := "os keyring: " + e.Kind.Error()
	switch e.Kind {
	case ErrKeyring, ErrKeyringTimeout:
		// The kind alone says too little: "within 10s", or the backend's
		// words for a failure with no kind of its own.
		if e.Err != nil && e.Err != e.Kind {
			msg += ": " + e.Err.Error()
		}
	}
	return msg
}

// Unwrap exposes both the kind and the cause to errors.Is and errors.As.
func (e *KeyringError) Unwrap() []error { return []error{e.Kind, e.Err} }

// Absent reports whether err says this host has no keyring at all (no
// session bus, no Secret Service, or the keyring turned off), as opposed
// to one that may hold a copy but is locked or failing. Only an absent
// keyring may be replaced by a file silently.
func Absent(err error) bool {
	return errors.Is(err, ErrNoSessionBus) || errors.Is(err, ErrNoSecretService) || errors.Is(err, ErrKeyringOff)
}

// Hint names the fix for the kind of failure. It is the same for every
// secret: the way out of a missing keyring is the same for all three.
func (e *KeyringError) Hint() string {
	const alt = "or keep secrets in files (secrets.keyring: false in the config)"
	switch e.Kind {
	case ErrNoSessionBus:
		return "DBUS_SESSION_BUS_ADDRESS is unset or refuses connections: run inside a desktop login session, " + alt
	case ErrNoSecretService:
		return "nothing provides org.freedesktop.secrets on the session bus: install gnome-keyring, " + alt
	case ErrKeyringLocked:
		return "unlock the login keyring (gnome-keyring-daemon --unlock on a headless session), " + alt
	case ErrKeyringTimeout:
		return "a locked collection may be waiting for an unlock prompt nobody can answer: unlock it, " + alt
	}
	return ""
}

// classify maps a go-keyring / godbus error to a kind by inspection. The
// libraries do not export most of these conditions, so the D-Bus error
// names and the few fixed strings go-keyring produces are matched here,
// and tested with the errors the real Secret Service returns.
func classify(err error) error {
	switch {
	case errors.Is(err, ErrKeyringOff):
		return ErrKeyringOff
	case errors.Is(err, ErrKeyringTimeout):
		return ErrKeyringTimeout
	case errors.Is(err, errNoBusAddress):
		return ErrNoSessionBus
	}
	if name := dbusErrorName(err); name != "" {
		switch {
		case name == "org.freedesktop.DBus.Error.ServiceUnknown",
			name == "org.freedesktop.DBus.Error.NameHasNoOwner",
			strings.HasPrefix(name, "org.freedesktop.DBus.Error.Spawn."):
			return ErrNoSecretService
		case name == "org.freedesktop.Secret.Error.IsLocked",
			name == "org.freedesktop.Secret.Error.NoSuchObject":
			// NoSuchObject: the default collection alias points nowhere,
			// which a fresh keyring shows until it is created and unlocked.
			return ErrKeyringLocked
		case name == "org.freedesktop.DBus.Error.NoReply",
			name == "org.freedesktop.DBus.Error.Timeout":
			return ErrKeyringTimeout
		case name == "org.freedesktop.DBus.Error.NoServer",
			name == "org.freedesktop.DBus.Error.Disconnected":
			return ErrNoSessionBus
		}
		return ErrKeyring
	}
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT),
		errors.Is(err, syscall.EACCES) && strings.Contains(msg, "dial"),
		strings.Contains(msg, "couldn't determine address of session bus"),
		strings.Contains(msg, "dbus-launch"):
		return ErrNoSessionBus
	case strings.Contains(msg, "failed to unlock correct collection"),
		strings.Contains(msg, "prompt") && strings.Contains(msg, "dismiss"):
		// go-keyring reports a dismissed or failed unlock prompt as
		// "failed to unlock correct collection '<path>'".
		return ErrKeyringLocked
	}
	return ErrKeyring
}

func dbusErrorName(err error) string {
	var v dbus.Error
	if errors.As(err, &v) {
		return v.Name
	}
	var p *dbus.Error
	if errors.As(err, &p) && p != nil {
		return p.Name
	}
	return ""
}

// notFound accepts go-keyring's ErrNotFound and, for backends written
// without importing go-keyring, this package's own.
func notFound(err error) bool {
	return errors.Is(err, keyring.ErrNotFound) || errors.Is(err, ErrNotFound)
}

// keyringErr turns a backend error into a *KeyringError. If the cause's
// text contains the value being stored (no known backend does that, but
// a D-Bus error body is the remote side's free text), the cause is dropped
// rather than risk carrying the secret.
func keyringErr(op, name string, err error, value string) error {
	kind := classify(err)
	if quotes(err.Error(), value) {
		err = errors.New("cause withheld because it quoted the secret")
	}
	return &KeyringError{Op: op, Name: name, Kind: kind, Err: err}
}

// quotes reports whether msg contains value or any 8-byte run of it: a
// remote error that echoes part of a secret leaks it as surely as one that
// echoes all of it.
func quotes(msg, value string) bool {
	const run = 8
	if value == "" {
		return false
	}
	if len(value) <= run {
		return strings.Contains(msg, value)
	}
	for i := 0; i+run <= len(value); i++ {
		if strings.Contains(msg, value[i:i+run]) {
			return true
		}
	}
	return false
}

func (s *Store) keyringLocation(name string) string {
	return fmt.Sprintf("service %q, user %q", s.o.KeyringService, name)
}

func (s *Store) keyringGet(name string) ([]byte, error) {
	var v string
	err := s.withTimeout(func() error {
		var err error
		v, err = s.o.Keyring.Get(s.o.KeyringService, name)
		return err
	})
	if notFound(err) {
		return nil, errKeyringNotFound
	}
	if err != nil {
		return nil, keyringErr("get", name, err, "")
	}
	if v == "" {
		return nil, &KeyringError{Op: "get", Name: name, Kind: ErrKeyring,
			Err: ErrStoredEmpty}
	}
	return []byte(v), nil
}

func (s *Store) keyringSet(name string, value []byte) error {
	v := string(value)
	err := s.withTimeout(func() error { return s.o.Keyring.Set(s.o.KeyringService, name, v) })
	if err != nil {
		return keyringErr("set", name, err, v)
	}
	return nil
}

// keyringDelete removes every item for name (go-keyring deletes the first
// match per call) and reports whether there was one.
func (s *Store) keyringDelete(name string) (bool, error) {
	deleted := false
	for range 16 {
		err := s.withTimeout(func() error { return s.o.Keyring.Delete(s.o.KeyringService, name) })
		if notFound(err) {
			return deleted, nil
		}
		if err != nil {
			return deleted, keyringErr("delete", name, err, "")
		}
		deleted = true
	}
	return deleted, &KeyringError{Op: "delete", Name: name, Kind: ErrKeyring,
		Err: errors.New("items keep reappearing after 16 deletions")}
}

// withTimeout runs a keyring call with the store's deadline. go-keyring has
// no context: a call stuck on an unanswerable unlock prompt is abandoned
// (its goroutine finishes or blocks on its own; the result is dropped). A
// panic in the D-Bus decoding (go-keyring type-asserts prompt signals) is
// turned into an error without its value.
func (s *Store) withTimeout(f func() error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- errors.New("keyring backend panicked")
			}
		}()
		done <- f()
	}()
	t := time.NewTimer(s.o.KeyringTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("%w within %v", ErrKeyringTimeout, s.o.KeyringTimeout)
	}
}

// errNoBusAddress is what the default backend returns instead of letting
// godbus look for a bus on its own: with no address, godbus runs
// dbus-launch, which starts a stray session bus that nobody stops.
var errNoBusAddress = errors.New("DBUS_SESSION_BUS_ADDRESS is unset and there is no per-user bus socket")

// goKeyring is the real Secret Service through go-keyring.
type goKeyring struct {
	getenv     func(string) string
	runtimeDir string // /run/user/<uid>, where godbus looks for a bus
}

func systemKeyring() Keyring {
	return goKeyring{getenv: os.Getenv, runtimeDir: filepath.Join("/run/user", strconv.Itoa(os.Getuid()))}
}

// reachable reports whether godbus will find a session bus without
// autolaunching one. It mirrors godbus's own discovery, which reads the
// process environment (hence os.Getenv, not Options.Getenv).
func (k goKeyring) reachable() error {
	if a := k.getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	for _, f := range []string{"bus", "dbus-session"} {
		if _, err := os.Stat(filepath.Join(k.runtimeDir, f)); err == nil {
			return nil
		}
	}
	return errNoBusAddress
}

func (k goKeyring) Get(service, user string) (string, error) {
	if err := k.reachable(); err != nil {
		return "", err
	}
	return keyring.Get(service, user)
}

func (k goKeyring) Set(service, user, password string) error {
	if err := k.reachable(); err != nil {
		return err
	}
	return keyring.Set(service, user, password)
}

func (k goKeyring) Delete(service, user string) error {
	if err := k.reachable(); err != nil {
		return err
	}
	return keyring.Delete(service, user)
}
