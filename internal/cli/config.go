package cli

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/policy"
)

// loadConfig loads the config file at path; every subcommand that needs
// the config goes through here so they all see the same defaults.
func loadConfig(path string) (*policy.Config, error) {
	cfg, err := policy.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, missingConfig(path)
	}
	if err != nil {
		return nil, withCode(ExitConfig, err)
	}
	return cfg, nil
}

// configFromFlag resolves --config (or the default location) and loads the
// config, the first step of nearly every subcommand.
func configFromFlag(given string, env *Env) (string, *policy.Config, error) {
	path, err := configFlag(given, env)
	if err != nil {
		return "", nil, err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return "", nil, err
	}
	return path, cfg, nil
}

// secretStore opens the secret store that cfg and the environment
// describe. It is the one place the CLI builds secrets.Options
// (TestOneSecretStoreConstructor): relay run, setup, token, doctor and
// notify look in the same places in the same order.
func secretStore(cfg *policy.Config, env *Env) *secrets.Store {
	return secrets.New(secrets.Options{
		CredentialsDir: env.Getenv("CREDENTIALS_DIRECTORY"),
		KeyringService: keyringService(),
		KeyringOff:     cfg.Secrets.NoKeyring,
		Getenv:         env.Getenv,
		Dir:            filepath.Join(cfg.StateDir, "secrets"),
		TokenFile:      cfg.Telegram.TokenFile,
	})
}
