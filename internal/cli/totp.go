package cli

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/qr"
	"github.com/relaychat/relay/internal/secrets"
)

const totpUsage = `Usage:
    relay totp enroll [--config FILE] [--png FILE] [--force] [--file] [--light]
    relay totp status [--config FILE]

Manage the TOTP secret that /login and step-up codes are checked against.

enroll  generates a new secret (20 bytes, SHA-1, 6 digits, 30 s), shows it
        as an otpauth:// URI and a QR code in the terminal, asks for the
        code your authenticator app then shows (typing "l" instead redraws
        the QR code for a light background, "d" for a dark one), and only
        if it matches stores the secret in the OS keyring (in a 0600 file
        in the state directory with --file, or where there is no keyring)
        and resets the auth state: no failures, no lockout, no /lock. It prints auth.recovery_codes single-use recovery
        codes, once; only their hashes are kept. It refuses while the
        relay runs (stop it first, then start it again): a running relay
        would keep accepting the old secret.

status  says whether a secret is enrolled and where it is kept, and shows
        the auth state: last accepted code step, failures, lockout, /lock
        and recovery codes left. It never shows the secret.

Flags:
    --config FILE  the relay config (default: the usual locations)
    --png FILE     also write the QR code as a PNG; created 0600, never
                   overwritten; it holds the secret: delete it after use
    --force        replace an existing secret (revokes the old one and its
                   recovery codes)
    --file         store the secret in a 0600 file instead of the keyring
    --light        draw the QR code for a terminal with a light background
`

// maxCodeTries bounds the confirmation prompt; each try is a fresh read.
const maxCodeTries = 3

func init() {
	register(&command{name: "totp", short: "enrol or inspect the TOTP secret", usage: totpUsage, run: totpCmd})
}

func totpCmd(ctx context.Context, env *Env, args []string) error {
	sub, err := subcommand("totp", args, "enroll", "status")
	if err != nil {
		return err
	}
	if sub == "enroll" {
		return totpEnrollCmd(ctx, env, args[1:])
	}
	return totpStatusCmd(env, args[1:])
}

func totpEnrollCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("totp enroll")
	cfgFlag := fs.String("config", "", "")
	pngPath := fs.String("png", "", "")
	force := fs.Bool("force", false, "")
	toFile := fs.Bool("file", false, "")
	light := fs.Bool("light", false, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	_, cfg, err := configFromFlag(*cfgFlag, env)
	if err != nil {
		return err
	}
	store := secretStore(cfg, env)
	target := newKeeper(env, store, *toFile)
	o := enrollOpts{
		prompt:    newPrompter(ctx, env),
		statePath: auth.ConfigFrom(cfg.Auth, cfg.StateDir).StatePath,
		nRecovery: cfg.Auth.RecoveryCodes,
		account:   accountName(),
		png:       *pngPath,
		force:     *force,
		now:       time.Now,
	}
	if *light {
		o.bg = qr.LightBackground
	}
	if err := enroll(env, target, target, o); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "stored the totp secret in %s\n", target.where(secrets.TOTPSecret))
	target.warnOutranked(secrets.TOTPSecret, "totp secret")
	return nil
}

// accountName labels the entry in the authenticator app, so that the
// owner can tell several relays apart.
func accountName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "relay"
}

type enrollOpts struct {
	// prompt asks for the code; nil reads env.Stdin without a deadline.
	prompt *prompter
	// retryForever keeps asking after a wrong code (first-run setup, where
	// giving up would undo everything before); otherwise maxCodeTries.
	retryForever bool
	statePath    string
	nRecovery    int
	account      string
	png          string
	force        bool
	bg           qr.Background
	now          func() time.Time
}

// enroll is the enrolment dialogue. existing is asked whether a secret is
// already enrolled; target receives the new one. Nothing is stored before
// the owner typed a code the new secret produces.
func enroll(env *Env, existing, target auth.SecretStore, o enrollOpts) error {
	if o.prompt == nil {
		o.prompt = newPrompter(context.Background(), env)
	}
	if _, err := existing.Get(auth.SecretName); err == nil {
		if !o.force {
			return failf(ExitUsage, "pass --force to replace it; this revokes the old secret and its recovery codes", "totp enroll: a totp secret is already enrolled")
		}
	} else if !errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("totp enroll: cannot tell whether a secret is already enrolled: %w", err)
	}
	// Before the owner scans anything: a running relay would keep the old
	// secret, so the new one could not be saved.
	if err := auth.CheckStateFree(o.statePath); err != nil {
		return fmt.Errorf("totp enroll: %w", err)
	}
	e, err := auth.Enroll("relay", o.account)
	if err != nil {
		return err
	}
	if err := showQR(env, e, o.bg); err != nil {
		return err
	}
	if o.png != "" {
		if err := writePNG(e, o.png); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "wrote the qr code to %s (mode 0600); delete it once scanned: it holds the secret\n", o.png)
	}
	for try := 1; ; {
		other, flip := "l", "light"
		if o.bg == qr.LightBackground {
			other, flip = "d", "dark"
		}
		line, rerr := o.prompt.ask(fmt.Sprintf("code shown by the app (or %q to redraw the qr code for a %s background): ", other, flip))
		answer := strings.TrimSpace(string(line))
		clear(line)
		switch {
		case errors.Is(rerr, errInterrupted):
			return withCode(ExitFailure, errors.New("totp enroll: interrupted; nothing was stored"))
		case errors.Is(rerr, errLineTooLong):
			env.say(kindError, "that is not a code (want the 6 digits the app shows)")
			continue
		case rerr != nil:
			return failf(ExitFailure, "run it again on a terminal and type the app's code", "totp enroll: no code entered; nothing was stored")
		case strings.EqualFold(answer, other) || strings.EqualFold(answer, flip):
			if o.bg == qr.LightBackground {
				o.bg = qr.DarkBackground
			} else {
				o.bg = qr.LightBackground
			}
			if err := showQR(env, e, o.bg); err != nil {
				return err
			}
			continue
		}
		err := e.Confirm(answer, o.now())
		if err == nil {
			break
		}
		// auth's message carries its hint inline; give it its own line.
		msg, hint, found := strings.Cut(err.Error(), " (hint: ")
		env.say(kindError, "%s", msg)
		if found {
			env.say(kindHint, "%s", strings.TrimSuffix(hint, ")"))
		}
		if !o.retryForever && try >= maxCodeTries {
			return failf(ExitFailure, "check the phone's and the server's clocks, then run it again", "totp enroll: no matching code after %d tries; nothing was stored", try)
		}
		try++
	}
	codes, err := e.Save(target, o.statePath, o.nRecovery)
	if err != nil {
		return fmt.Errorf("totp enroll: %w", err)
	}
	fmt.Fprintln(env.Stdout, "code accepted")
	if len(codes) > 0 {
		fmt.Fprintf(env.Stdout, "\nRecovery codes: each logs in once when the authenticator is lost.\nWrite them down now and keep them offline; they are not shown again.\n\n")
		for _, c := range codes {
			fmt.Fprintf(env.Stdout, "    %s\n", c)
		}
		fmt.Fprintln(env.Stdout)
	}
	return nil
}

// showQR prints the enrolment's QR code for bg, and its URI.
func showQR(env *Env, e *auth.Enrollment, bg qr.Background) error {
	code, err := qr.Render(e.URI(), bg)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Scan this with your authenticator app (or add the URI below by hand).\nIt shows the secret: make sure nobody else sees this screen.\n\n%s\n%s\n\n", code, e.URI())
	return nil
}

// writePNG writes the QR image 0600, refusing to replace anything: the
// path could be a symlink planted to make relay overwrite another file.
func writePNG(e *auth.Enrollment, path string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("totp enroll: write png: %w (hint: choose a path that does not exist yet)", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("totp enroll: write png: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	img, err := e.Image(512, 512)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		return fmt.Errorf("totp enroll: write png: %w", err)
	}
	return nil
}

func totpStatusCmd(env *Env, args []string) error {
	fs := newFlags("totp status")
	cfgFlag := fs.String("config", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	_, cfg, err := configFromFlag(*cfgFlag, env)
	if err != nil {
		return err
	}
	v, p, perr := lookup(env, secretStore(cfg, env), secrets.TOTPSecret)
	clear(v)
	where := ""
	if perr == nil {
		where = fmt.Sprintf("%s (%s)", sourceName(p.Source), p.Location)
	}
	return totpStatus(env, where, perr, auth.ConfigFrom(cfg.Auth, cfg.StateDir).StatePath, time.Now())
}

// totpStatus prints the enrolment and the persisted auth state. where is
// the secret's location, "" with probeErr set when it was not found.
func totpStatus(env *Env, where string, probeErr error, statePath string, now time.Time) error {
	st, err := auth.ReadStatus(statePath)
	if err != nil {
		return err
	}
	if probeErr != nil {
		fmt.Fprintln(env.Stdout, "totp: not enrolled")
	} else {
		fmt.Fprintf(env.Stdout, "totp: enrolled, secret in the %s\n", where)
	}
	if st.LastStep > 0 {
		at := auth.StepStart(st.LastStep).UTC()
		fmt.Fprintf(env.Stdout, "last accepted code: step %d (%s)\n", st.LastStep, at.Format(time.RFC3339))
	} else {
		fmt.Fprintln(env.Stdout, "last accepted code: none")
	}
	fmt.Fprintf(env.Stdout, "failed attempts in a row: %d\n", st.Failures)
	if st.LockedUntil.After(now) {
		fmt.Fprintf(env.Stdout, "login lockout: until %s (%s left)\n", st.LockedUntil.UTC().Format(time.RFC3339), st.LockedUntil.Sub(now).Round(time.Second))
	} else {
		fmt.Fprintln(env.Stdout, "login lockout: none")
	}
	if st.Locked {
		fmt.Fprintln(env.Stdout, "/lock: in force (log in with a fresh code to lift it)")
	} else {
		fmt.Fprintln(env.Stdout, "/lock: off")
	}
	fmt.Fprintf(env.Stdout, "recovery codes left: %d\n", st.RecoveryLeft)
	if probeErr != nil {
		if errors.Is(probeErr, secrets.ErrNotFound) {
			return failf(ExitNotSetup, "run 'relay totp enroll'", "no totp secret")
		}
		return failf(ExitNotSetup, "run 'relay totp enroll'", "%w", probeErr)
	}
	return nil
}
