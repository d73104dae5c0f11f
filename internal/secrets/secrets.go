// Package secrets is relay's one store for its secrets: the bot token, the
// TOTP secret and the audit key. It looks them up, in order, in a systemd
// credential, the OS keyring (Secret Service), the environment (the token
// only) and a private file, and it stores them in the keyring or in a 0600
// file.
//
// It must never put a secret value into an error, a log line, a panic or the
// formatted form of anything it returns, and it must never read a secret file
// that other users could read or replace. When the keyring is unreachable it
// says why and falls through to the lower-priority sources instead of hiding
// them.
package secrets

import (
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Names of the secrets relay keeps.
const (
	BotToken   = "bot-token"
	TOTPSecret = "totp-secret"
	AuditKey   = "audit-key"
)

// EnvToken is the environment variable that may hold the bot token. No other
// secret is ever read from the environment: child processes and /proc make
// the environment a poor place for long-lived secrets, and the token is the
// only one with an established convention.
const EnvToken = "RELAY_BOT_TOKEN"

// DefaultKeyringService is the Secret Service "service" attribute used when
// Options.KeyringService is empty.
const DefaultKeyringService = "relay"

// DefaultKeyringTimeout bounds every keyring call. A locked collection makes
// the Secret Service wait for an unlock prompt that, on a headless machine,
// nobody will ever answer; relay must not hang at start-up because of it.
const DefaultKeyringTimeout = 10 * time.Second

// maxSecretSize caps what is read from a credential or file. Relay's secrets
// are well under 1 KiB; the cap keeps a mistaken path (a log file, a device)
// from being read into memory whole.
const maxSecretSize = 64 << 10

// ErrNotFound is returned (wrapped) when no source holds the secret.
var ErrNotFound = errors.New("secret not found")

// ErrStoredEmpty: the keyring holds the secret with an empty value; it
// needs storing again.
var ErrStoredEmpty = errors.New("the stored value is empty")

// Source names where a secret was found. It is never the value.
type Source string

// The sources, in the order Get tries them.
const (
	SourceCredential Source = "credential" // $CREDENTIALS_DIRECTORY/<name>
	SourceKeyring    Source = "keyring"    // the OS keyring (Secret Service)
	SourceEnv        Source = "env"        // RELAY_BOT_TOKEN (token only)
	SourceFile       Source = "file"       // a 0600 file in a private directory
)

// Keyring is the OS keyring as go-keyring exposes it. Get and Delete return
// an error matching keyring.ErrNotFound (github.com/zalando/go-keyring) or
// ErrNotFound when the item does not exist.
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

// Options says where the store looks.
type Options struct {
	CredentialsDir string              // $CREDENTIALS_DIRECTORY (systemd credentials), read-only
	KeyringService string              // OS keyring service name, default "relay"
	Getenv         func(string) string // environment (RELAY_BOT_TOKEN, token only); nil means os.Getenv
	Dir            string              // directory of 0600 secret files, in a 0700 directory
	TokenFile      string              // explicit 0600 token file from the config

	// Keyring is the keyring backend; nil means the real Secret Service
	// through go-keyring.
	Keyring Keyring
	// KeyringOff turns the keyring source off entirely (the config's
	// secrets.keyring: false): it is never asked, never listed as a place
	// looked in, and Set fails with ErrKeyringOff.
	KeyringOff bool
	// KeyringTimeout bounds each keyring call; zero means
	// DefaultKeyringTimeout.
	KeyringTimeout time.Duration
}

// Store finds and keeps secrets. It holds no secret value itself, so it is
// safe to share and to print.
type Store struct{ o Options }

// New returns a store; it touches nothing until used.
func New(o Options) *Store {
	if o.KeyringService == "" {
		o.KeyringService = DefaultKeyringService
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	switch {
	case o.KeyringOff:
		o.Keyring = nil
	case o.Keyring == nil:
		o.Keyring = systemKeyring()
	}
	if o.KeyringTimeout <= 0 {
		o.KeyringTimeout = DefaultKeyringTimeout
	}
	return &Store{o: o}
}

// WithKeyringService returns a copy of s that keeps its items under a
// different keyring service. Tests use it to keep processes that share one
// real keyring from touching each other's items.
func (s *Store) WithKeyringService(service string) *Store {
	c := *s
	if service != "" {
		c.o.KeyringService = service
	}
	return &c
}

// String describes where the store looks; it never contains a secret.
func (s Store) String() string {
	return fmt.Sprintf("secrets.Store{credentials: %q, keyring service: %q, dir: %q, token file: %q}",
		s.o.CredentialsDir, s.o.KeyringService, s.o.Dir, s.o.TokenFile)
}

// GoString is String, so %#v cannot reach the backend or the environment.
func (s Store) GoString() string { return s.String() }

// Format prints String for every verb, so no verb (%d, %x, %+v) can walk
// into the options and a keyring backend that may cache values.
func (s Store) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// Probe is what a lookup found, without the value: for `relay token status`
// and `relay doctor`.
type Probe struct {
	Name string
	// Source is where the secret was found; "" when it was not found.
	Source Source
	// Location names the place within the source, e.g. a file path or the
	// keyring service; never the value.
	Location string
	// Skipped lists sources that were tried and could not be consulted
	// (in practice the keyring, with a *KeyringError saying why). A source
	// that was reachable but simply did not hold the secret is not listed.
	Skipped []Skip
}

// Skip is a source that could not be consulted.
type Skip struct {
	Source Source
	Err    error
}

// Get returns the secret's value from the first source that holds it. The
// caller owns the returned slice and should clear it when done.
func (s *Store) Get(name string) ([]byte, error) {
	v, _, err := s.lookup(name)
	return v, err
}

// Lookup is Get that also says where the value came from and which sources
// had to be skipped, in one pass: a locked keyring costs its timeout once,
// not once for Probe and again for Get.
func (s *Store) Lookup(name string) ([]byte, Probe, error) {
	return s.lookup(name)
}

// Source says which source Get would use for name, never the value.
func (s *Store) Source(name string) (Source, error) {
	p, err := s.Probe(name)
	return p.Source, err
}

// Probe looks name up exactly as Get does and reports where it was found and
// which sources had to be skipped. The value is read, so that a source that
// would fail Get (a file with loose permissions) is reported as failing, and
// then cleared.
func (s *Store) Probe(name string) (Probe, error) {
	v, p, err := s.lookup(name)
	clear(v)
	return p, err
}

func (s *Store) lookup(name string) ([]byte, Probe, error) {
	p := Probe{Name: name}
	if err := checkName(name); err != nil {
		return nil, p, err
	}

	if dir := s.o.CredentialsDir; dir != "" {
		path := filepath.Join(dir, name)
		v, err := readCredential(path)
		switch {
		case err == nil:
			p.Source, p.Location = SourceCredential, path
			return v, p, nil
		case !errors.Is(err, os.ErrNotExist):
			// A credential that exists but cannot be read is a broken
			// deployment; falling through would silently use another token.
			return nil, p, err
		}
	}

	if s.o.Keyring != nil {
		v, err := s.keyringGet(name)
		switch {
		case err == nil:
			p.Source, p.Location = SourceKeyring, s.keyringLocation(name)
			return v, p, nil
		case !errors.Is(err, errKeyringNotFound):
			p.Skipped = append(p.Skipped, Skip{Source: SourceKeyring, Err: err})
		}
	}

	if name == BotToken {
		if v := s.o.Getenv(EnvToken); v != "" {
			p.Source, p.Location = SourceEnv, "environment variable "+EnvToken
			return []byte(v), p, nil
		}
	}

	if path := s.filePath(name); path != "" {
		v, err := readPrivateFile(path)
		switch {
		case err == nil:
			p.Source, p.Location = SourceFile, path
			return v, p, nil
		case !errors.Is(err, os.ErrNotExist):
			return nil, p, err
		}
	}

	return nil, p, s.notFound(p)
}

// notFound builds the error for a secret no source holds: where relay
// looked and how to store one. A skipped keyring is named in the list by
// its kind only (its hint is the caller's to show, once), and the error
// wraps it for errors.Is.
func (s *Store) notFound(p Probe) error {
	var where []string
	if s.o.CredentialsDir != "" {
		where = append(where, fmt.Sprintf("systemd credential %q", filepath.Join(s.o.CredentialsDir, p.Name)))
	} else {
		where = append(where, "systemd credential (CREDENTIALS_DIRECTORY is unset)")
	}
	e := &NotFoundError{}
	if s.o.Keyring != nil {
		ring := "os keyring (" + s.keyringLocation(p.Name) + ")"
		for _, sk := range p.Skipped {
			if sk.Source == SourceKeyring {
				ring = "os keyring (skipped: " + kindOf(sk.Err) + ")"
			}
			e.skipped = append(e.skipped, sk.Err)
		}
		where = append(where, ring)
	}
	if p.Name == BotToken {
		where = append(where, "environment variable "+EnvToken)
	}
	if path := s.filePath(p.Name); path != "" {
		where = append(where, fmt.Sprintf("file %q", path))
	}
	e.Name = p.Name
	e.msg = fmt.Sprintf("%s: %v in %s", p.Name, ErrNotFound, strings.Join(where, ", "))
	return e
}

// kindOf is a keyring failure without its "os keyring: " prefix.
func kindOf(err error) string {
	return strings.TrimPrefix(err.Error(), "os keyring: ")
}

// NotFoundError is ErrNotFound with the reasons sources were skipped.
// NotFoundError is Get's error for a secret no source holds: where relay
// looked. It wraps ErrNotFound; internal/cli names the command that
// stores Name.
type NotFoundError struct {
	Name    string // the secret's name
	msg     string
	skipped []error
}

func (e *NotFoundError) Error() string { return e.msg }

func (e *NotFoundError) Unwrap() []error { return append([]error{ErrNotFound}, e.skipped...) }

// Set stores the value in the OS keyring.
func (s *Store) Set(name string, value []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(value) == 0 {
		return fmt.Errorf("store %s: refusing to store an empty value", name)
	}
	if s.o.Keyring == nil {
		return &KeyringError{Op: "set", Name: name, Kind: ErrKeyringOff}
	}
	return s.keyringSet(name, value)
}

// SetFile stores the value in a 0600 file, for headless servers without a
// Secret Service: Options.TokenFile for the bot token when set, otherwise
// <Options.Dir>/<name> with Dir created 0700. It returns the file's path.
// The directory must not be writable by group or others, or anyone could
// swap the file.
func (s *Store) SetFile(name string, value []byte) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if len(value) == 0 {
		return "", fmt.Errorf("store %s: refusing to store an empty value", name)
	}
	path := s.filePath(name)
	if path == "" {
		return "", fmt.Errorf("store %s: no secrets directory configured (set state_dir in the config)", name)
	}
	if path == filepath.Join(s.o.Dir, name) {
		if err := os.MkdirAll(s.o.Dir, 0o700); err != nil {
			return "", fmt.Errorf("store %s: %w", name, err)
		}
	}
	if err := checkDir(filepath.Dir(path)); err != nil {
		return "", fmt.Errorf("store %s: %w", name, err)
	}
	if err := writeFile(path, value); err != nil {
		return "", fmt.Errorf("store %s: %w", name, err)
	}
	return path, nil
}

// Delete removes the secret from the keyring and from the file, and returns
// the sources it was removed from. It never touches a systemd credential
// (those are read-only and belong to the unit: remove LoadCredential= from
// it) or the environment. It returns an error wrapping ErrNotFound when
// neither held the secret, and the keyring's error when the keyring could
// not be asked, even if the file was removed: a copy may remain there.
func (s *Store) Delete(name string) ([]Source, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var removed []Source
	var errs []error
	if s.o.Keyring != nil {
		switch ok, err := s.keyringDelete(name); {
		case err != nil:
			errs = append(errs, err)
		case ok:
			removed = append(removed, SourceKeyring)
		}
	}
	if path := s.filePath(name); path != "" {
		switch err := os.Remove(path); {
		case err == nil:
			removed = append(removed, SourceFile)
		case !errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
		}
	}
	if len(errs) > 0 {
		return removed, errors.Join(errs...)
	}
	if len(removed) == 0 {
		return nil, fmt.Errorf("delete %s: %w in the os keyring or a file", name, ErrNotFound)
	}
	return removed, nil
}

// filePath is where the file source keeps name, or "" when there is none.
func (s *Store) filePath(name string) string {
	if name == BotToken && s.o.TokenFile != "" {
		return s.o.TokenFile
	}
	if s.o.Dir == "" {
		return ""
	}
	return filepath.Join(s.o.Dir, name)
}

var nameRE = lazyre.New(`^[a-z0-9][a-z0-9-]{0,63}$`)

// checkName keeps a name usable as a file name inside CredentialsDir and
// Dir: no separators, no dot-dot, no hidden files.
func checkName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("invalid secret name %q (want lower-case letters, digits and dashes)", name)
	}
	return nil
}
