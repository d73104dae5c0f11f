package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/sandbox"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

const doctorUsage = `Usage:
    relay doctor [--config FILE] [--offline]

Checks that relay can run here, one line per check, with a fix for each
failure: the config, the token source and getMe, TOTP enrolment, the audit
directory, its chain and free disk space, what the kernel's sandbox can
enforce against what the policy asks for, and the keyring.

Options:
    --config FILE   the config file (default: as relay run)
    --offline       skip the getMe call to the Bot API

Exit status: 0 when every check passes, 1 otherwise.
`

func init() {
	register(&command{name: "doctor", short: "preflight checks with fixes", usage: doctorUsage, run: doctorCmd})
}

type doctor struct {
	env    *Env
	failed int
}

func (d *doctor) ok(name, detail string) {
	fmt.Fprintf(d.env.Stdout, "ok    %-10s %s\n", name, detail)
}

func (d *doctor) fail(name, detail, fix string) {
	d.failed++
	fmt.Fprintf(d.env.Stdout, "FAIL  %-10s %s\n      fix: %s\n", name, detail, fix)
}

func (d *doctor) warn(name, detail string) {
	fmt.Fprintf(d.env.Stdout, "warn  %-10s %s\n", name, detail)
}

func doctorCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("doctor")
	cfgFlag := fs.String("config", "", "")
	offline := fs.Bool("offline", false, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	d := &doctor{env: env}
	path, err := configFlag(*cfgFlag, env)
	if err != nil {
		d.fail("config", err.Error(), "pass --config FILE")
		return errSilent{code: ExitFailure}
	}
	cfg, err := policy.Load(path)
	if err != nil {
		d.fail("config", err.Error(), "relay policy check "+path)
		return errSilent{code: ExitFailure}
	}
	d.ok("config", fmt.Sprintf("%s: %d commands", path, len(cfg.Commands)))
	store := secretStore(cfg, env)

	d.checkToken(ctx, cfg, store, *offline)
	d.checkTOTP(store)
	d.checkAudit(cfg, store)
	d.checkSandbox(cfg, path, env)
	if d.failed > 0 {
		fmt.Fprintf(env.Stdout, "%d checks failed\n", d.failed)
		return errSilent{code: ExitFailure}
	}
	fmt.Fprintln(env.Stdout, "all checks passed")
	return nil
}

func (d *doctor) checkToken(ctx context.Context, cfg *policy.Config, store *secrets.Store, offline bool) {
	p, err := store.Probe(secrets.BotToken)
	for _, s := range p.Skipped {
		d.warn("keyring", fmt.Sprintf("skipped: %v", s.Err))
	}
	if err != nil {
		d.fail("token", err.Error(), "relay token set (keyring), a systemd credential named bot-token, or telegram.token_file (0600)")
		return
	}
	d.ok("token", fmt.Sprintf("from %s (%s)", p.Source, p.Location))
	if offline {
		return
	}
	token, err := store.Get(secrets.BotToken)
	if err != nil {
		d.fail("getMe", err.Error(), "check the token source")
		return
	}
	defer clear(token)
	tg, err := telegram.New(telegram.Options{Token: string(token), APIURL: cfg.Telegram.APIURL, MaxRetries: 1})
	if err != nil {
		d.fail("getMe", err.Error(), "check telegram.api_url")
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	name, err := tg.GetMe(cctx)
	if err != nil {
		d.fail("getMe", err.Error(), "check the token with BotFather and that "+cfg.Telegram.APIURL+" is reachable")
		return
	}
	d.ok("getMe", "bot @"+name)
}

func (d *doctor) checkTOTP(store *secrets.Store) {
	p, err := store.Probe(secrets.TOTPSecret)
	if err != nil {
		d.fail("totp", err.Error(), "relay totp enroll")
		return
	}
	d.ok("totp", fmt.Sprintf("enrolled (secret from %s)", p.Source))
}

func (d *doctor) checkAudit(cfg *policy.Config, store *secrets.Store) {
	dir := cfg.Audit.Dir
	fi, err := os.Stat(dir)
	if err != nil {
		d.fail("audit", err.Error(), "relay audit init")
		return
	}
	if fi.Mode().Perm()&0o077 != 0 {
		d.fail("audit", fmt.Sprintf("%s is mode %v, readable by others", dir, fi.Mode().Perm()), "chmod 700 "+dir)
	} else {
		d.ok("audit dir", dir+" is 0700")
	}
	files := audit.Files(dir)
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o077 != 0 {
			d.fail("audit", fmt.Sprintf("%s is mode %v", f, fi.Mode().Perm()), "chmod 600 "+f)
		}
	}
	key, err := store.Get(secrets.AuditKey)
	if err != nil {
		d.fail("audit key", err.Error(), "relay audit init (or restore the key you were shown)")
	} else if len(files) == 0 {
		d.fail("audit", "no log files in "+dir, "relay audit init")
	} else if sum, err := audit.Verify(files, key, nil); err != nil {
		d.fail("audit", "chain broken: "+err.Error(), "investigate: relay audit verify; the log may have been tampered with")
	} else {
		d.ok("audit", sum.String())
	}
	clear(key)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		free := int64(st.Bavail) * int64(st.Bsize)
		const minFree = 256 << 20
		if free < minFree {
			d.fail("disk", fmt.Sprintf("%d MiB free under %s", free>>20, dir), "free space: a full disk stops every command (the audit log fails closed)")
		} else {
			d.ok("disk", fmt.Sprintf("%d MiB free under %s", free>>20, dir))
		}
	}
}

func (d *doctor) checkSandbox(cfg *policy.Config, path string, env *Env) {
	caps := sandbox.Probe()
	for _, c := range caps.Report() {
		if c.OK {
			d.ok("sandbox", c.Name+": "+c.Detail)
		} else {
			d.warn("sandbox", c.Name+": "+c.Detail)
		}
	}
	le := launch.Env{ConfigPath: absPath(path), CredentialsDir: env.Getenv("CREDENTIALS_DIRECTORY")}
	for _, c := range cfg.Commands {
		if c.Sandbox.Disabled {
			d.warn("sandbox", "/"+c.Name+" runs without a sandbox (sandbox: none)")
			continue
		}
		p, err := launch.Profile(cfg, le, c)
		if err != nil {
			fix := "see relay sandbox check; run relay where Landlock, seccomp and user namespaces are available, or change the profile"
			if errors.Is(err, sandbox.ErrUnenforceable) {
				fix = "this kernel cannot enforce the profile: " + fix
			}
			d.fail("sandbox", "/"+c.Name+": "+err.Error(), fix)
			continue
		}
		_ = p.Close()
		d.ok("sandbox", "/"+c.Name+": "+c.Sandbox.String()+" enforceable")
	}
}
