// Package manual is the one source of relay's reference text that is not
// in a Go doc comment: the keys of relay.yaml with their defaults and
// meanings, and the CLI as internal/cli's command table describes it. It
// renders them as the man pages relay(1) and relay.yaml(5), as the
// generated sections of docs/reference.md, and as the shell completions,
// so that a person reads the normative reference without a Go toolchain
// and no two copies can disagree.
//
// It owns nothing at run time and must never be imported by the relay
// binary: it is for go generate (./gen) and for the test that keeps the
// committed outputs equal to what it renders.
package manual

//go:generate go run ./gen -root ../..

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/relaychat/relay/internal/cli"
	"github.com/relaychat/relay/policy"
)

// Key is one config key: its dotted name, its default and its meaning, in
// a small markup shared by both renderers: `code` and **bold**.
type Key struct {
	Name, Default, Meaning string
}

// Settings are the relay's own keys, at the top of relay.yaml.
var Settings = []Key{
	{"state_dir", "`$STATE_DIRECTORY`, else `$XDG_STATE_HOME/relay`", "private state; created 0700; never readable by commands"},
	{"command_user", "`relay-cmd`", "who commands run as when relay runs as root: a user name or `uid:gid`, never root or nobody; a relay that is not root runs commands with its own uid and ignores it"},
	{"telegram.api_url", "`https://api.telegram.org`", "Bot API base URL: a local Bot API server, or a test fake"},
	{"telegram.mode", "`polling`", "or `webhook`"},
	{"telegram.poll_timeout", "`25s`", "long-poll timeout; the HTTP timeout is derived from it"},
	{"telegram.max_document_bytes", "`50MiB`", "largest document sent; longer output is truncated with a notice"},
	{"telegram.token_file", "none", "a 0600 file holding the token; the last source tried"},
	{"telegram.protect_content", "`false`", "send every message and document with Telegram's `protect_content`: the owner's apps will not forward or save them (a deterrent: a screenshot still copies them)"},
	{"telegram.webhook.listen", "none (required in webhook mode)", "e.g. `127.0.0.1:8443`"},
	{"telegram.webhook.url", "none", "the public https base URL; a random path is added at each start"},
	{"telegram.webhook.tls_cert", "none", "with `tls_key`, serve TLS directly; otherwise put a TLS proxy in front"},
	{"telegram.webhook.tls_key", "none", "the key for `tls_cert`"},
	{"telegram.webhook.max_body_bytes", "`1MiB`", "request body cap"},
	{"auth.owner_id", "**required**", "your numeric Telegram user ID"},
	{"auth.max_message_age", "`60s`", "older messages are never executed"},
	{"auth.session_idle", "`15m`", "session ends after this long without a command (the next command is told so, once, and the end is audited)"},
	{"auth.session_max", "`12h`", "session ends this long after login, whatever happens (told and audited the same way)"},
	{"auth.login_attempts", "`3`", "attempts per `login_window`, counted before any code is checked"},
	{"auth.login_window", "`30s`", "the window `login_attempts` counts in"},
	{"auth.lockout", "`1m`", "first lockout; doubles with each further failure"},
	{"auth.lockout_max", "`24h`", "the longest lockout"},
	{"auth.recovery_codes", "`10`", "one-time codes issued at enrolment"},
	{"audit.dir", "`$LOGS_DIRECTORY`, else `$XDG_STATE_HOME/relay/audit`", "created 0700; never readable by commands"},
	{"audit.rotate_bytes", "`64MiB`", "a new file after this size; the chain continues"},
	{"audit.checkpoint_interval", "`1h`", "the chain head is posted to the chat; `0` = only at shutdown"},
	{"limits.max_concurrent", "`4`", "jobs overall; more are refused, never queued"},
	{"limits.default_timeout", "`30s`", "a command's timeout when it sets none"},
	{"limits.max_timeout", "`10m`", "no command may set more"},
	{"limits.default_max_output", "`16MiB`", "a command's output cap when it sets none"},
	{"limits.max_output", "`1GiB`", "no command may set more"},
	{"notify.group", "none", "one local group (a name or gid) whose members may notify through a socket of their own (Home Assistant); never root's, the relay's or `command_user`'s group"},
	{"notify.dir", "`/run/relay-notify`", "the group socket's directory: owned by the relay's user, with the group, mode 2750; not inside `state_dir` or `audit.dir`"},
	{"secrets.keyring", "`true`", "`false`: never ask the OS keyring; secrets come from systemd credentials, `RELAY_BOT_TOKEN` (the token only) and 0600 files in `state_dir/secrets`"},
}

// FleetKeys are a hub's keys (fleet, hosts, groups) and a member's
// (member), with the per-command key a member honours.
var FleetKeys = []Key{
	{"fleet.parallel", "`4`", "hosts reached at once by one fan-out"},
	{"fleet.max_calls", "`16`", "remote calls in flight across fan-outs; more are refused, never queued"},
	{"fleet.timeout", "`1m`", "a call's deadline; the call is cut, which kills the member's job"},
	{"fleet.max_output", "`16MiB`", "the most output a member sends for a call; at most `limits.max_output`"},
	{"fleet.connect_timeout", "`10s`", "ssh's `ConnectTimeout` (whole seconds)"},
	{"fleet.alive_interval", "`15s`", "ssh's `ServerAliveInterval` (whole seconds)"},
	{"fleet.alive_count", "`3`", "ssh's `ServerAliveCountMax`: a member that stops answering is given up after `alive_interval` times this"},
	{"fleet.persist", "`60s`", "ssh's `ControlPersist`: an idle connection is kept this long for reuse; `0s` opens one per call"},
	{"fleet.ssh", "`/usr/bin/ssh`", "the OpenSSH client"},
	{"hosts.NAME", "none", "a member; NAME: 1 to 32 of `a-z 0-9 - _`, not `all`, not a group's name"},
	{"hosts.NAME.address", "**required**", "`user@host`: the member account (`relay`) and a DNS name or IP address"},
	{"hosts.NAME.port", "`22`", "the member's sshd port"},
	{"hosts.NAME.host_key", "one of `host_key`, `known_hosts` **required**", "the pinned host key: a `.pub` line, or a `known_hosts` line (its host pattern is dropped); only its key type is negotiated; there is no trust on first use"},
	{"hosts.NAME.known_hosts", "none", "instead of `host_key`: a known_hosts file that pins the key, matched by address and port"},
	{"hosts.NAME.identity", "**required**", "the hub's private key (0600), or with `agent` its public key"},
	{"hosts.NAME.agent", "none", "an ssh-agent socket holding the key"},
	{"hosts.NAME.timeout", "`fleet.timeout`", "this member's call deadline"},
	{"hosts.NAME.max_output", "`fleet.max_output`", "this member's output cap"},
	{"groups.NAME", "none", "a list of host names, reached together by `/on NAME`; NAME as a host's, and not one"},
	{"member", "absent", "marks a member's file, served to a hub by `relay serve-ssh`: `{}`, or with `hub_keys`; `auth.owner_id` may then be left out (`relay run` refuses such a file)"},
	{"member.hub_keys", "none", "`[\"SHA256:...\"]`: only these hub keys, as sshd names them (needs `ExposeAuthInfo yes`)"},
	{"commands.NAME.hub", "`true`", "`false`: a member refuses the command to the hub and does not offer it"},
}

// CommandKeys are the keys of one allowlisted command, under
// commands.NAME.
var CommandKeys = []Key{
	{"description", "`run <program>`", "shown in `/help` and the phone's menu; at most 256 characters"},
	{"argv", "**required**", "`argv[0]` absolute, existing, never a placeholder; `{param}` expands inside one element"},
	{"params", "none", "positional, in order: `{name, type, description, values, min, max, pattern, max_len, root, optional, default, allow_dash}`; an enum may add `fold_case: true` (any letter case binds the value) and `aliases: {VALUE: [WORD...]}`; `choices` (values, or `{value, label}`, at most 24) are the picker's buttons"},
	{"format.jq", "none", "a jq expression run over the output of a command that exited 0; shown as `jq -r` prints it; bounded (see Output formats); on a failure the raw output is shown with a note"},
	{"format.input", "`json`", "`text`: the output is one JSON string instead"},
	{"format.table", "`false`", "`true` (every key, sorted) or a list of columns: the results as an aligned table of one message"},
	{"timeout", "`limits.default_timeout`", "kills the whole process tree"},
	{"workdir", "`/`", "must exist, and lie inside the sandbox's view"},
	{"env", "none", "added to `PATH` and `LANG`; values never appear in errors"},
	{"max_output", "`limits.default_max_output`", "the output cap"},
	{"concurrency", "`1`", "jobs of this command at once"},
	{"confirm", "`false`", "Run/Cancel buttons showing the resolved argv"},
	{"reauth", "`false`", "needs a fresh TOTP code as the first argument"},
	{"sandbox", "the default profile", "`none` to disable (warned), or the keys below"},
	{"sandbox.read", "none", "host paths bound read-only into the command's view, beyond `/usr`, `/lib*`, `/bin`, `/sbin` and `/etc`; a device node is bound as a device"},
	{"sandbox.write", "none", "host directories (or device nodes) bound read-write; never under `/tmp`, `/var/tmp` or `/dev/shm`, which are private to each command"},
	{"sandbox.sockets", "none", "pathname unix sockets bound into the view; no other host socket exists for the command (a missing one is a `policy check` warning, and the command is refused until it exists)"},
	{"sandbox.network", "`false`", "unrestricted network; without it the command has a network namespace of its own"},
	{"sandbox.connect_ports", "none", "TCP connect to these ports only (Landlock ABI 4)"},
	{"sandbox.pty", "`false`", "a private `/dev/pts` and `/dev/ptmx`"},
	{"sandbox.allow_syscalls", "none", "system calls the seccomp filter refuses that this command may make (`policy check` warns about each)"},
	{"sandbox.tmp_size", "`64MiB`", "the size of the private `/tmp` (shared with `/var/tmp`) and of `/dev/shm`"},
	{"sandbox.cpu", "the timeout", "`RLIMIT_CPU`"},
	{"sandbox.nofile", "`256`", "`RLIMIT_NOFILE`"},
	{"sandbox.fsize", "`64MiB`", "`RLIMIT_FSIZE`"},
	{"sandbox.address_space", "`4GiB`", "`RLIMIT_AS`"},
	{"sandbox.procs", "`256`", "`RLIMIT_NPROC` (on top of the sandbox's own few threads), and the job cgroup's `pids.max`"},
	{"sandbox.memory", "`1GiB`", "the job cgroup's `memory.max` (only where the relay has job cgroups)"},
	{"sandbox.cpus", "`1`", "the job cgroup's `cpu.max`, in CPUs (only where the relay has job cgroups)"},
	{"sandbox.namespaces", "obsolete", "accepted and ignored with a warning: every sandboxed command has its own user, mount, pid, ipc, uts, cgroup and (without network) net namespaces"},
}

// ConfigIntro opens the config reference.
const ConfigIntro = "One YAML file. Unknown keys, wrong types, duplicates, aliases and a second " +
	"document are errors with file:line:col. Durations are Go durations (`10s`, " +
	"`15m`); sizes are bytes or strings with a unit (`64KiB`, `16MiB`, `1GB`)."

// CommandsIntro opens the per-command keys; the built-ins' names come
// from their one table.
var CommandsIntro = func() string {
	names := make([]string, len(policy.Builtins))
	for i, b := range policy.Builtins {
		names[i] = b.Name
	}
	inMenu, fleet := 0, 0
	for _, b := range policy.Builtins {
		switch {
		case b.Hidden:
		case b.Fleet:
			fleet++
		default:
			inMenu++
		}
	}
	return fmt.Sprintf("Per command, under `commands.NAME` (NAME: 1 to 32 of `a-z 0-9 _`, not a "+
		"built-in: `%s`). The phone's menu holds the policy's commands, then the built-ins, up to "+
		"Telegram's %d: past %d commands (%d when `hosts:` names some) the rest are left out of the "+
		"menu (they still run and `/help` lists them), and relay's log at every load and "+
		"`relay policy check` say which.",
		strings.Join(names, " "), policy.MaxMenu, policy.MaxMenu-inMenu, policy.MaxMenu-inMenu-fleet)
}()

// ParamTypes describes the parameter types.
const ParamTypes = "Parameter types: `enum` (`values`), `int` (`min` and `max`, inclusive, " +
	"both required), `string` (`pattern`, an anchored RE2, and `max_len`, both " +
	"required), `path` (`root`; symlinks resolved, must stay under it). Any " +
	"parameter may be `optional` with a `default`; optional ones come last. A " +
	"value beginning with `-` is refused unless `allow_dash: true`."

// Examples names the example policies.
const Examples = "Examples: `policy/examples/homelab.yaml` (server admin), " +
	"`home-assistant.yaml` (MQTT and REST device control), `audit-review.yaml` " +
	"(reviewing the log); installed in `/usr/share/doc/relay/examples`."

// Markdown renders the generated sections of docs/reference.md, by the
// name in their markers.
func Markdown() map[string]string {
	var cfg strings.Builder
	cfg.WriteString(ConfigIntro + "\n\n")
	mdTable(&cfg, Settings)
	cfg.WriteString("\n" + CommandsIntro + "\n\n")
	mdTable(&cfg, CommandKeys)
	cfg.WriteString("\n" + ParamTypes + "\n\n" + Examples + "\n")

	var cmds strings.Builder
	cmds.WriteString("| command | purpose |\n| --- | --- |\n")
	for _, c := range cli.Commands() {
		for i, form := range forms(c) {
			purpose := c.Short
			if i > 0 {
				purpose = "" // one purpose per command, on its first form
			}
			fmt.Fprintf(&cmds, "| `%s` | %s |\n", mdCell(form), mdCell(purpose))
		}
	}
	var codes strings.Builder
	codes.WriteString("| code | meaning |\n| --- | --- |\n")
	for _, e := range cli.ExitCodes() {
		fmt.Fprintf(&codes, "| `%d` | %s |\n", e.Code, e.Meaning)
	}
	var fleet strings.Builder
	mdTable(&fleet, FleetKeys)
	return map[string]string{"config": cfg.String(), "fleet": fleet.String(), "commands": cmds.String(), "exit-codes": codes.String()}
}

func mdTable(b *strings.Builder, keys []Key) {
	b.WriteString("| key | default | meaning |\n| --- | --- | --- |\n")
	for _, k := range keys {
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", k.Name, mdCell(k.Default), mdCell(k.Meaning))
	}
}

// mdCell keeps a table cell one cell: a | inside code would split it.
func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// forms are a command's synopsis lines, each joined into one line.
func forms(c cli.CommandDoc) []string {
	var out []string
	in := false
	for _, l := range strings.Split(c.Usage, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == "Usage:":
			in = true
		case t == "":
			if in {
				return out
			}
		case in && strings.HasPrefix(t, "relay "):
			out = append(out, strings.Join(strings.Fields(t), " "))
		case in && len(out) > 0:
			out[len(out)-1] += " " + strings.Join(strings.Fields(t), " ")
		}
	}
	return out
}

// Roff markup.
var (
	codeSpan = regexp.MustCompile("`([^`]*)`")
	boldSpan = regexp.MustCompile(`\*\*([^*]*)\*\*`)
)

// roff turns the shared markup into man(7) text for one paragraph.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = codeSpan.ReplaceAllStringFunc(s, func(m string) string {
		return `\fB` + strings.ReplaceAll(m[1:len(m)-1], "-", `\-`) + `\fR`
	})
	s = boldSpan.ReplaceAllString(s, `\fB$1\fR`)
	return lineStart(escapeNonASCII(s))
}

// escapeNonASCII writes each rune past ASCII as a groff special
// character, \[u2026]: man(7) input is ASCII, whatever the locale.
func escapeNonASCII(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		}
	}
	return b.String()
}

// lineStart keeps a line that begins with . or ' from being read as a
// request.
func lineStart(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// verbatim renders preformatted text (a usage text) for man(7).
func verbatim(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	return ".nf\n" + lineStart(escapeNonASCII(strings.TrimRight(s, "\n"))) + "\n.fi\n"
}

const manHeader = `.\" Generated by internal/manual (go generate ./internal/manual); do not edit.
`

// Relay1 renders relay(1).
func Relay1() string {
	var b strings.Builder
	b.WriteString(manHeader)
	b.WriteString(".TH RELAY 1 \"\" \"relay\" \"relay manual\"\n")
	b.WriteString(".SH NAME\nrelay \\- a self-hosted ChatOps command relay for one owner\n")
	b.WriteString(".SH SYNOPSIS\n.B relay\n.I command\n.RI [ arguments ]\n.br\n.B relay \\-\\-version\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roff("One owner runs allowlisted, sandboxed commands on their own machines from a phone, "+
		"through a Telegram bot they run themselves. A chat message is untrusted input: only the owner's "+
		"numeric user ID, after a TOTP login, may run commands; each command is an argv template with typed "+
		"parameters, never a shell; each runs in a sandbox of its own; and every event goes to an "+
		"append-only, tamper-evident audit log. The policy is `relay.yaml`, described in **relay.yaml**(5).") + "\n")
	b.WriteString(".PP\n" + roff("Messages for a person go to stderr, one line each: `relay: error:`, `relay: warning:`, "+
		"`relay: note:`, and the fix as `relay: hint:`. `relay COMMAND -h` prints a command's usage on stdout.") + "\n")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range cli.Commands() {
		fmt.Fprintf(&b, ".SS %s\n%s\n.PP\n%s", c.Name, roff(c.Short), verbatim(c.Usage))
	}
	b.WriteString(".SH EXIT STATUS\n")
	b.WriteString(roff("The same for every command. relay's own outcomes are 0 to 5; `relay exec` never passes its command's status through.") + "\n")
	for _, e := range cli.ExitCodes() {
		fmt.Fprintf(&b, ".TP\n.B %d\n%s\n", e.Code, roff(e.Meaning))
	}
	b.WriteString(".SH FILES\n")
	for _, f := range [][2]string{
		{"/etc/relay/relay.yaml", "the config and command allowlist, root:relay 0640"},
		{"/etc/relay/bot-token.cred", "the bot token, encrypted with `systemd-creds`; only `relay.service` can decrypt it"},
		{"/var/lib/relay", "the state directory: auth state, audit key state, secrets files, output spool"},
		{"/var/log/relay", "the audit log"},
		{"/etc/systemd/system/relay.service", "the hardened unit"},
		{"/etc/relay/authorized_keys", "a member's or witnessed host's keys: the hub's line (`relay serve-ssh`) and the witness's (`relay serve-ssh --witness`), each with its own forced command and `from=`"},
		{"/var/lib/relay-witness/NAME", "a witness's store (`relay audit witness --store`): the pinned keys, every accepted checkpoint, the hashes witnessed, `rejected.jsonl` (evidence)"},
		{"relay-witness@NAME.timer", "runs `relay-witness@NAME.service`, one witness round, every 15 minutes; or cron: `*/15 * * * * relay relay audit witness --store /var/lib/relay-witness/NAME --notify-config /etc/relay/relay.yaml`"},
	} {
		fmt.Fprintf(&b, ".TP\n.I %s\n%s\n", f[0], roff(f[1]))
	}
	b.WriteString(".SH SEE ALSO\n.BR relay.yaml (5),\n.BR systemd.exec (5),\n.BR systemd-creds (1),\n" +
		".I /usr/share/doc/relay/SECURITY.md\n")
	return b.String()
}

// RelayYAML5 renders relay.yaml(5).
func RelayYAML5() string {
	var b strings.Builder
	b.WriteString(manHeader)
	b.WriteString(".TH RELAY.YAML 5 \"\" \"relay\" \"relay manual\"\n")
	b.WriteString(".SH NAME\nrelay.yaml \\- relay's settings and command allowlist\n")
	b.WriteString(".SH SYNOPSIS\n.I /etc/relay/relay.yaml\n")
	b.WriteString(".SH DESCRIPTION\n" + roff(ConfigIntro) + "\n")
	b.WriteString(".PP\n" + roff("Check a file with `relay policy check FILE`; a running relay reloads it on SIGHUP "+
		"(`systemctl reload relay`) and keeps the old one if the new one is invalid.") + "\n")
	b.WriteString(".SH SETTINGS\n")
	manKeys(&b, Settings)
	b.WriteString(".SH COMMANDS\n" + roff(CommandsIntro) + "\n")
	manKeys(&b, CommandKeys)
	b.WriteString(".SH MANY HOSTS\n" + roff("A hub reaches its members over OpenSSH with these keys; a member's file says `member:`.") + "\n")
	manKeys(&b, FleetKeys)
	b.WriteString(".SH PARAMETERS\n" + roff(ParamTypes) + "\n")
	b.WriteString(".SH EXAMPLES\n" + verbatim(`auth:
  owner_id: 123456789
commands:
  logs:
    description: the last lines of a service's journal
    argv: [/usr/bin/journalctl, --no-pager, -u, "{unit}.service", -n, "{lines}"]
    params:
      - {name: unit, type: enum, values: [nginx, ssh]}
      - {name: lines, type: int, min: 1, max: 500, optional: true, default: "50"}
    timeout: 20s
    sandbox:
      read: [/var/log/journal]`))
	b.WriteString(".PP\n" + roff(Examples) + "\n")
	b.WriteString(".SH SEE ALSO\n.BR relay (1)\n")
	return b.String()
}

func manKeys(b *strings.Builder, keys []Key) {
	for _, k := range keys {
		fmt.Fprintf(b, ".TP\n.B %s\n%s\n.br\nDefault: %s.\n", strings.ReplaceAll(k.Name, "-", `\-`), roff(k.Meaning), roff(k.Default))
	}
}

// Marker returns the comment lines that delimit a generated section of
// docs/reference.md.
func Marker(name string) (begin, end string) {
	return "<!-- generated by internal/manual: " + name + "; edit internal/manual, then go generate ./internal/manual -->",
		"<!-- end of generated " + name + " -->"
}

// Splice replaces each marked section of doc with its rendering, and fails
// when a marker is missing.
func Splice(doc string, sections map[string]string) (string, error) {
	for name, body := range sections {
		begin, end := Marker(name)
		i := strings.Index(doc, begin)
		j := strings.Index(doc, end)
		if i < 0 || j < i {
			return "", fmt.Errorf("docs/reference.md lacks the markers of section %q:\n%s\n%s", name, begin, end)
		}
		doc = doc[:i+len(begin)] + "\n" + body + doc[j:]
	}
	return doc, nil
}

// Outputs are the files go generate writes, relative to the repository
// root, with their content; the reference is spliced into the given text.
func Outputs(reference string) (map[string]string, error) {
	ref, err := Splice(reference, Markdown())
	if err != nil {
		return nil, err
	}
	out := map[string]string{
		"docs/man/relay.1":      Relay1(),
		"docs/man/relay.yaml.5": RelayYAML5(),
		"docs/reference.md":     ref,
	}
	for _, sh := range cli.Shells {
		s, err := cli.Completion(sh)
		if err != nil {
			return nil, err
		}
		out["deploy/completion/relay."+sh] = s
	}
	return out, nil
}
