package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

const completionUsage = `Usage:
    relay completion bash|zsh|fish

Prints a completion script for the shell: commands, subcommands and flags,
read from relay's own command table, so it is always this version's.

    relay completion bash > /usr/local/share/bash-completion/completions/relay
    relay completion zsh  > /usr/local/share/zsh/site-functions/_relay
    relay completion fish > /usr/local/share/fish/vendor_completions.d/relay.fish

deploy/install.sh and the .deb install all three.
`

// Shells are the shells relay completion writes scripts for.
var Shells = []string{"bash", "zsh", "fish"}

func init() {
	register(&command{
		name:  "completion",
		short: "print a shell completion script (bash, zsh or fish)",
		usage: completionUsage,
		run: func(ctx context.Context, env *Env, args []string) error {
			fs := newFlags("completion")
			if err := parseFlags(fs, args); err != nil {
				return err
			}
			if fs.NArg() != 1 {
				return usageErr("completion: want one shell: %s", orList(Shells))
			}
			s, err := Completion(fs.Arg(0))
			if err != nil {
				return err
			}
			fmt.Fprint(env.Stdout, s)
			return nil
		},
	})
}

// Completion returns the completion script for shell.
func Completion(shell string) (string, error) {
	cmds := Commands()
	switch shell {
	case "bash":
		return bashCompletion(cmds), nil
	case "zsh":
		return zshCompletion(cmds), nil
	case "fish":
		return fishCompletion(cmds), nil
	}
	return "", unknownErr("shell", shell, Shells)
}

func names(cmds []CommandDoc) []string {
	var n []string
	for _, c := range cmds {
		n = append(n, c.Name)
	}
	return n
}

// flagsOf lists every flag of c, across its subcommands, sorted.
func flagsOf(c CommandDoc, sub string) []string {
	f := append([]string{}, c.Flags[sub]...)
	sort.Strings(f)
	return f
}

const completionHeader = "relay completion: generated from relay's command table (relay completion %s); do not edit"

func bashCompletion(cmds []CommandDoc) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", fmt.Sprintf(completionHeader, "bash"))
	b.WriteString("_relay() {\n")
	b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]-} sub=${COMP_WORDS[2]-} words=\n")
	b.WriteString("\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n")
	fmt.Fprintf(&b, "\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(names(cmds), " "))
	b.WriteString("\tcase $cmd in\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t%s)\n", c.Name)
		if len(c.Subcommands) > 0 {
			fmt.Fprintf(&b, "\t\tif [ \"$COMP_CWORD\" -eq 2 ]; then words=%q\n", strings.Join(c.Subcommands, " "))
			b.WriteString("\t\telse\n\t\t\tcase $sub in\n")
			for _, s := range c.Subcommands {
				fmt.Fprintf(&b, "\t\t\t%s) words=%q ;;\n", s, strings.Join(flagsOf(c, s), " "))
			}
			b.WriteString("\t\t\tesac\n\t\tfi\n")
		} else {
			fmt.Fprintf(&b, "\t\twords=%q\n", strings.Join(flagsOf(c, ""), " "))
		}
		b.WriteString("\t\t;;\n")
	}
	b.WriteString("\tesac\n")
	b.WriteString("\tif [[ $cur == -* || ( -n $words && $words != -* ) ]]; then\n")
	b.WriteString("\t\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n")
	b.WriteString("\telse\n\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\tfi\n")
	b.WriteString("}\ncomplete -o filenames -F _relay relay\n")
	return b.String()
}

func zshCompletion(cmds []CommandDoc) string {
	var b strings.Builder
	// By position, as the bash script does.
	b.WriteString("#compdef relay\n")
	fmt.Fprintf(&b, "# %s\n", fmt.Sprintf(completionHeader, "zsh"))
	b.WriteString("_relay() {\n\tlocal -a cands\n\tlocal cmd=${words[2]-} sub=${words[3]-}\n")
	b.WriteString("\tif (( CURRENT == 2 )); then\n\t\tcands=(\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t\t\t%s\n", zshQuote(c.Name+":"+c.Short))
	}
	b.WriteString("\t\t)\n\t\t_describe command cands\n\t\treturn\n\tfi\n")
	b.WriteString("\tcase $cmd in\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t%s)\n", c.Name)
		if len(c.Subcommands) > 0 {
			fmt.Fprintf(&b, "\t\tif (( CURRENT == 3 )); then cands=(%s)\n", strings.Join(c.Subcommands, " "))
			b.WriteString("\t\telse\n\t\t\tcase $sub in\n")
			for _, s := range c.Subcommands {
				fmt.Fprintf(&b, "\t\t\t%s) cands=(%s) ;;\n", s, strings.Join(flagsOf(c, s), " "))
			}
			b.WriteString("\t\t\tesac\n\t\tfi\n")
		} else {
			fmt.Fprintf(&b, "\t\tcands=(%s)\n", strings.Join(flagsOf(c, ""), " "))
		}
		b.WriteString("\t\t;;\n")
	}
	b.WriteString("\tesac\n")
	b.WriteString("\tif [[ $PREFIX == -* || ( ${#cands} -gt 0 && $cands[1] != -* ) ]]; then\n")
	b.WriteString("\t\tcompadd -a cands\n\telse\n\t\t_files\n\tfi\n")
	b.WriteString("}\n_relay \"$@\"\n")
	return b.String()
}

// zshQuote single-quotes s for zsh.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func fishCompletion(cmds []CommandDoc) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", fmt.Sprintf(completionHeader, "fish"))
	b.WriteString("complete -c relay -f\n")
	fmt.Fprintf(&b, "set -l relay_commands %s\n", strings.Join(names(cmds), " "))
	for _, c := range cmds {
		fmt.Fprintf(&b, "complete -c relay -n \"not __fish_seen_subcommand_from $relay_commands\" -a %s -d %s\n", c.Name, zshQuote(c.Short))
	}
	for _, c := range cmds {
		if len(c.Subcommands) > 0 {
			fmt.Fprintf(&b, "complete -c relay -n \"__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s\" -a %s\n",
				c.Name, strings.Join(c.Subcommands, " "), zshQuote(strings.Join(c.Subcommands, " ")))
			for _, s := range c.Subcommands {
				fishFlags(&b, fmt.Sprintf("__fish_seen_subcommand_from %s; and __fish_seen_subcommand_from %s", c.Name, s), flagsOf(c, s))
			}
			continue
		}
		fishFlags(&b, "__fish_seen_subcommand_from "+c.Name, flagsOf(c, ""))
	}
	return b.String()
}

func fishFlags(b *strings.Builder, cond string, flags []string) {
	for _, f := range flags {
		opt := "-l " + strings.TrimPrefix(f, "--")
		if !strings.HasPrefix(f, "--") {
			opt = "-s " + strings.TrimPrefix(f, "-")
		}
		fmt.Fprintf(b, "complete -c relay -n %q %s -F\n", cond, opt)
	}
}
