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

	"github.com/relaychat/relay/internal/cgroup"
	"github.com/relaychat/relay/internal/daemon"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

const runUsage = `Usage:
    relay run [--config FILE] [--log-format json|pretty] [--shutdown-grace D]
              [--api-url URL]

Runs the bot: long-polls Telegram (or serves the webhook), admits only the
owner, and runs allowlisted commands in their sandboxes. SIGHUP reloads the
config; SIGTERM or SIGINT shuts down gracefully, a second one forces exit.

When the config file does not exist and standard input is a terminal,
first-run setup asks for what is missing (the Bot API URL, the token,
checked with getMe, your user ID, a TOTP enrolment, the audit log), writes
the config last and starts. Ctrl-C stops it at any prompt; running relay
again continues at the first missing piece. Without a terminal, a missing
config exits 5.

Options:
    --config FILE       the config file. Default: $CONFIGURATION_DIRECTORY/relay.yaml
                        under systemd, else /etc/relay/relay.yaml if it exists,
                        else $XDG_CONFIG_HOME/relay/relay.yaml.
    --log-format F      json (default when stderr is not a terminal) or pretty.
    --shutdown-grace D  how long running jobs may finish after SIGTERM before
                        they are killed (default 10s).
    --api-url URL       first-run setup only: the Bot API to use and write
                        into the new config, e.g. a local fake Bot API
                        (default: ask, offering https://api.telegram.org).
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
	return "", errNoConfig
}

// errNoConfig and missingConfig are one line each, the fix included: the
// first thing a new user sees without a terminal (cron, a pipe, CI).
var errNoConfig = withCode(ExitNotSetup, errors.New("no config file found: pass --config FILE, or run 'relay run' on a terminal to set one up"))

func missingConfig(path string) error {
	return withCode(ExitNotSetup, fmt.Errorf("no config file %s: run 'relay run --config %s' on a terminal to create it, or start from policy/examples", path, path))
}

func newLogger(env *Env, format string) (zerolog.Logger, error) {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	// Durations with their unit ("wait":"1.5s"), not a bare number of
	// milliseconds that a reader has to know the unit of.
	zerolog.DurationFieldFormat = zerolog.DurationFormatString
	switch format {
	case "":
		if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "pretty"
		} else {
			format = "json"
		}
	case "json", "pretty":
	default:
		return zerolog.Logger{}, usageErr("run: --log-format: %s", unknownWord("log format", format, []string{"json", "pretty"}))
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
	apiURL := fs.String("api-url", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	log, err := newLogger(env, *logFormat)
	if err != nil {
		return err
	}
	path, err := configFlag(*cfgFlag, env)
	switch {
	case err == nil && configExists(path):
		if *apiURL != "" {
			return usageErr("run: --api-url is for first-run setup, and %s exists (set telegram.api_url in it)", path)
		}
	case !env.IsTerminal && err == nil:
		return missingConfig(path)
	case !env.IsTerminal:
		return err
	default:
		if path == "" {
			if path, err = setupConfigPath(env); err != nil {
				return err
			}
		}
		if err := setup(ctx, env, setupOpts{configPath: path, apiURL: *apiURL}); err != nil {
			return err
		}
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	telegram.Prepare(cfg.Telegram.APIURL)
	if cfg.Auth.OwnerID <= 0 {
		// A member's file (member:) may leave the owner out: it is
		// served to a hub by relay serve-ssh, not run as a bot.
		return failf(ExitConfig, "add auth: {owner_id: …} to run a bot with it; a member's config is served by relay serve-ssh", "%s has no auth.owner_id: it is a fleet member's config", path)
	}
	// From here on, notes about the keyring go to the log.
	env.log = &log
	store := secretStore(cfg, env)
	token, _, err := lookup(env, store, secrets.BotToken)
	if err != nil {
		return notSetup(err, "no bot token", "run 'relay token set', or provide a systemd credential named bot-token, or set telegram.token_file")
	}
	totpSecret, _, err := lookup(env, store, secrets.TOTPSecret)
	if err != nil {
		return notSetup(err, "no TOTP secret", "run 'relay totp enroll --config "+path+"'")
	}
	le := startHost(cfg, launchEnv(path, env), log)
	defer le.Host.Close()
	d, err := daemon.New(daemon.Options{
		Config:  cfg,
		Launch:  le,
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
			return failf(ExitNotSetup, "run 'relay audit init --config "+path+"' first", "%w", err)
		}
		return err
	}
	return d.Run(ctx)
}

// configExists reports whether path names something: a config that exists
// but cannot be read is loadConfig's to report, not setup's to replace.
func configExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// notSetup is the error for a secret relay cannot start without: what is
// missing when no source holds it, else the source's own failure.
func notSetup(err error, missing, hint string) error {
	if errors.Is(err, secrets.ErrNotFound) {
		return failf(ExitNotSetup, hint, "%s", missing)
	}
	return failf(ExitNotSetup, hint, "%s: %w", missing, err)
}

// startHost prepares what a running relay gives every command it
// launches, job cgroups and trampolines started ahead, set up in the
// background once the relay polls (see launch.Host). The caller closes
// the Host.
func startHost(cfg *policy.Config, le launch.Env, log zerolog.Logger) launch.Env {
	le.Host = launch.NewHost(cfg, le, func(tree *cgroup.Tree, err error) {
		if err != nil {
			log.Warn().Str("reason", err.Error()).Msg("no job cgroups: memory, pids and cpu limits hold only per process (rlimits)")
		} else {
			log.Info().Str("cgroup", tree.Path()).Msg("job cgroups")
		}
	})
	return le
}

// launchEnv is what this host contributes to every launch of a command.
func launchEnv(configPath string, env *Env) launch.Env {
	return launch.Env{ConfigPath: absPath(configPath), CredentialsDir: env.Getenv("CREDENTIALS_DIRECTORY")}
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
