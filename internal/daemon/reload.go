package daemon

import (
	"fmt"
	"strings"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/policy"
)

// restartOnly are the settings a reload cannot apply, because something
// built once at start holds them: the state directory and the audit log
// (which the sandbox also protects: a reload that moved them would make it
// protect paths the daemon does not use), the Telegram client and its
// transport, the token's source, the secret store, the owner, and the
// notify group's socket (served once from its directory, which the sandbox
// protects like the state directory). A reload that changes any of them is
// refused whole, naming them; docs/reference.md lists them. Every other key
// applies at once: the commands (formats and pickers included), limits,
// auth, and the fleet (fleet.*, hosts, groups), whose new hosts serve the
// next /on.
var restartOnly = []struct {
	key string
	get func(*policy.Config) any
}{
	{"state_dir", func(c *policy.Config) any { return c.StateDir }},
	{"telegram.api_url", func(c *policy.Config) any { return c.Telegram.APIURL }},
	{"telegram.mode", func(c *policy.Config) any { return c.Telegram.Mode }},
	{"telegram.poll_timeout", func(c *policy.Config) any { return c.Telegram.PollTimeout }},
	{"telegram.max_document_bytes", func(c *policy.Config) any { return c.Telegram.MaxDocumentBytes }},
	{"telegram.token_file", func(c *policy.Config) any { return c.Telegram.TokenFile }},
	{"telegram.protect_content", func(c *policy.Config) any { return c.Telegram.ProtectContent }},
	{"telegram.webhook", func(c *policy.Config) any { return c.Telegram.Webhook }},
	{"auth.owner_id", func(c *policy.Config) any { return c.Auth.OwnerID }},
	{"audit.dir", func(c *policy.Config) any { return c.Audit.Dir }},
	{"audit.rotate_bytes", func(c *policy.Config) any { return c.Audit.RotateBytes }},
	{"secrets.keyring", func(c *policy.Config) any { return c.Secrets.NoKeyring }},
	{"notify.group", func(c *policy.Config) any { return [2]any{c.Notify.Group, c.Notify.GID} }},
	{"notify.dir", func(c *policy.Config) any { return c.Notify.Dir }},
}

// restartError refuses a reload that changes restart-only keys. Its
// message names keys of relay's own config, safe to show.
type restartError struct{ keys []string }

func (e *restartError) Error() string {
	return fmt.Sprintf("%s changed, which needs a restart (systemctl restart relay); nothing was reloaded", strings.Join(e.keys, ", "))
}

func (e *restartError) SafeToShow() string { return e.Error() }

// restartKeys names the restart-only settings that differ between the
// running config and next.
func restartKeys(running, next *policy.Config) []string {
	var keys []string
	for _, k := range restartOnly {
		if k.get(running) != k.get(next) {
			keys = append(keys, k.key)
		}
	}
	return keys
}

// reload loads the config again and applies all of it at once, or none of
// it: an invalid config, or one that changes a setting that needs a
// restart, keeps the old one whole. The owner is told either way. A
// successful reload voids every pending confirmation: a Run button must
// never run what the new policy removed or changed.
func (d *Daemon) reload() {
	if d.o.Reload == nil {
		return
	}
	cfg, err := d.o.Reload()
	if err == nil {
		if keys := restartKeys(d.fixed, cfg); len(keys) > 0 {
			err = &restartError{keys: keys}
		}
	}
	var ac auth.Config
	if err == nil {
		ac = d.authConfig(cfg)
		if cerr := d.auth.CheckConfig(ac); cerr != nil {
			err = cerr
		}
	}
	var nextFleet *fleetRef
	swap := false
	if err == nil && fleetChanged(d.config(), cfg) {
		// Built before anything changes: a fleet that cannot be built
		// refuses the reload whole.
		swap = true
		nextFleet, err = d.buildFleet(cfg)
	}
	if err != nil {
		d.o.Log.Error().Err(err).Msg("config reload refused; keeping the old config")
		_ = d.record(audit.Record{Type: audit.KindConfig, Outcome: audit.OutcomeFailed, Reason: err.Error()})
		d.notifyOwner(chatfmt.Say("⚠️ config reload failed, keeping the old one: %s", chatfmt.Refusal(err, "see the relay log")))
		return
	}
	if rerr := d.record(audit.Record{Type: audit.KindConfig, Outcome: audit.OutcomeOK, Detail: "reloaded " + cfgName(cfg)}); rerr != nil {
		d.notifyOwner(chatfmt.Say("⚠️ config not reloaded: audit log unavailable"))
		return
	}
	// The swap happens between two updates, never during one.
	d.serial.Lock()
	d.cfg.Store(cfg)
	if err := d.auth.Reconfigure(ac); err != nil {
		// CheckConfig accepted it a moment ago; nothing else changes it.
		d.o.Log.Error().Err(err).Msg("auth settings not reloaded")
	}
	d.runner.SetLimit(cfg.Limits.MaxConcurrent)
	voided := d.auth.VoidConfirms()
	if swap {
		d.swapFleet(nextFleet)
	}
	d.serial.Unlock()
	d.resetCheckpoints(cfg)
	d.setMenu(cfg)
	d.warnMenu(cfg)
	d.o.Log.Info().Int("commands", len(cfg.Commands)).Int("voided", voided).Msg("config reloaded")
	msg := chatfmt.Say("config reloaded: %d commands", chatfmt.Num(len(cfg.Commands)))
	if voided > 0 {
		msg = msg.Join("; ", chatfmt.Say("%d pending confirmations voided", chatfmt.Num(voided)))
	}
	d.notifyOwner(msg)
}
