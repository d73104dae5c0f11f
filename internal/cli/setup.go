package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/atomicfile"
	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/policy"
)

// setupConfigPath is where first-run setup writes the config.
func setupConfigPath(env *Env) (string, error) {
	if d := env.Getenv("CONFIGURATION_DIRECTORY"); d != "" {
		return filepath.Join(d, "relay.yaml"), nil
	}
	if d := env.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "relay", "relay.yaml"), nil
	}
	if h := env.Getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".config", "relay", "relay.yaml"), nil
	}
	return "", errors.New("no place for a config: HOME is unset (pass --config FILE)")
}

// setup walks the owner through first-run configuration on a terminal:
// token, owner ID, config, TOTP, audit key. It returns the config's path.
// Every secret goes to the keyring, or to a 0600 file when there is none.
func setup(ctx context.Context, env *Env) (string, error) {
	cfgPath, err := setupConfigPath(env)
	if err != nil {
		return "", withCode(ExitNotSetup, err)
	}
	paths := policy.DefaultPaths(env.Getenv)
	if paths.StateDir == "" {
		return "", withCode(ExitNotSetup, errors.New("no state directory: set HOME or XDG_STATE_HOME, or pass --config FILE"))
	}
	fmt.Fprintf(env.Stderr, "relay: no config found; first-run setup will write %s (Ctrl-C to stop)\n\n", cfgPath)

	store := secrets.New(secrets.Options{
		CredentialsDir: env.Getenv("CREDENTIALS_DIRECTORY"),
		KeyringService: secrets.DefaultKeyringService,
		Getenv:         env.Getenv,
		Dir:            filepath.Join(paths.StateDir, "secrets"),
	})
	if err := os.MkdirAll(filepath.Join(paths.StateDir, "secrets"), 0o700); err != nil {
		return "", err
	}
	put := func(name string, v []byte) (string, error) {
		if err := store.Set(name, v); err == nil {
			return "the os keyring", nil
		} else if !keyringAbsent(err) {
			return "", err
		}
		p, err := store.SetFile(name, v)
		return p + " (0600; no keyring here)", err
	}

	// 1. The token.
	if _, err := store.Get(secrets.BotToken); err != nil {
		fmt.Fprintln(env.Stderr, "1. Create a bot with @BotFather in Telegram (/newbot) and paste its token.")
		token, err := readToken(env)
		if err != nil {
			return "", err
		}
		if err := checkToken(token); err != nil {
			clear(token)
			return "", withCode(ExitUsage, err)
		}
		where, err := put(secrets.BotToken, token)
		clear(token)
		if err != nil {
			return "", fmt.Errorf("store the token: %w", err)
		}
		fmt.Fprintf(env.Stderr, "   stored the token in %s\n\n", where)
	}

	// 2. The owner.
	in := bufio.NewReader(env.Stdin)
	fmt.Fprintln(env.Stderr, "2. Your numeric Telegram user ID (not your @username): message @userinfobot to see it.")
	var owner int64
	for owner == 0 {
		fmt.Fprint(env.Stderr, "   user ID: ")
		line, err := in.ReadString('\n')
		id, perr := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		if perr == nil && id > 0 {
			owner = id
			break
		}
		if err != nil {
			return "", withCode(ExitNotSetup, errors.New("setup: no owner ID entered; nothing started"))
		}
		fmt.Fprintln(env.Stderr, "   that is not a positive number")
	}

	// 3. The config: the default read-only policy with the owner filled in.
	cfgText := fmt.Sprintf("# written by relay's first-run setup on %s; edit freely, then\n# check with: relay policy check %s\nstate_dir: %s\nauth:\n  owner_id: %d\naudit:\n  dir: %s\n\n%s",
		time.Now().Format(time.DateOnly), cfgPath, paths.StateDir, owner, paths.AuditDir, policy.DefaultYAML())
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return "", err
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(env.Stderr, "\n3. wrote %s\n\n4. Enrol TOTP for /login.\n", cfgPath)

	// 4. TOTP.
	if _, err := store.Get(secrets.TOTPSecret); err != nil {
		target := putStore{Store: store, put: put}
		o := enrollOpts{
			statePath: auth.ConfigFrom(cfg.Auth, cfg.StateDir).StatePath,
			nRecovery: cfg.Auth.RecoveryCodes,
			account:   accountName(),
			now:       time.Now,
		}
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			return "", err
		}
		if err := enroll(env, store, target, o); err != nil {
			return "", err
		}
	}

	// 5. The audit log and its key.
	if len(audit.Files(cfg.Audit.Dir)) == 0 {
		k0, err := audit.Init(cfg.Audit.Dir, putStore{Store: store, put: put})
		if err != nil {
			return "", fmt.Errorf("audit init: %w", err)
		}
		fmt.Fprintf(env.Stderr, "\n5. Audit key K0 (shown once; keep it off this machine, it proves the log untouched):\n   %x\n\n", k0)
		clear(k0)
	}
	fmt.Fprintln(env.Stderr, "setup done; starting relay. Send /login CODE to your bot.")
	return cfgPath, nil
}

// putStore stores through setup's keyring-else-file choice.
type putStore struct {
	*secrets.Store
	put func(name string, v []byte) (string, error)
}

func (p putStore) Set(name string, v []byte) error {
	_, err := p.put(name, v)
	return err
}
