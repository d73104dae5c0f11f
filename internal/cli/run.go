package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/relaychat/relay/internal/daemon"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/policy"
)

const runUsage = `Usage:
    relay run [--config FILE] [--log-format json|pretty]

Runs the bot: long-polls Telegram (or serves the webhook), admits only the
owner, and runs allowlisted commands in their sandboxes. SIGHUP reloads the
config; SIGTERM or SIGINT shuts down gracefully, a second one forces exit.

Options:
    --config FILE       the config file. Default: $CONFIGURATION_DIRECTORY/relay.yaml
                        under systemd, else /etc/relay/relay.yaml if it exists,
                        else $XDG_CONFIG_HOME/relay/relay.yaml.
    --log-format F      json (default when stderr is not a terminal) or pretty.
    --shutdown-grace D  how long running jobs may finish after SIGTERM before
                        they are killed (default 10s).
`

func init() {
	register(&command{name: "run", short: "run the bot", usage: runUsage, run: runCmd})
}

// defaultConfigPath is where relay looks for its config when --config is
// not given; "" when there is none.
func defaultConfigPath(env *Env) string {
	var candidates []string
	if d := env.Getenv("CONFIGURATION_DIRECTORY"); d != "" {
		candidates = append(candidates, filepath.Join(d, "relay.yaml"))
	}
	candidates = append(candidates, "/etc/relay/relay.yaml")
	if d := env.Getenv("XDG_CONFIG_HOME"); d != "" {
		candidates = append(candidates, filepath.Join(d, "relay", "relay.yaml"))
	} else if h := env.Getenv("HOME"); h != "" {
		candidates = append(candidates, filepath.Join(h, ".config", "relay", "relay.yaml"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

// configFlag resolves --config: the given path, or the default location.
func configFlag(given string, env *Env) (string, error) {
	if given != "" {
		return given, nil
	}
	if p := defaultConfigPath(env); p != "" {
		return p, nil
	}
	return "", withCode(ExitNotSetup, errors.New("no config file found: pass --config FILE, or create $XDG_CONFIG_HOME/relay/relay.yaml (relay run on a terminal walks you through it)"))
}

func newLogger(env *Env, format string) (zerolog.Logger, error) {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	switch format {
	case "":
		if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "pretty"
		} else {
			format = "json"
		}
	case "json", "pretty":
	default:
		return zerolog.Logger{}, usageErr("unknown --log-format %q (want json or pretty)", format)
	}
	if format == "pretty" {
		return zerolog.New(zerolog.ConsoleWriter{Out: env.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger(), nil
	}
	return zerolog.New(env.Stderr).With().Timestamp().Logger(), nil
}

func runCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("run")
	cfgFlag := fs.String("config", "", "")
	logFormat := fs.String("log-format", "", "")
	grace := fs.Duration("shutdown-grace", 10*time.Second, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	log, err := newLogger(env, *logFormat)
	if err != nil {
		return err
	}
	path, err := configFlag(*cfgFlag, env)
	if err != nil && env.IsTerminal {
		path, err = setup(ctx, env)
	}
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	store := secretStore(cfg, env)
	token, err := store.Get(secrets.BotToken)
	if err != nil {
		return notSetup(err, "no bot token: run relay token set (keyring), or provide a systemd credential named bot-token, or telegram.token_file")
	}
	totpSecret, err := store.Get(secrets.TOTPSecret)
	if err != nil {
		return notSetup(err, "no TOTP secret: run relay totp enroll --config "+path)
	}
	d, err := daemon.New(daemon.Options{
		Config:  cfg,
		Launch:  launch.Env{ConfigPath: absPath(path), CredentialsDir: env.Getenv("CREDENTIALS_DIRECTORY")},
		Token:   string(token),
		TOTP:    totpSecret,
		Log:     log,
		Version: version(),
		Reload:  func() (*policy.Config, error) { return policy.Load(path) },
		// A second signal forces exit; this bounds the wait before that.
		ShutdownGrace: *grace,
	})
	if err != nil {
		if errors.Is(err, daemon.ErrAuditUnavailable) {
			return withCode(ExitNotSetup, fmt.Errorf("%w (run relay audit init --config %s first)", err, path))
		}
		return err
	}
	return d.Run(ctx)
}

func notSetup(err error, hint string) error {
	if errors.Is(err, secrets.ErrNotFound) {
		return withCode(ExitNotSetup, errors.New(hint))
	}
	return withCode(ExitNotSetup, fmt.Errorf("%w; %s", err, hint))
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
