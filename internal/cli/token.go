package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"io"

	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/policy"
)

const tokenUsage = `Usage:
    relay token set [--config FILE] [--file]
    relay token status [--config FILE]
    relay token delete [--config FILE]

Manage the Telegram bot token relay uses.

set     reads the token from standard input, or prompts for it without echo
        on a terminal, checks its shape and stores it in the OS keyring
        (Secret Service); on a host without one (or with --file, or
        secrets.keyring: false) in a 0600 file in the state directory
        (telegram.token_file when the config sets one).
status  says which source the token comes from, never the token itself.
        Exits 5 when there is no token.
delete  removes the token from the keyring and the file. A systemd
        credential or RELAY_BOT_TOKEN is never touched; relay says so.

Sources, in the order relay tries them: the systemd credential
$CREDENTIALS_DIRECTORY/bot-token, the OS keyring, RELAY_BOT_TOKEN, the file.

Without --config, the config file relay run would use is read if there is
one; otherwise the state directory is $STATE_DIRECTORY, else
$XDG_STATE_HOME/relay, else ~/.local/state/relay.

Examples:
    relay token set
    printf '%s' "$TOKEN" | relay token set --file
    relay token status
`

// tokenRE is the shape of a bot token: the bot's numeric ID, a colon, and
// the secret part. It is checked before anything is stored, so a paste of
// the wrong thing (a chat ID, a whole BotFather message) is caught early.
var tokenRE = lazyre.New(`^[0-9]{5,16}:[A-Za-z0-9_-]{30,64}$`)

// maxTokenInput bounds what is read from stdin; a token is under 100 bytes.
const maxTokenInput = 4096

// testKeyringService, when set, replaces the keyring service name. Only
// tests set it: the real keyring under ./scripts/test is shared by every
// package's tests at once, and the e2e tests store under "relay" too.
var testKeyringService string

func keyringService() string {
	if testKeyringService != "" {
		return testKeyringService
	}
	return secrets.DefaultKeyringService
}

func init() {
	register(&command{
		name:  "token",
		short: "store, check or delete the bot token",
		usage: tokenUsage,
		run:   runToken,
	})
}

func runToken(ctx context.Context, env *Env, args []string) error {
	sub, err := subcommand("token", args, "set", "status", "delete")
	if err != nil {
		return err
	}
	switch sub {
	case "set":
		return tokenSet(ctx, env, args[1:])
	case "status":
		return tokenStatus(env, args[1:])
	}
	return tokenDelete(env, args[1:])
}

// tokenStore opens the secret store exactly as `relay run` would: from
// --config, else from the default config file when one exists (so its
// state_dir and telegram.token_file count), else from the default paths.
func tokenStore(env *Env, configPath string) (*secrets.Store, error) {
	if configPath == "" {
		configPath = defaultConfigPath(env)
	}
	if configPath != "" {
		cfg, err := loadConfig(configPath)
		if err != nil {
			return nil, err
		}
		return secretStore(cfg, env), nil
	}
	dir := policy.DefaultPaths(env.Getenv).StateDir
	if dir == "" {
		return nil, failf(ExitUsage, "pass --config FILE", "no state directory: STATE_DIRECTORY, XDG_STATE_HOME and HOME are unset or relative")
	}
	return secretStore(&policy.Config{StateDir: dir}, env), nil
}

func tokenSet(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("token set")
	config := fs.String("config", "", "config file")
	toFile := fs.Bool("file", false, "store in a 0600 file instead of the keyring")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// Never accept the token as an argument: it would end up in shell
		// history and in /proc/PID/cmdline for every user to read.
		return usageErr("token set: unexpected argument (the token is read from standard input, never the command line)")
	}
	store, err := tokenStore(env, *config)
	if err != nil {
		return err
	}
	token, err := readToken(newPrompter(ctx, env), env)
	defer clear(token)
	if err != nil {
		return err
	}
	if err := checkToken(token); err != nil {
		return withCode(ExitUsage, err)
	}
	k := newKeeper(env, store, *toFile)
	if err := k.Set(secrets.BotToken, token); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "stored the bot token in %s\n", k.where(secrets.BotToken))
	k.warnOutranked(secrets.BotToken, "token")
	return nil
}

// readToken reads the token without echoing it: from a no-echo prompt on
// a terminal, else the whole of standard input (a pipe or a file).
func readToken(p *prompter, env *Env) ([]byte, error) {
	var b []byte
	if env.IsTerminal {
		var err error
		b, err = p.askHidden("bot token from @BotFather (input is hidden): ")
		if errors.Is(err, errInterrupted) {
			return nil, errors.New("token set: interrupted; nothing was stored")
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			clear(b)
			return nil, fmt.Errorf("token set: read the token: %w", err)
		}
	} else {
		var err error
		b, err = io.ReadAll(io.LimitReader(env.Stdin, maxTokenInput+1))
		if err != nil {
			clear(b)
			return nil, fmt.Errorf("token set: read standard input: %w", err)
		}
		if len(b) > maxTokenInput {
			clear(b)
			return nil, usageErr("token set: standard input is longer than %d bytes, not a bot token (pipe only the token)", maxTokenInput)
		}
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		clear(b)
		return nil, usageErr("token set: no token given (paste the token @BotFather sent, or pipe it on standard input)")
	}
	// Copy out so the caller can clear exactly what it holds.
	out := bytes.Clone(t)
	clear(b)
	return out, nil
}

// checkToken reports whether token has a bot token's shape. The error
// never contains the input, not even its length: a mistyped token is still
// mostly a token.
func checkToken(token []byte) error {
	if tokenRE().Match(token) {
		return nil
	}
	return errors.New("token set: that is not a bot token (want the form 123456789:AAH... that @BotFather sends: digits, a colon, then 30-64 letters, digits, '_' or '-'); nothing was stored")
}

func tokenStatus(env *Env, args []string) error {
	fs := newFlags("token status")
	config := fs.String("config", "", "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	store, err := tokenStore(env, *config)
	if err != nil {
		return err
	}
	v, p, err := lookup(env, store, secrets.BotToken)
	clear(v)
	if err != nil {
		if errors.Is(err, secrets.ErrNotFound) {
			return withCode(ExitNotSetup, err)
		}
		return err
	}
	fmt.Fprintf(env.Stdout, "bot token: %s (%s)\n", sourceName(p.Source), p.Location)
	return nil
}

func tokenDelete(env *Env, args []string) error {
	fs := newFlags("token delete")
	config := fs.String("config", "", "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	store, err := tokenStore(env, *config)
	if err != nil {
		return err
	}
	removed, err := store.Delete(secrets.BotToken)
	for _, src := range removed {
		fmt.Fprintf(env.Stdout, "deleted the bot token from the %s\n", sourceName(src))
	}
	// Whatever was removed, tell the owner if relay would still find a token
	// in a place it cannot delete from.
	if p, perr := store.Probe(secrets.BotToken); perr == nil {
		switch p.Source {
		case secrets.SourceCredential:
			env.warnf("the bot token is still provided by the systemd credential %s, which relay cannot delete (remove LoadCredential=bot-token from the unit)", p.Location)
		case secrets.SourceEnv:
			env.warnf("the bot token is still provided by %s, which relay cannot delete (unset it)", secrets.EnvToken)
		default:
			env.warnf("a bot token is still present in the %s (%s)", sourceName(p.Source), p.Location)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, secrets.ErrNotFound) && len(removed) == 0:
		return withCode(ExitNotSetup, err)
	case len(removed) > 0 && secrets.Absent(err):
		// A headless server has no keyring to hold a copy: deleting the
		// file was the whole job.
		env.tellKeyring(err)
		return nil
	}
	return err
}

func sourceName(s secrets.Source) string {
	switch s {
	case secrets.SourceCredential:
		return "systemd credential"
	case secrets.SourceKeyring:
		return "os keyring"
	case secrets.SourceEnv:
		return "environment"
	case secrets.SourceFile:
		return "file"
	}
	return string(s)
}
