package policy

import (
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Warning is a risky but legal choice in a policy, shown by relay policy
// check so the owner decides with open eyes.
type Warning struct {
	File string
	Line int
	Msg  string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: warning: %s", w.File, w.Line, w.Msg)
}

// interpreter matches programs that run code or other programs given as
// data, which turns an argv template into a general-purpose shell.
var interpreter = lazyre.New(`^(sh|bash|dash|zsh|ksh|mksh|fish|csh|tcsh|busybox|env|sudo|doas|su|xargs|nohup|nice|timeout|setsid|script|expect|tclsh.*|wish.*|awk|gawk|mawk|nawk|python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|deno|bun|php[0-9.]*|lua[0-9.]*|luajit|Rscript|osascript|pwsh|powershell)$`)

// destructive lists programs whose mistaken run is hard to undo.
var destructive = lazyre.New(`^(rm|rmdir|shred|wipefs|dd|mkfs.*|fdisk|sfdisk|parted|reboot|shutdown|poweroff|halt|kill|pkill|killall|truncate)$`)

var destructiveVerb = map[string]bool{"stop": true, "restart": true, "reboot": true, "poweroff": true, "halt": true, "kill": true, "isolate": true, "disable": true, "mask": true, "rm": true, "delete": true, "drop": true}

// Warnings lists the risky but legal choices in c: commands without a
// sandbox, interpreters as argv[0], unrestricted network, writable
// directories shared between commands, options allowed in values, a path
// root of /, environment overrides of PATH or the dynamic loader,
// destructive commands without confirm, and commands that do not fit in
// the phone's menu.
func Warnings(c *Config) []Warning {
	var ws []Warning
	if w, ok := MenuWarning(c); ok {
		ws = append(ws, w)
	}
	add := func(cmd *Command, format string, a ...any) {
		ws = append(ws, Warning{File: c.Source, Line: cmd.Line, Msg: fmt.Sprintf("/%s: ", cmd.Name) + fmt.Sprintf(format, a...)})
	}
	type writer struct {
		cmd *Command
		dir string
	}
	var writers []writer
	for _, cmd := range c.Commands {
		s := cmd.Sandbox
		if s.Disabled {
			add(cmd, "runs without a sandbox (sandbox: none): it can read and write anything the relay's user can")
		} else {
			if s.Network {
				add(cmd, "has unrestricted network access (network: true); connect_ports can narrow it")
			}
			for _, n := range s.AllowSyscalls {
				add(cmd, "re-allows the system call %s (allow_syscalls), which the sandbox refuses because a compromised command can use it against the kernel or other processes", n)
			}
			if s.ObsoleteNamespaces {
				add(cmd, "sandbox.namespaces is obsolete and ignored: every sandboxed command runs in its own namespaces; remove the key")
			}
			for _, k := range s.Sockets {
				add(cmd, "can connect to the unix socket %s (sockets): it reaches whatever serves that socket, with the relay's identity", k)
				if fi, err := os.Stat(k); err != nil || fi.Mode()&os.ModeSocket == 0 {
					add(cmd, "sandbox.sockets %s is not a unix socket on this host now: the command is refused until it is", k)
				}
			}
			for _, w := range s.Write {
				writers = append(writers, writer{cmd, w})
			}
		}
		if len(cmd.Argv) > 0 {
			base := filepath.Base(cmd.Argv[0])
			if interpreter().MatchString(base) {
				add(cmd, "argv[0] %s interprets its arguments as code or runs other programs: keep every argument fixed or tightly typed", base)
			}
			if !cmd.Confirm && isDestructive(cmd.Argv) {
				add(cmd, "looks destructive but does not ask to confirm (confirm: true)")
			}
		}
		for _, p := range cmd.Params {
			if p.AllowDash {
				add(cmd, "parameter %q may begin with '-' (allow_dash), so a value can be read as an option", p.Name)
			}
			if p.Type == TypePath && filepath.Clean(p.Root) == "/" {
				add(cmd, "parameter %q is a path under /, i.e. any file on the host", p.Name)
			}
		}
		keys := make([]string, 0, len(cmd.Env))
		for k := range cmd.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "PATH" || strings.HasPrefix(k, "LD_") || k == "BASH_ENV" || k == "ENV" || strings.HasPrefix(k, "PYTHON") || k == "PERL5OPT" || k == "NODE_OPTIONS" {
				add(cmd, "env sets %s, which changes what code the program loads", k)
			}
		}
	}
	for i, a := range writers {
		for _, b := range writers[i+1:] {
			if a.cmd != b.cmd && (within(a.dir, b.dir) || within(b.dir, a.dir)) {
				add(b.cmd, "writable directory %s is shared with /%s (%s): one command can plant files the other trusts", b.dir, a.cmd.Name, a.dir)
			}
		}
	}
	for _, w := range writers {
		for _, cmd := range c.Commands {
			if cmd != w.cmd && within(cmd.Workdir, w.dir) {
				add(cmd, "workdir %s is writable by /%s", cmd.Workdir, w.cmd.Name)
			}
		}
	}
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].Line < ws[j].Line })
	return ws
}

// MenuWarning says which commands Telegram's menu has no room for, if
// any: the daemon logs it at every load, and policy check prints it.
func MenuWarning(c *Config) (Warning, bool) {
	menu, omitted := c.Menu()
	if len(omitted) == 0 {
		return Warning{}, false
	}
	names := make([]string, 0, 5)
	for i, cmd := range omitted {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(omitted)-5))
			break
		}
		names = append(names, "/"+cmd.Name)
	}
	shown := len(c.Commands) - len(omitted)
	return Warning{File: c.Source, Line: omitted[0].Line, Msg: fmt.Sprintf(
		"%d commands do not fit in the phone's menu, which Telegram caps at %d (the first %d commands and the %d built-ins): %s; they still run when typed, and /help lists them",
		len(omitted), MaxMenu, shown, len(menu)-shown, strings.Join(names, ", "))}, true
}

func isDestructive(argv []string) bool {
	if destructive().MatchString(filepath.Base(argv[0])) {
		return true
	}
	for _, a := range argv[1:] {
		if destructiveVerb[a] {
			return true
		}
	}
	return false
}

// FormatSize renders a byte count the way a policy would write it.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return fmt.Sprintf("%d%s", n/u.m, u.s)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// Summary writes a readable overview of c: settings that bound execution,
// then each command with its usage line, argv template and limits. Env
// values are never printed (they may hold secrets), only their names.
func (c *Config) Summary(w io.Writer) {
	src := c.Source
	if src == "" {
		src = "built-in default policy"
	}
	fmt.Fprintf(w, "%s: %d command(s), owner %d\n", src, len(c.Commands), c.Auth.OwnerID)
	l := c.Limits
	fmt.Fprintf(w, "limits: %d concurrent, timeout %s (max %s), output %s (max %s)\n",
		l.MaxConcurrent, dur(l.DefaultTimeout), dur(l.MaxTimeout), FormatSize(l.DefaultMaxOutput), FormatSize(l.MaxOutput))
	fmt.Fprintf(w, "state %s, audit %s, telegram %s\n", c.StateDir, c.Audit.Dir, c.Telegram.Mode)
	if c.Notify.Group != "" {
		fmt.Fprintf(w, "notify: members of group %s (gid %d) may notify through %s/notify.sock, marked as %s\n", c.Notify.Group, c.Notify.GID, c.Notify.Dir, c.Notify.Group)
	}
	for _, cmd := range c.Commands {
		fmt.Fprintf(w, "\n%s\n", cmd.Usage())
		fmt.Fprintf(w, "    %s\n", cmd.Description)
		fmt.Fprintf(w, "    argv: %s\n", strings.Join(quoteAll(cmd.Argv), " "))
		for _, p := range cmd.Params {
			switch p.Type {
			case TypeEnum:
				fmt.Fprintf(w, "    %s: one of %s", p.Name, p.shape())
			case TypeInt:
				fmt.Fprintf(w, "    %s: int %s", p.Name, p.shape())
			case TypeString:
				fmt.Fprintf(w, "    %s: %s matching %s", p.Name, p.shape(), p.Pattern)
			default:
				fmt.Fprintf(w, "    %s: %s", p.Name, p.shape())
			}
			if p.FoldCase {
				fmt.Fprint(w, ", in any case")
			}
			for _, v := range p.Values {
				if a := p.Aliases[v]; len(a) > 0 {
					fmt.Fprintf(w, ", %s also as %s", v, strings.Join(a, " or "))
				}
			}
			if p.AllowDash {
				fmt.Fprint(w, ", may begin with '-'")
			}
			if ch := p.picks(); len(ch) > 0 {
				fmt.Fprintf(w, ", %d buttons", len(ch))
			}
			if p.Description != "" {
				fmt.Fprintf(w, " (%s)", p.Description)
			}
			fmt.Fprintln(w)
		}
		flags := []string{
			"timeout " + dur(cmd.Timeout),
			"output " + FormatSize(cmd.MaxOutput),
			fmt.Sprintf("concurrency %d", cmd.Concurrency),
			"workdir " + cmd.Workdir,
			"sandbox " + cmd.Sandbox.String(),
		}
		if cmd.Confirm {
			flags = append(flags, "confirm")
		}
		if cmd.Reauth {
			flags = append(flags, "reauth")
		}
		if !cmd.Hub {
			flags = append(flags, "hub: false")
		}
		if len(cmd.Env) > 0 {
			keys := make([]string, 0, len(cmd.Env))
			for k := range cmd.Env {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			flags = append(flags, "env "+strings.Join(keys, ","))
		}
		fmt.Fprintf(w, "    %s\n", strings.Join(flags, " · "))
		if f := cmd.Format; f != nil {
			var parts []string
			if f.Text {
				parts = append(parts, "input text")
			}
			if f.JQ != "" {
				parts = append(parts, "jq "+f.JQ)
			}
			if f.Table {
				t := "table"
				if len(f.Columns) > 0 {
					t += " " + strings.Join(f.Columns, ", ")
				}
				parts = append(parts, t)
			}
			fmt.Fprintf(w, "    format: %s\n", strings.Join(parts, " · "))
		}
	}
	if c.Member != nil {
		fmt.Fprintf(w, "\nmember: served to a hub over ssh (serve-ssh)")
		if len(c.Member.HubKeys) > 0 {
			fmt.Fprintf(w, " for %s", strings.Join(c.Member.HubKeys, ", "))
		}
		fmt.Fprintln(w)
	}
	if len(c.Hosts) > 0 {
		f := c.Fleet
		fmt.Fprintf(w, "\nhosts: %d, %d at once per fan-out, %d calls at most, connections kept %s\n", len(c.Hosts), f.Parallel, f.MaxCalls, dur(f.Persist))
		for _, h := range c.Hosts {
			pin := h.Fingerprint()
			if h.KnownHosts != "" {
				pin = "known_hosts " + h.KnownHosts
			}
			fmt.Fprintf(w, "    %s: %s port %d, host key %s, timeout %s, output %s\n", h.Name, h.Destination(), h.Port, pin, dur(h.Timeout), FormatSize(h.MaxOutput))
		}
		for _, g := range c.Groups {
			fmt.Fprintf(w, "    group %s: %s\n", g.Name, strings.Join(g.Hosts, ", "))
		}
	}
}

func dur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func quoteAll(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\"'\\") {
			a = fmt.Sprintf("%q", a)
		}
		out[i] = a
	}
	return out
}
