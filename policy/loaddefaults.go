package policy

import (
	"net"
	"net/url"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// setDefault assigns def to *v when the key was absent.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// defaults fills in every default and runs the checks that need the whole
// file (limits before commands, paths on this host).
func (d *decoder) defaults(c *Config, s *schema, getenv func(string) string, needOwner bool) {
	at := s.node
	present := func(k string) bool { _, ok := s.at[k]; return ok }

	setDefault(&c.CommandUser, DefaultCommandUser)
	if u := c.CommandUser; u == "root" || u == "nobody" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "65534:") {
		d.errAt(at("command_user"), "create a dedicated user: useradd --system --no-create-home --shell /usr/sbin/nologin relay-cmd", "command_user: %s is shared or privileged; commands need an account of their own", show(u))
	}
	d.notify(c, at, present)

	paths := DefaultPaths(getenv)
	if !present("state_dir") {
		c.StateDir = paths.StateDir
	}
	if !present("audit.dir") {
		c.Audit.Dir = paths.AuditDir
	}
	d.absPath(at("state_dir"), "state_dir", c.StateDir, "set state_dir, or $STATE_DIRECTORY, $XDG_STATE_HOME or $HOME")
	d.absPath(at("audit.dir"), "audit.dir", c.Audit.Dir, "set audit.dir, or $LOGS_DIRECTORY, $XDG_STATE_HOME or $HOME")
	// The group socket's directory is opened to the group: it must not be,
	// or be inside, a directory that holds the relay's secrets or its log.
	if n := c.Notify; n.Group != "" && filepath.IsAbs(n.Dir) {
		for _, p := range []struct{ key, dir string }{{"state_dir", c.StateDir}, {"audit.dir", c.Audit.Dir}} {
			if filepath.IsAbs(p.dir) && within(filepath.Clean(n.Dir), filepath.Clean(p.dir)) {
				d.errAt(at("notify.dir"), "keep it apart, e.g. /run/relay-notify", "notify.dir %s is inside %s %s, which only the relay may enter", show(n.Dir), p.key, show(p.dir))
			}
		}
	}

	t := &c.Telegram
	setDefault(&t.APIURL, "https://api.telegram.org")
	setDefault(&t.Mode, "polling")
	setDefault(&t.PollTimeout, 25*time.Second)
	setDefault(&t.MaxDocumentBytes, 50<<20)
	setDefault(&t.Webhook.MaxBodyBytes, 1<<20)
	d.apiURL(at("telegram.api_url"), t.APIURL)
	switch t.Mode {
	case "polling":
	case "webhook":
		if t.Webhook.Listen == "" {
			d.errAt(at("telegram.mode"), `add telegram.webhook.listen: "127.0.0.1:8443"`, "telegram.webhook.listen is required in webhook mode")
		}
		if t.Webhook.URL == "" {
			d.errAt(at("telegram.mode"), `add telegram.webhook.url: "https://relay.example.org"`, "telegram.webhook.url is required in webhook mode")
		}
	default:
		d.errAt(at("telegram.mode"), didYouMean(t.Mode, []string{"polling", "webhook"}), "telegram.mode: want polling or webhook, got %s", show(t.Mode))
	}
	if w := t.Webhook.Listen; w != "" {
		if _, port, err := net.SplitHostPort(w); err != nil || port == "" {
			d.errAt(at("telegram.webhook.listen"), `use host:port, e.g. "127.0.0.1:8443"`, "telegram.webhook.listen: invalid address %s", show(w))
		}
	}
	if u := t.Webhook.URL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "https" || pu.Host == "" || pu.User != nil {
			d.errAt(at("telegram.webhook.url"), "Telegram delivers webhooks only to https URLs", "telegram.webhook.url: want an https URL, got %s", show(u))
		}
	}
	if (t.Webhook.TLSCert == "") != (t.Webhook.TLSKey == "") {
		d.errAt(at("telegram.webhook"), "set both tls_cert and tls_key, or neither", "telegram.webhook: tls_cert and tls_key go together")
	}
	d.existingFile(at("telegram.webhook.tls_cert"), "telegram.webhook.tls_cert", t.Webhook.TLSCert)
	d.existingFile(at("telegram.webhook.tls_key"), "telegram.webhook.tls_key", t.Webhook.TLSKey)
	if t.TokenFile != "" {
		d.absPath(at("telegram.token_file"), "telegram.token_file", t.TokenFile, "")
	}
	d.positive(at("telegram.poll_timeout"), "telegram.poll_timeout", int64(t.PollTimeout))
	if t.PollTimeout > 10*time.Minute {
		d.errAt(at("telegram.poll_timeout"), "25s is a good value", "telegram.poll_timeout: %s is longer than 10m", t.PollTimeout)
	}
	d.positive(at("telegram.max_document_bytes"), "telegram.max_document_bytes", t.MaxDocumentBytes)
	d.positive(at("telegram.webhook.max_body_bytes"), "telegram.webhook.max_body_bytes", t.Webhook.MaxBodyBytes)

	a := &c.Auth
	// A member's file may leave the owner out: its owner is in the hub's
	// chat, and relay run refuses a file without one.
	if needOwner && a.OwnerID <= 0 && !(c.Member != nil && !present("auth.owner_id")) {
		if present("auth.owner_id") {
			d.errAt(at("auth.owner_id"), "it is a positive number; send /start to the bot to learn it", "auth.owner_id: must be positive, got %d", a.OwnerID)
		} else {
			d.errAt(at("auth"), "add auth: {owner_id: 123456789}, your numeric Telegram user ID", "auth.owner_id is required")
		}
	}
	setDefault(&a.MaxMessageAge, 60*time.Second)
	setDefault(&a.SessionIdle, 15*time.Minute)
	setDefault(&a.SessionMax, 12*time.Hour)
	setDefault(&a.LoginAttempts, 3)
	setDefault(&a.LoginWindow, 30*time.Second)
	setDefault(&a.LockoutBase, time.Minute)
	setDefault(&a.LockoutMax, 24*time.Hour)
	if !present("auth.recovery_codes") {
		a.RecoveryCodes = 10
	}
	for _, f := range []struct {
		k string
		v time.Duration
	}{{"max_message_age", a.MaxMessageAge}, {"session_idle", a.SessionIdle}, {"session_max", a.SessionMax}, {"login_window", a.LoginWindow}, {"lockout", a.LockoutBase}, {"lockout_max", a.LockoutMax}} {
		d.positive(at("auth."+f.k), "auth."+f.k, int64(f.v))
	}
	d.positive(at("auth.login_attempts"), "auth.login_attempts", int64(a.LoginAttempts))
	if a.SessionIdle > a.SessionMax {
		d.errAt(at("auth.session_idle"), "", "auth.session_idle %s is longer than auth.session_max %s", a.SessionIdle, a.SessionMax)
	}
	if a.LockoutBase > a.LockoutMax {
		d.errAt(at("auth.lockout"), "", "auth.lockout %s is longer than auth.lockout_max %s", a.LockoutBase, a.LockoutMax)
	}
	if a.RecoveryCodes > 100 {
		d.errAt(at("auth.recovery_codes"), "", "auth.recovery_codes: %d is more than 100", a.RecoveryCodes)
	}

	setDefault(&c.Audit.RotateBytes, 64<<20)
	if !present("audit.checkpoint_interval") {
		c.Audit.CheckpointInterval = time.Hour
	}
	if c.Audit.RotateBytes < 64<<10 {
		d.errAt(at("audit.rotate_bytes"), "", "audit.rotate_bytes: %d is less than 64KiB", c.Audit.RotateBytes)
	}

	l := &c.Limits
	setDefault(&l.MaxConcurrent, 4)
	setDefault(&l.DefaultTimeout, 30*time.Second)
	setDefault(&l.MaxTimeout, 10*time.Minute)
	setDefault(&l.DefaultMaxOutput, 16<<20)
	setDefault(&l.MaxOutput, 1<<30)
	d.positive(at("limits.max_concurrent"), "limits.max_concurrent", int64(l.MaxConcurrent))
	d.positive(at("limits.default_timeout"), "limits.default_timeout", int64(l.DefaultTimeout))
	d.positive(at("limits.max_timeout"), "limits.max_timeout", int64(l.MaxTimeout))
	d.positive(at("limits.default_max_output"), "limits.default_max_output", l.DefaultMaxOutput)
	d.positive(at("limits.max_output"), "limits.max_output", l.MaxOutput)
	if l.DefaultTimeout > l.MaxTimeout {
		d.errAt(at("limits.default_timeout"), "", "limits.default_timeout %s is longer than limits.max_timeout %s", l.DefaultTimeout, l.MaxTimeout)
	}
	if l.DefaultMaxOutput > l.MaxOutput {
		d.errAt(at("limits.default_max_output"), "", "limits.default_max_output %d is more than limits.max_output %d", l.DefaultMaxOutput, l.MaxOutput)
	}

	d.fleetDefaults(c, s)

	c.Commands = c.Commands[:0]
	for _, cs := range s.commands {
		d.commandDefaults(cs, l)
		if !cs.drop {
			c.Commands = append(c.Commands, cs.cmd)
		}
	}
}

// notify resolves notify.group on this host and checks that no command
// could carry the group: a command running with it could send
// notifications in the group's name.
func (d *decoder) notify(c *Config, at func(string) *yaml.Node, present func(string) bool) {
	n := &c.Notify
	n.GID = -1
	if n.Dir == "" {
		n.Dir = DefaultNotifyDir
	} else if d.absPath(at("notify.dir"), "notify.dir", n.Dir, "") {
		n.Dir = filepath.Clean(n.Dir)
	}
	if !present("notify.group") {
		return
	}
	g := n.Group
	var gid int
	if digits(g) {
		id, err := strconv.Atoi(g)
		if err != nil {
			d.errAt(at("notify.group"), "", "notify.group: %s is not a group id", show(g))
			return
		}
		gid = id
	} else if grp, err := user.LookupGroup(g); err == nil {
		gid, _ = strconv.Atoi(grp.Gid)
	} else {
		d.errAt(at("notify.group"), "name the group the sending service runs as, or create one: groupadd --system relay-notify",
			"notify.group: no group %s on this host", show(g))
		return
	}
	if gid == 0 {
		d.errAt(at("notify.group"), "create a group for the senders: groupadd --system relay-notify", "notify.group: the root group is shared by system processes; name a group of its own")
		return
	}
	n.GID = gid
	cmdGID := -1
	if _, g, ok := strings.Cut(c.CommandUser, ":"); ok && digits(g) {
		cmdGID, _ = strconv.Atoi(g)
	} else if u, err := user.Lookup(c.CommandUser); err == nil {
		cmdGID, _ = strconv.Atoi(u.Gid)
	}
	if cmdGID == gid {
		d.errAt(at("notify.group"), "give the command user a group of its own", "notify.group: %s is command_user's group, so every command could notify in its name", show(g))
	}
}
