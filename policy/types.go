package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/relaychat/relay/internal/render"
)

// Config is one relay configuration file: the relay's settings and the
// command allowlist. A *Config returned by Load is fully validated and
// defaulted; code that receives one never needs to re-check it.
type Config struct {
	// Source is the file the config was loaded from ("" for the embedded
	// default), used to prefix messages.
	Source string

	// StateDir holds persistent private state (auth state, audit key state,
	// spool files). Key: state_dir. Absolute; created 0700 by the daemon.
	StateDir string

	// CommandUser is the account sandboxed commands run as when the
	// relay runs as root (command_user): a name or uid:gid, default
	// relay-cmd, never root or nobody. A relay that is not root runs
	// commands as itself and ignores it.
	CommandUser string

	Telegram Telegram
	Auth     Auth
	Audit    Audit
	Limits   Limits
	Secrets  Secrets
	Notify   Notify

	// Commands is the allowlist, in file order. Names are unique.
	Commands []*Command

	// Member is set by a member: section: the file is a fleet member's,
	// served to a hub by relay serve-ssh; nil otherwise.
	Member *Member
	// Fleet, Hosts and Groups are a hub's: how it reaches its members
	// (fleet), the members (hosts, in file order) and named sets of them
	// (groups). Names are unique across hosts and groups.
	Fleet  Fleet
	Hosts  []*Host
	Groups []*Group
}

// Telegram holds the transport settings. Key: telegram.
type Telegram struct {
	// APIURL is the Bot API base URL (api_url), default
	// "https://api.telegram.org". A local Bot API server or a test fake.
	APIURL string
	// Mode is "polling" (default) or "webhook" (mode).
	Mode string
	// PollTimeout is the getUpdates long-poll timeout (poll_timeout),
	// default 25s; the HTTP client timeout is derived from it.
	PollTimeout time.Duration
	// MaxDocumentBytes caps an uploaded document (max_document_bytes),
	// default 50 MiB, the cloud Bot API's limit.
	MaxDocumentBytes int64
	// TokenFile is an optional 0600 file holding the bot token
	// (token_file), the last source tried.
	TokenFile string
	// ProtectContent sends every message and document with Telegram's
	// protect_content (protect_content, default false): the owner's apps
	// will not forward or save them. It is a deterrent, not a control:
	// a screenshot or another client still copies them.
	ProtectContent bool
	Webhook        Webhook
}

// Webhook holds webhook-mode settings. Key: telegram.webhook.
type Webhook struct {
	Listen       string // listen, e.g. "127.0.0.1:8443"; required in webhook mode
	URL          string // url, public https base URL registered with setWebhook
	TLSCert      string // tls_cert, optional; with tls_key serves TLS itself
	TLSKey       string // tls_key
	MaxBodyBytes int64  // max_body_bytes, default 1 MiB
}

// Auth holds owner-authentication settings. Key: auth.
type Auth struct {
	// OwnerID is the owner's numeric Telegram user ID (owner_id). Required.
	OwnerID int64
	// MaxMessageAge: older messages are never executed (max_message_age,
	// default 60s).
	MaxMessageAge time.Duration
	SessionIdle   time.Duration // session_idle, default 15m
	SessionMax    time.Duration // session_max, default 12h
	LoginAttempts int           // login_attempts per LoginWindow, default 3
	LoginWindow   time.Duration // login_window, default 30s
	LockoutBase   time.Duration // lockout, default 1m, doubles per further failure
	LockoutMax    time.Duration // lockout_max, default 24h
	RecoveryCodes int           // recovery_codes issued at enrolment, default 10
}

// Secrets says where relay looks for its secrets. Key: secrets.
type Secrets struct {
	// NoKeyring is set by "keyring: false": the OS keyring (Secret Service)
	// is never asked, so a headless host gets no keyring messages and no
	// D-Bus round trip. The zero value asks it, as the default does.
	NoKeyring bool
}

// Notify lets one local group hand notifications to the running relay
// through a socket of its own. Key: notify. Off unless Group is set.
type Notify struct {
	// Group is the group whose members may notify (group), as written: a
	// name or a numeric gid. It marks every such notification as its
	// sender. "" turns the feature off.
	Group string
	// GID is Group resolved on this host at load; -1 when Group is "".
	GID int
	// Dir holds the group's socket, notify.sock (dir, default
	// DefaultNotifyDir). The relay serves it only while the directory is
	// owned by the relay's user, has the group, and is closed to others
	// (mode 0750 or stricter): see SECURITY.md.
	Dir string
}

// DefaultNotifyDir is notify.dir's default.
const DefaultNotifyDir = "/run/relay-notify"

// Audit holds audit-log settings. Key: audit.
type Audit struct {
	Dir                string        // dir, absolute; 0700
	RotateBytes        int64         // rotate_bytes, default 64 MiB
	CheckpointInterval time.Duration // checkpoint_interval, default 1h; 0 = only at shutdown
}

// Limits holds global execution limits. Key: limits.
type Limits struct {
	MaxConcurrent    int           // max_concurrent jobs overall, default 4
	DefaultTimeout   time.Duration // default_timeout, default 30s
	MaxTimeout       time.Duration // max_timeout, default 10m; no command may exceed it
	DefaultMaxOutput int64         // default_max_output, default 16 MiB
	MaxOutput        int64         // max_output, default 1 GiB; no command may exceed it
}

// Command is one allowlisted command. Key: commands.<name>.
type Command struct {
	Name        string // 1-32 of [a-z0-9_]
	Description string // at most 256 characters
	// Argv is the template. Argv[0] is an absolute path to an existing
	// executable and never contains a placeholder.
	Argv        []string
	Params      []*Param // in declared (= positional) order
	Timeout     time.Duration
	Workdir     string            // absolute, exists
	Env         map[string]string // added to the fixed PATH and LANG
	MaxOutput   int64
	Concurrency int // per-command concurrent jobs, default 1
	Confirm     bool
	Reauth      bool
	// Hub is false for "hub: false": relay serve-ssh refuses the command
	// to a hub, and does not offer it. Default true.
	Hub     bool
	Sandbox Sandbox
	// Format says how the output is shown (format); nil shows it as it is.
	Format *Format

	// Line is where the command is defined, for messages.
	Line int

	// tmpl is the compiled argv template, built by Load and only read
	// afterwards; nil for a Command assembled in code (Bind compiles it).
	tmpl *template
}

// ParamType names a parameter type.
type ParamType string

const (
	TypeEnum   ParamType = "enum"
	TypeInt    ParamType = "int"
	TypeString ParamType = "string"
	TypePath   ParamType = "path"
)

// Param is one typed parameter. Key: commands.<name>.params[i].
type Param struct {
	Name        string // [a-z][a-z0-9_]*, used as {name} in argv
	Type        ParamType
	Description string
	Values      []string // enum: the allowed values
	Min, Max    int64    // int: inclusive bounds (both required)
	Pattern     string   // string: required, anchored (^...$) RE2
	MaxLen      int      // string: required maximum length in bytes
	Root        string   // path: required; the resolved value stays under it
	Optional    bool
	Default     string // used when Optional and absent; validated at load
	HasDefault  bool
	AllowDash   bool // allow_dash: a value may begin with '-'
	// FoldCase makes an enum match its values (and aliases) whatever
	// their case (fold_case, enum only): "On" binds "on".
	FoldCase bool
	// Aliases are other words for an enum's values (aliases, enum only),
	// keyed by the value: {"on": ["an", "ein"]}. An alias binds to its
	// value; no alias equals a value or another alias (with fold_case,
	// whatever the case).
	Aliases map[string][]string
	// Choices are what a picker offers for this parameter (choices), in
	// order; each binds as if typed. Without them an enum offers its
	// values and an int with at most MaxIntChoices values its range.
	Choices []Choice
}

// Choice is one button of a parameter picker: the Value it types and the
// Label shown (the value itself unless the policy names one).
type Choice struct {
	Value string
	Label string
}

// Format is how a command's output is shown. Key: commands.<name>.format.
type Format struct {
	// JQ is a jq expression over the output (jq), checked and compiled at
	// load; see internal/render for what it may use and its bounds.
	JQ string
	// Text makes the output one string for JQ (input: text) instead of
	// a stream of JSON values (input: json, the default).
	Text bool
	// Table lays the results out as an aligned table (table: true, or
	// table: [columns]).
	Table bool
	// Columns are the table's columns (table: [a, b]); nil takes every
	// key of the rows.
	Columns []string

	prog *render.Program // compiled by Load
}

// Sandbox is a command's sandbox profile. Key: commands.<name>.sandbox.
// Absent means the secure default profile; "sandbox: none" sets Disabled.
type Sandbox struct {
	Disabled bool
	// Read lists extra read-only paths, beyond /usr, /lib*, /bin, /sbin
	// and /etc, bound into the command's view (read).
	Read []string
	// Write lists read-write directories (or device nodes) bound into
	// the view (write). /tmp, /var/tmp, /run and /dev/shm are always
	// private and writable.
	Write []string
	// Sockets lists pathname unix sockets bound into the view (sockets);
	// no other host socket exists for the command.
	Sockets []string
	// Network allows unrestricted networking (network: true).
	Network bool
	// ConnectPorts allows TCP connect to these ports only (connect_ports).
	ConnectPorts []uint16
	// Pty gives the command a private /dev/pts and /dev/ptmx (pty: true).
	Pty bool
	// AllowSyscalls re-allows system calls the seccomp filter refuses
	// (allow_syscalls); policy check warns about each.
	AllowSyscalls []string
	// ObsoleteNamespaces records that the policy wrote the namespaces
	// key: every sandboxed command now runs in its own namespaces, so it
	// is accepted, ignored and warned about.
	ObsoleteNamespaces bool
	// Rlimits. Zero means the default shown.
	CPU          time.Duration // cpu, default the command's timeout
	NoFile       uint64        // nofile, default 256
	FileSize     int64         // fsize, default 64 MiB
	AddressSpace int64         // address_space, default 4 GiB
	Procs        uint64        // procs, default 256
	TmpSize      int64         // tmp_size: each private tmpfs, default 64 MiB
	// Job cgroup limits, enforced where the relay has a delegated cgroup
	// v2 subtree; elsewhere only the rlimits above hold, per process.
	Memory int64   // memory: memory.max of the whole job, default 1 GiB
	CPUs   float64 // cpus: CPU time per second of wall time, default 1
}

// String describes the profile in a few words, the one description the
// policy summary, confirmations and audit records all show: "none", or the
// network it has, then what it adds to the default view.
func (s Sandbox) String() string {
	if s.Disabled {
		return "none"
	}
	var parts []string
	switch {
	case s.Network:
		parts = append(parts, "network")
	case len(s.ConnectPorts) > 0:
		parts = append(parts, fmt.Sprintf("tcp%v", s.ConnectPorts))
	default:
		parts = append(parts, "no network")
	}
	if len(s.Read) > 0 {
		parts = append(parts, "read "+strings.Join(s.Read, ","))
	}
	if len(s.Write) > 0 {
		parts = append(parts, "write "+strings.Join(s.Write, ","))
	}
	if len(s.Sockets) > 0 {
		parts = append(parts, "sockets "+strings.Join(s.Sockets, ","))
	}
	if s.Pty {
		parts = append(parts, "pty")
	}
	if len(s.AllowSyscalls) > 0 {
		parts = append(parts, "allows "+strings.Join(s.AllowSyscalls, ","))
	}
	return strings.Join(parts, ", ")
}
