package cli

import (
	"bytes"
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
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

// setupConfigPath is where first-run setup writes the config when no
// --config names one.
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
	return "", failf(ExitNotSetup, "pass --config FILE", "no place for a config: HOME is unset")
}

// setupOpts are first-run setup's inputs besides the terminal.
type setupOpts struct {
	configPath string // where the config goes
	apiURL     string // --api-url; "" asks
	now        func() time.Time
}

// setup walks the owner through first-run configuration on a terminal and
// writes the config last, so that a config file means a finished setup:
// an interrupted setup leaves no config, and the next run picks up at the
// first missing piece (a stored token, an enrolled TOTP secret and a
// started audit log are kept and not asked for again). Nothing is stored
// before it is checked: the token only after getMe answered for it, the
// TOTP secret only after the owner typed a code it produces. Every secret
// goes to the keyring, or to a 0600 file where there is none, and the end
// says which.
func setup(ctx context.Context, env *Env, o setupOpts) error {
	if o.now == nil {
		o.now = time.Now
	}
	paths := policy.DefaultPaths(env.Getenv)
	if paths.StateDir == "" {
		return failf(ExitNotSetup, "set HOME or XDG_STATE_HOME, or pass --config FILE with a config that sets state_dir", "no state directory for first-run setup")
	}
	w := &wizard{
		env:   env,
		ctx:   ctx,
		p:     newPrompter(ctx, env),
		o:     o,
		paths: paths,
		// The store relay run will open from the config setup writes
		// (state_dir, no token_file, the keyring on).
		store: secretStore(&policy.Config{StateDir: paths.StateDir}, env),
	}
	w.keep = newKeeper(env, w.store, false)
	return w.run()
}

// wizard is one run of first-run setup.
type wizard struct {
	env   *Env
	ctx   context.Context
	p     *prompter
	o     setupOpts
	paths policy.Paths
	store *secrets.Store
	keep  *keeper

	apiURL   string
	bot      string // the bot's @username, once getMe answered
	owner    int64
	noRing   bool              // this host has no keyring: say so in the config
	where    map[string]string // piece -> where it is, for the summary
	written  []string          // pieces written by this run, in order
	awaiting []string          // pieces not written yet, in order
}

// The pieces of a set-up, in the order setup writes them.
const (
	pieceToken  = "the bot token"
	pieceTOTP   = "the TOTP secret"
	pieceAudit  = "the audit log and its key K0"
	pieceConfig = "the config"
)

func (w *wizard) run() error {
	w.where = map[string]string{}
	w.awaiting = []string{pieceToken, pieceTOTP, pieceAudit, pieceConfig}
	fmt.Fprintf(w.env.Stderr, "No config at %s: first-run setup.\nCtrl-C stops it at any prompt; running relay again continues where it stopped.\n\n", w.o.configPath)

	// A draft of the config, parsed now, so that every step uses exactly
	// the paths and settings the written config will have.
	draft, err := policy.Parse(w.o.configPath, w.configText(1))
	if err != nil {
		return fmt.Errorf("first-run setup: the built-in config does not load here: %w", err)
	}
	steps := []func(*policy.Config) error{w.token, w.ownerID, w.totp, w.audit, w.writeConfig}
	for _, step := range steps {
		if err := step(draft); err != nil {
			if w.ctx.Err() != nil || errors.Is(err, errInterrupted) {
				return w.stopped("setup interrupted")
			}
			if errors.Is(err, errNoInput) {
				return w.stopped("setup stopped: no more input")
			}
			return err
		}
	}
	w.summary()
	return nil
}

// errNoInput: standard input ended in the middle of setup.
var errNoInput = errors.New("no more input")

// answer turns a prompt's read error into the wizard's: the interrupt, the
// end of input, or nil for an answer (an over-long line counts as one the
// caller will find malformed).
func answerErr(err error) error {
	switch {
	case err == nil, errors.Is(err, errLineTooLong):
		return nil
	case errors.Is(err, errInterrupted):
		return errInterrupted
	}
	return errNoInput
}

// stopped is the error for a setup that did not finish: what it wrote,
// what it did not, and how to go on.
func (w *wizard) stopped(why string) error {
	msg := why
	if len(w.written) > 0 {
		msg += "; written: " + strings.Join(w.written, ", ")
	} else {
		msg += "; nothing was written by this run"
	}
	if len(w.awaiting) > 0 {
		msg += "; not written: " + strings.Join(w.awaiting, ", ")
	}
	return failf(ExitNotSetup, fmt.Sprintf("run 'relay run --config %s' on a terminal to continue from there", w.o.configPath), "%s", msg)
}

// done moves piece from awaiting to written, or only out of awaiting when
// an earlier run wrote it.
func (w *wizard) done(piece, where string, now bool) {
	w.where[piece] = where
	for i, p := range w.awaiting {
		if p == piece {
			w.awaiting = append(w.awaiting[:i], w.awaiting[i+1:]...)
			break
		}
	}
	if now {
		w.written = append(w.written, piece+" ("+where+")")
	}
}

func (w *wizard) say(format string, a ...any) { fmt.Fprintf(w.env.Stderr, format+"\n", a...) }

// noteAbsent remembers that this host has no keyring, from a lookup's
// skipped sources.
func (w *wizard) noteAbsent(p secrets.Probe) {
	for _, s := range p.Skipped {
		if secrets.Absent(s.Err) {
			w.noRing = true
		}
	}
}

// token settles the Bot API URL and the token: an existing token is
// checked, a new one is asked for until getMe accepts it, and only then
// stored.
func (w *wizard) token(*policy.Config) error {
	w.say("1. Telegram")
	if err := w.askAPIURL(); err != nil {
		return err
	}
	v, p, err := lookup(w.env, w.store, secrets.BotToken)
	w.noteAbsent(p)
	defer clear(v)
	if err == nil {
		w.say("   bot token: already stored in the %s (%s)", sourceName(p.Source), p.Location)
		ok, err := w.getMe(v)
		if err != nil {
			return err
		}
		if ok {
			w.done(pieceToken, fmt.Sprintf("%s: %s", sourceName(p.Source), p.Location), false)
			return nil
		}
		if p.Source == secrets.SourceCredential || p.Source == secrets.SourceEnv {
			return failf(ExitNotSetup, "replace it there ("+p.Location+"), then run relay again", "telegram refuses the bot token from the %s", sourceName(p.Source))
		}
		w.say("   paste a new token; it replaces the stored one once telegram accepts it")
	} else if !errors.Is(err, secrets.ErrNotFound) {
		return err
	} else {
		w.say("   Create a bot with @BotFather in Telegram (/newbot) and paste the token it sends.")
	}
	for {
		b, rerr := w.p.askHidden("   bot token (input is hidden): ")
		if err := answerErr(rerr); err != nil {
			clear(b)
			return err
		}
		t := bytes.TrimSpace(b)
		if checkToken(t) != nil {
			clear(b)
			w.env.say(kindError, "that is not a bot token (want the form 123456789:AAH... that @BotFather sends: digits, a colon, then 30-64 letters, digits, '_' or '-'); try again")
			continue
		}
		ok, err := w.getMe(t)
		if err != nil {
			clear(b)
			return err
		}
		if !ok {
			clear(b)
			continue
		}
		err = w.keep.Set(secrets.BotToken, t)
		clear(b)
		if err != nil {
			return fmt.Errorf("store the bot token: %w", err)
		}
		if w.keep.kept[secrets.BotToken].source == secrets.SourceFile {
			w.noRing = true
		}
		where := w.keep.where(secrets.BotToken)
		w.say("   stored the token in %s", where)
		w.done(pieceToken, where, true)
		return nil
	}
}

// askAPIURL takes --api-url, or asks with the public Bot API as the
// default, and re-asks until the URL is one the config loader accepts.
func (w *wizard) askAPIURL() error {
	if w.o.apiURL != "" {
		if err := policy.CheckAPIURL(w.o.apiURL); err != nil {
			return withCode(ExitUsage, fmt.Errorf("--api-url: %w", err))
		}
		w.apiURL = w.o.apiURL
		w.say("   Bot API: %s (--api-url)", w.apiURL)
		return nil
	}
	def := w.apiURL
	if def == "" {
		def = telegram.DefaultAPIURL
	}
	for {
		b, rerr := w.p.ask(fmt.Sprintf("   Bot API URL, Enter for %s: ", def))
		if err := answerErr(rerr); err != nil {
			return err
		}
		u := strings.TrimSpace(string(b))
		if u == "" {
			u = def
		}
		if err := policy.CheckAPIURL(u); err != nil {
			w.env.say(kindError, "%v; try again", err)
			continue
		}
		w.apiURL = u
		return nil
	}
}

// getMe asks the Bot API who the token belongs to. It reports false, after
// saying why, when telegram refuses the token; when telegram cannot be
// reached it asks for the API URL again and retries with the same token.
func (w *wizard) getMe(token []byte) (bool, error) {
	for {
		tg, err := telegram.New(telegram.Options{Token: string(token), APIURL: w.apiURL, MaxRetries: -1})
		if err != nil {
			return false, err
		}
		ctx, cancel := context.WithTimeout(w.ctx, 15*time.Second)
		name, err := tg.GetMe(ctx)
		cancel()
		switch {
		case w.ctx.Err() != nil:
			return false, errInterrupted
		case err == nil:
			w.bot = name
			w.say("   connected as @%s", name)
			return true, nil
		case errors.Is(err, telegram.ErrUnauthorized):
			w.env.say(kindError, "telegram refused this token (check it with @BotFather); nothing was stored; try again")
			return false, nil
		}
		w.env.say(kindError, "%v", err)
		w.say("   %s could not be reached with this token; check the URL, or press Enter to try again", w.apiURL)
		if err := w.askAPIURL(); err != nil {
			return false, err
		}
	}
}

func (w *wizard) ownerID(*policy.Config) error {
	w.say("\n2. Your numeric Telegram user ID (not your @username): message @userinfobot to see it.")
	for {
		b, rerr := w.p.ask("   user ID: ")
		if err := answerErr(rerr); err != nil {
			return err
		}
		id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && id > 0 {
			w.owner = id
			return nil
		}
		w.env.say(kindError, "that is not a positive number; try again")
	}
}

func (w *wizard) totp(draft *policy.Config) error {
	w.say("\n3. TOTP for /login")
	v, p, err := lookup(w.env, w.store, secrets.TOTPSecret)
	clear(v)
	w.noteAbsent(p)
	if err == nil {
		w.say("   already enrolled: the secret is in the %s (%s)", sourceName(p.Source), p.Location)
		w.done(pieceTOTP, fmt.Sprintf("%s: %s", sourceName(p.Source), p.Location), false)
		return nil
	}
	if !errors.Is(err, secrets.ErrNotFound) {
		return err
	}
	if err := os.MkdirAll(draft.StateDir, 0o700); err != nil {
		return err
	}
	o := enrollOpts{
		prompt:       w.p,
		retryForever: true,
		statePath:    auth.ConfigFrom(draft.Auth, draft.StateDir).StatePath,
		nRecovery:    draft.Auth.RecoveryCodes,
		account:      accountName(),
		now:          w.o.now,
	}
	if err := enroll(w.env, w.keep, w.keep, o); err != nil {
		return err
	}
	if w.keep.kept[secrets.TOTPSecret].source == secrets.SourceFile {
		w.noRing = true
	}
	where := w.keep.where(secrets.TOTPSecret)
	w.say("   stored the TOTP secret in %s", where)
	w.done(pieceTOTP, where, true)
	return nil
}

func (w *wizard) audit(draft *policy.Config) error {
	w.say("\n4. Audit log")
	dir := draft.Audit.Dir
	if len(audit.Files(dir)) > 0 {
		v, p, err := lookup(w.env, w.store, secrets.AuditKey)
		clear(v)
		where := "K0 is not on this host"
		if err == nil {
			where = fmt.Sprintf("K0 in the %s (%s)", sourceName(p.Source), p.Location)
		}
		w.say("   already started in %s (%s)", dir, where)
		w.done(pieceAudit, dir+"; "+where, false)
		return nil
	}
	// No records yet: a key state or stored key from an init that was cut
	// short holds nothing worth keeping.
	k0, err := audit.InitWith(dir, w.keep, audit.InitOptions{Force: true})
	if err != nil {
		return fmt.Errorf("audit init: %w", err)
	}
	fmt.Fprintf(w.env.Stderr, "   Audit key K0, shown once. Keep it OFF this machine (a password manager): it proves\n   the log untouched, even after someone takes the host.\n\n       %x\n\n", k0)
	clear(k0)
	if w.keep.kept[secrets.AuditKey].source == secrets.SourceFile {
		w.noRing = true
	}
	where := dir + "; K0 in " + w.keep.where(secrets.AuditKey)
	w.done(pieceAudit, where, true)
	return nil
}

func (w *wizard) writeConfig(*policy.Config) error {
	text := w.configText(w.owner)
	if _, err := policy.Parse(w.o.configPath, text); err != nil {
		return fmt.Errorf("first-run setup: the config it would write does not load: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(w.o.configPath), 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(w.o.configPath, text, 0o600); err != nil {
		return err
	}
	w.done(pieceConfig, w.o.configPath, true)
	return nil
}

// configText is the config setup writes: the built-in read-only policy
// with the owner, the API URL and the paths the secrets went to.
func (w *wizard) configText(owner int64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by relay's first-run setup on %s; edit freely, then\n# check with: relay policy check %s\n", w.o.now().Format(time.DateOnly), w.o.configPath)
	fmt.Fprintf(&b, "state_dir: %s\n", strconv.Quote(w.paths.StateDir))
	// The default is left out: a config that names no Bot API is one the
	// playground can run as is.
	if w.apiURL != "" && w.apiURL != telegram.DefaultAPIURL {
		fmt.Fprintf(&b, "telegram:\n  api_url: %s\n", strconv.Quote(w.apiURL))
	}
	fmt.Fprintf(&b, "auth:\n  owner_id: %d\naudit:\n  dir: %s\n", owner, strconv.Quote(w.paths.AuditDir))
	if w.noRing {
		b.WriteString("secrets:\n  # this host had no os keyring at set-up: the secrets are files in\n  # state_dir/secrets, and relay does not look for a keyring\n  keyring: false\n")
	}
	b.WriteString("\n")
	b.Write(policy.DefaultYAML())
	return []byte(b.String())
}

// summary says where every piece is, then hands over to relay run.
func (w *wizard) summary() {
	w.say("\nSetup done. Where everything is:")
	for _, piece := range []string{pieceToken, pieceTOTP, pieceAudit, pieceConfig} {
		w.say("   %-30s %s", piece, w.where[piece])
	}
	bot := "your bot"
	if w.bot != "" {
		bot = "@" + w.bot
	}
	w.say("\nStarting relay. Send /login CODE to %s.", bot)
}
