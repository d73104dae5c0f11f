package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"

	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/playground"
	"github.com/relaychat/relay/policy"
)

const playgroundUsage = `Usage:
    relay playground [--config FILE] [--log-format json|pretty]

Tries relay offline, as a phone would show it. Starts relay against a
built-in fake Telegram Bot API with throwaway state (a TOTP secret, an
audit log and its key K0, a fake bot token, all in a temporary directory
removed at exit) and serves a page on 127.0.0.1 that looks and behaves
like the bot's private chat: type messages, press buttons, open
documents, watch edits, drafts and deletions, and open the "/" menu. The
page shows the current TOTP code, so /login needs no phone.

Open the URL it prints. Its random token is the key to the chat: the page
answers nothing without it, and only on 127.0.0.1.

Nothing reaches Telegram, and no real token, keyring or secret file is
read. Commands are not simulated: they run on this machine, in their
sandboxes, exactly as the policy says.

Options:
    --config FILE   run this policy (its commands, limits and sandboxes)
                    with the playground's state, to try it before trusting
                    it from a phone; SIGHUP reloads it. A config that sets
                    telegram.api_url is refused. Default: the built-in
                    read-only policy, whatever config exists.
    --log-format F  json or pretty (default: pretty on a terminal).
`

func init() {
	register(&command{name: "playground", short: "try relay offline, in a local web page that plays the phone", usage: playgroundUsage, run: playgroundCmd})
}

func playgroundCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("playground")
	cfgPath := fs.String("config", "", "")
	logFormat := fs.String("log-format", "", "")
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
	var (
		cfg    *policy.Config
		reload func() (*policy.Config, error)
		path   = *cfgPath
	)
	if path == "" {
		// Deliberately not the default config location: without
		// --config the playground is the same for everyone.
		if cfg, err = policy.Default(env.Getenv); err != nil {
			return err
		}
	} else {
		if cfg, err = playgroundPolicy(path); err != nil {
			return err
		}
		reload = func() (*policy.Config, error) { return playground.LoadPolicy(path) }
	}
	who := commandIdentity(env, cfg)
	// Commands launch exactly as under relay run.
	le := startHost(cfg, launch.Env{}, log)
	defer le.Host.Close()
	res, err := playground.Run(ctx, playground.Options{
		Config:     cfg,
		ConfigPath: path,
		Launch:     le,
		Reload:     reload,
		Log:        log,
		Version:    version(),
		Ready: func(i playground.Info) {
			out := env.Stdout
			fmt.Fprintf(out, "relay playground: your relay's chat in a web page, on this machine only; nothing reaches Telegram\n\n")
			fmt.Fprintf(out, "    open  %s\n\n", i.URL)
			fmt.Fprintf(out, "  policy    %s\n", policySummary(path, cfg))
			fmt.Fprintf(out, "  commands  run for real on this machine, %s, each in its sandbox\n", who)
			fmt.Fprintf(out, "  state     throwaway (TOTP secret, audit log, K0, fake token) in %s, removed at exit\n", i.Dir)
			fmt.Fprintf(out, "  login     the page shows the current TOTP code: send /login CODE\n")
			if path != "" {
				fmt.Fprintf(out, "  reload    edit %s, then: kill -HUP %d\n", path, os.Getpid())
			}
			fmt.Fprintf(out, "Ctrl-C stops it.\n")
		},
	})
	if res != nil {
		verified := "did not verify"
		if res.Verified {
			verified = "chain verified with the throwaway K0"
		}
		fmt.Fprintf(env.Stdout, "relay playground stopped: %d audit records, %s; removed %s\n", res.Records, verified, res.Dir)
	}
	return err
}

// playgroundPolicy loads --config as relay run would, with the
// playground's own refusal of a configured Bot API.
func playgroundPolicy(path string) (*policy.Config, error) {
	cfg, err := playground.LoadPolicy(path)
	var refused *playground.APIURLError
	switch {
	case err == nil:
		return cfg, nil
	case errors.As(err, &refused):
		return nil, failf(ExitConfig, hintPlaygroundAPIURL, "playground: %v", err)
	case errors.Is(err, fs.ErrNotExist):
		return nil, failf(ExitNotSetup, "leave out --config to try the built-in read-only policy", "no config file %s", path)
	}
	return nil, withCode(ExitConfig, err)
}

// policySummary names the policy and its commands, for the banner.
func policySummary(path string, cfg *policy.Config) string {
	names := make([]string, len(cfg.Commands))
	for i, c := range cfg.Commands {
		names[i] = c.Name
	}
	what := "the built-in read-only policy"
	if path != "" {
		what = path
	}
	if len(names) == 0 {
		return what + ": no commands"
	}
	return fmt.Sprintf("%s: %d commands (%s)", what, len(names), strings.Join(names, ", "))
}

// commandIdentity says who the policy's commands run as, and warns when
// they cannot run at all.
func commandIdentity(env *Env, cfg *policy.Config) string {
	if os.Geteuid() != 0 {
		if u, err := user.Current(); err == nil {
			return "as you (" + u.Username + ")"
		}
		return fmt.Sprintf("as you (uid %d)", os.Getuid())
	}
	if _, err := launch.CommandUser(cfg.CommandUser); err != nil {
		for _, c := range cfg.Commands {
			if !c.Sandbox.Disabled {
				env.warnf("relay runs as root, so sandboxed commands run as command_user, and they will be refused: %v", err)
				env.say(kindHint, "create it (useradd --system --no-create-home --shell /usr/sbin/nologin %s), or run the playground as yourself", cfg.CommandUser)
				break
			}
		}
	}
	return "as command_user " + cfg.CommandUser
}
