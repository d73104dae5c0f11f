// Package secrets is relay's one store for its secrets.
// PLACEHOLDER: replaced by the real store.
package secrets

import "errors"

// Names of the secrets relay keeps.
const (
	BotToken   = "bot-token"
	TOTPSecret = "totp-secret"
	AuditKey   = "audit-key"
)

// ErrNotFound is returned (wrapped) when no source holds the secret.
var ErrNotFound = errors.New("secret not found")

// Options says where the store looks.
type Options struct {
	CredentialsDir string              // $CREDENTIALS_DIRECTORY (systemd credentials), read-only
	KeyringService string              // OS keyring service name, default "relay"
	Getenv         func(string) string // environment (RELAY_BOT_TOKEN, token only)
	Dir            string              // directory of 0600 secret files, in a 0700 directory
	TokenFile      string              // explicit 0600 token file from the config
}

// Store finds and keeps secrets.
type Store struct{ o Options }

// New returns a store; it touches nothing until used.
func New(o Options) *Store { return &Store{o: o} }

// Get returns the secret's value.
func (s *Store) Get(name string) ([]byte, error) { return nil, ErrNotFound }

// Set stores the value.
func (s *Store) Set(name string, value []byte) error { return errors.New("not implemented") }
