package cli

import (
	"github.com/relaychat/relay/internal/lazyre"
	"slices"
	"strings"
)

// CommandDoc is one top-level command as the manual pages and the shell
// completions show it, read from the table the CLI dispatches on.
type CommandDoc struct {
	Name  string
	Short string // the one line of relay -h
	Usage string // the whole text of relay NAME -h
	// Subcommands are the words the usage's synopsis lines put right after
	// the command ("init", "verify" and "show" for audit), in order.
	Subcommands []string
	// Flags are the long flags the usage names, per subcommand ("" for a
	// command without subcommands), each with its leading dashes.
	Flags map[string][]string
}

// ExitCodeDoc is one row of the exit-status contract.
type ExitCodeDoc struct {
	Code    int
	Meaning string
}

// Commands returns every registered command, sorted by name.
func Commands() []CommandDoc {
	var out []CommandDoc
	for _, n := range commandNames() {
		c := commands[n]
		subs, flags := synopsis(c.name, c.usage)
		out = append(out, CommandDoc{Name: c.name, Short: c.short, Usage: c.usage, Subcommands: subs, Flags: flags})
	}
	return out
}

// ExitCodes returns the exit-status contract, in order.
func ExitCodes() []ExitCodeDoc {
	var out []ExitCodeDoc
	for _, e := range exitCodes {
		out = append(out, ExitCodeDoc{Code: e.code, Meaning: e.meaning})
	}
	return out
}

// TopUsage is the text of relay -h.
func TopUsage() string { return topUsage() }

var (
	subWord  = lazyre.New(`^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$`)
	longFlag = lazyre.New(`(?:^|[\s\[|])(--?[a-z][a-z0-9-]*)`)
)

// synopsis reads a usage text's "Usage:" block, one line per form
// ("    relay audit init [--config FILE] ..."; "bash|zsh|fish" is a form
// per word), continuation lines indented deeper, and the lines of its
// "Options:" or "Flags:" block ("    --config FILE  ..."), which belong to
// every form unless a synopsis line names them.
func synopsis(name, usage string) (subs []string, flags map[string][]string) {
	flags = map[string][]string{}
	lines := strings.Split(usage, "\n")
	sub := ""
	inUsage, inOptions := false, false
	var common []string
	for _, l := range lines {
		trimmed := strings.TrimSpace(l)
		switch trimmed {
		case "Usage:":
			inUsage = true
			continue
		case "Options:", "Flags:":
			inOptions = true
			continue
		case "":
			inUsage, inOptions = false, false
			continue
		}
		if inUsage {
			if f := strings.Fields(trimmed); len(f) >= 2 && f[0] == "relay" {
				if f[1] != name {
					continue // relay --version, listed under version
				}
				sub = ""
				if len(f) >= 3 && subWord().MatchString(f[2]) {
					// "bash|zsh|fish": one form per word.
					for _, w := range strings.Split(f[2], "|") {
						if !slices.Contains(subs, w) {
							subs = append(subs, w)
						}
					}
					sub = strings.Split(f[2], "|")[0]
				}
			}
			flags[sub] = addFlags(flags[sub], trimmed)
			continue
		}
		// An option line: the flag is the first word.
		if inOptions && strings.HasPrefix(trimmed, "-") {
			common = addFlags(common, strings.Fields(trimmed)[0])
		}
	}
	for _, c := range common {
		named := false
		for _, fs := range flags {
			named = named || slices.Contains(fs, c)
		}
		if named {
			continue // the synopsis says which forms take it
		}
		for _, s := range append([]string{""}, subs...) {
			if _, ok := flags[s]; ok && !slices.Contains(flags[s], c) {
				flags[s] = append(flags[s], c)
			}
		}
	}
	if len(subs) > 0 {
		delete(flags, "")
	}
	return subs, flags
}

func addFlags(have []string, text string) []string {
	for _, m := range longFlag().FindAllStringSubmatch(text, -1) {
		if f := m[1]; f != "-" && !slices.Contains(have, f) {
			have = append(have, f)
		}
	}
	return have
}
