package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/fleet"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/member"
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
enforce against what the policy asks for, and the keyring. On a hub, each
host of hosts: too: reachable, its host key pinned and matching, relay
serve-ssh answering (its version and allowlist digest), and the hub's
key restricted there (a plain command refused, port forwarding refused).
On a member's config (member: without auth.owner_id) there is no bot: the
token and TOTP are not checked, and the allowlist offered to the hub is
shown.

Run outside the service (as the relay user, say), it cannot read the
token that relay.service gets as a systemd credential (LoadCredential= or
LoadCredentialEncrypted=): it then checks that the unit declares it and
that its file exists, and says that the token itself and getMe are not
checked. An audit key kept off the host (relay audit init --no-store) is a
warning, not a failure: relay runs without it; verification needs it.

Options:
    --config FILE   the config file (default: as relay run)
    --offline       skip the getMe call to the Bot API and the hosts

Exit status: 0 when every check passes (warnings or not), 1 otherwise.
`

func init() {
	register(&command{name: "doctor", short: "preflight checks with fixes", usage: doctorUsage, run: doctorCmd})
}

type doctor struct {
	env    *Env
	failed int
	// keyringDone is set once the keyring has had its one line.
	keyringDone bool
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
	if err := noArgs(fs); err != nil {
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
	if cfg.Secrets.NoKeyring {
		d.ok("keyring", "not used (secrets.keyring: false)")
		d.keyringDone = true
	}

	if cfg.Member != nil && cfg.Auth.OwnerID <= 0 {
		l := member.Offer(cfg, "")
		d.ok("member", fmt.Sprintf("no bot here; relay serve-ssh offers %d commands to the hub, digest %s", len(l.Commands), l.Digest[:16]))
	} else {
		d.checkToken(ctx, cfg, store, *offline)
		d.checkTOTP(store)
	}
	d.checkAudit(cfg, store)
	d.checkSandbox(cfg, path, env)
	d.checkHosts(ctx, cfg, *offline)
	if d.failed > 0 {
		fmt.Fprintf(env.Stdout, "%d checks failed\n", d.failed)
		return errSilent{code: ExitFailure}
	}
	fmt.Fprintln(env.Stdout, "all checks passed")
	return nil
}

// checkKeyring gives the keyring one line, the first time a lookup had to
// skip it.
func (d *doctor) checkKeyring(p secrets.Probe) {
	if d.keyringDone {
		return
	}
	for _, s := range p.Skipped {
		kind, msg, hint, ok := keyringNote(s.Err)
		if !ok {
			continue
		}
		d.keyringDone = true
		if kind == kindNote {
			var ke *secrets.KeyringError
			if errors.As(s.Err, &ke) {
				msg = fmt.Sprintf("none here (%v): secrets come from credentials and files; set secrets.keyring: false to stop looking", ke.Kind)
			}
		} else if hint != "" {
			msg += "; " + hint
		}
		d.warn("keyring", msg)
		return
	}
}

func (d *doctor) checkToken(ctx context.Context, cfg *policy.Config, store *secrets.Store, offline bool) {
	token, p, err := store.Lookup(secrets.BotToken)
	defer clear(token)
	d.checkKeyring(p)
	if errors.Is(err, secrets.ErrNotFound) && d.env.Getenv("CREDENTIALS_DIRECTORY") == "" {
		if c, ok := findCredential(unitDirs, relayUnit, secrets.BotToken); ok {
			d.checkUnitCredential(c, offline)
			return
		}
	}
	if err != nil {
		d.fail("token", err.Error(), "relay token set (keyring), a systemd credential named bot-token, or telegram.token_file (0600)")
		return
	}
	d.ok("token", fmt.Sprintf("from %s (%s)", p.Source, p.Location))
	if offline {
		return
	}
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

// checkUnitCredential reports a token that exists only as a systemd
// credential of relay.service, seen from outside the unit: what can be
// checked here (the unit declares it, its file exists) and what cannot
// (the token itself, and so getMe).
func (d *doctor) checkUnitCredential(c unitCredential, offline bool) {
	decl := fmt.Sprintf("%s=%s:%s in %s", c.directive, secrets.BotToken, c.path, c.file)
	if c.path == "" {
		decl = fmt.Sprintf("%s=%s in %s", c.directive, secrets.BotToken, c.file)
	}
	if filepath.IsAbs(c.path) {
		if _, err := os.Stat(c.path); errors.Is(err, os.ErrNotExist) {
			fix := fmt.Sprintf("printf %%s \"$TOKEN\" | sudo systemd-creds encrypt --name=%s - %s", secrets.BotToken, c.path)
			if c.directive == "LoadCredential" {
				fix = fmt.Sprintf("write the token to %s (root, mode 0600)", c.path)
			}
			d.fail("token", fmt.Sprintf("relay.service loads the token from %s (%s), which does not exist", c.path, decl), fix)
			return
		}
		d.warn("token", fmt.Sprintf("a systemd credential of relay.service (%s); %s exists, but only the service can read it, so the token itself is not checked here", decl, c.path))
	} else {
		d.warn("token", fmt.Sprintf("a systemd credential of relay.service (%s), found by systemd in its credential store; only the service can read it, so the token itself is not checked here", decl))
	}
	if !offline {
		d.warn("getMe", "not checked: the token is readable only inside relay.service; relay logs a refused token at start (journalctl -u relay)")
	}
}

func (d *doctor) checkTOTP(store *secrets.Store) {
	v, p, err := store.Lookup(secrets.TOTPSecret)
	clear(v)
	d.checkKeyring(p)
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
	key, p, err := store.Lookup(secrets.AuditKey)
	d.checkKeyring(p)
	switch {
	case len(files) == 0:
		d.fail("audit", "no log files in "+dir, "relay audit init")
	case errors.Is(err, secrets.ErrNotFound):
		// relay audit init --no-store: the stronger choice, on purpose.
		// The daemon needs only the key state; the links are checked.
		d.warn("audit key", "verification needs K0; it is not on this host (relay audit init --no-store keeps it off): relay audit verify --key - reads your copy")
		if sum, err := audit.Verify(files, nil, nil); err != nil {
			d.fail("audit", "chain broken: "+err.Error(), "investigate: relay audit verify --key -; the log may have been tampered with")
		} else {
			d.ok("audit", fmt.Sprintf("links ok (MACs need K0): %d records in %d file(s), head seq=%d", sum.Records, sum.Files, sum.Head.Seq))
		}
	case err != nil:
		d.fail("audit key", err.Error(), "relay audit init (or restore the key you were shown)")
	default:
		if sum, err := audit.Verify(files, key, nil); err != nil {
			d.fail("audit", "chain broken: "+err.Error(), "investigate: relay audit verify; the log may have been tampered with")
		} else {
			d.ok("audit", sum.String())
		}
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

// checkHosts runs fleet's checks of each host, in parallel: each may wait
// for its connect timeout.
func (d *doctor) checkHosts(ctx context.Context, cfg *policy.Config, offline bool) {
	if len(cfg.Hosts) == 0 {
		return
	}
	if offline {
		d.warn("hosts", fmt.Sprintf("%d hosts not checked (--offline)", len(cfg.Hosts)))
		return
	}
	f, err := fleet.New(cfg, fleet.Options{})
	if err != nil {
		d.fail("hosts", err.Error(), "see docs/reference.md, hosts:")
		return
	}
	defer f.Close()
	names := f.Hosts()
	results := make([][]fleet.Check, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = f.Doctor(ctx, n) }()
	}
	wg.Wait()
	for _, cs := range results {
		for _, c := range cs {
			name := c.Host + " " + c.Name
			switch c.Level {
			case fleet.CheckOK:
				d.ok(name, c.Detail)
			case fleet.CheckWarn:
				d.warn(name, c.Detail)
			default:
				d.fail(name, c.Detail, c.Fix)
			}
		}
	}
}

func (d *doctor) checkSandbox(cfg *policy.Config, path string, env *Env) {
	for _, c := range hostChecks(cfg) {
		if c.status == "ok" {
			d.ok("sandbox", c.name+": "+c.detail)
		} else {
			d.warn("sandbox", c.name+": "+c.detail)
		}
	}
	le := launchEnv(path, env)
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
