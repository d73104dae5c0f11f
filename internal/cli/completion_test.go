package cli

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCompletionWordsAreReal: every subcommand and flag the completions
// offer is one the CLI accepts, because both come from the same table.
// A flag the parser does not define would be "unknown flag".
func TestCompletionWordsAreReal(t *testing.T) {
	cmds := Commands()
	if len(cmds) != len(commands) {
		t.Fatalf("got %d commands, want all %d registered", len(cmds), len(commands))
	}
	for _, c := range cmds {
		subs := c.Subcommands
		if len(subs) == 0 {
			subs = []string{""}
		}
		for _, s := range subs {
			args := []string{c.Name}
			if s != "" {
				args = append(args, s)
			}
			if c.Name == "completion" {
				if code, _, errs := cliRun(t, nil, "", c.Name, s); code != ExitOK {
					t.Errorf("relay completion %s: exit %d: %s", s, code, errs)
				}
				continue
			}
			if code, _, errs := cliRun(t, nil, "", append(args, "-h")...); code != ExitOK {
				t.Errorf("relay %s -h: exit %d: %s", strings.Join(args, " "), code, errs)
			}
			for _, f := range c.Flags[s] {
				_, _, errs := cliRun(t, nil, "", append(args, f+"=1", "-h")...)
				if strings.Contains(errs, "unknown flag") {
					t.Errorf("completion offers %s for relay %s, which does not accept it: %s", f, strings.Join(args, " "), errs)
				}
			}
		}
	}
	// What the synopsis reading must find, so that it cannot quietly
	// find nothing.
	for _, want := range []struct{ cmd, sub, flag string }{
		{"audit", "show", "--outcome"}, {"audit", "verify", "--key"}, {"totp", "enroll", "--light"},
		{"run", "", "--api-url"}, {"doctor", "", "--offline"}, {"notify", "", "--file"},
	} {
		i := slices.IndexFunc(cmds, func(c CommandDoc) bool { return c.Name == want.cmd })
		if i < 0 || !slices.Contains(cmds[i].Flags[want.sub], want.flag) {
			t.Errorf("relay %s %s: completion lacks %s", want.cmd, want.sub, want.flag)
		}
	}
}

// TestCompletionBash sources the bash script into a real bash and asks it
// what a person pressing Tab would get.
func TestCompletionBash(t *testing.T) {
	bash, err := osexec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script, err := Completion("bash")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "relay.bash")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"relay", "au"}, "audit"},
		{[]string{"relay", "co"}, "completion"},
		{[]string{"relay", "audit", ""}, "init verify show archive report witness"},
		{[]string{"relay", "audit", "show", "--js"}, "--json"},
		{[]string{"relay", "doctor", "--o"}, "--offline"},
		{[]string{"relay", "completion", "z"}, "zsh"},
		{[]string{"relay", "tot"}, "totp"},
	} {
		var q []string
		for _, w := range c.words {
			q = append(q, "'"+w+"'")
		}
		prog := ". " + f + "\nCOMP_WORDS=(" + strings.Join(q, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(c.words)-1) + "\n_relay\necho \"${COMPREPLY[*]}\"\n"
		out, err := osexec.Command(bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != c.want {
			t.Errorf("Tab after %q: got %q, want %q", strings.Join(c.words, " "), got, c.want)
		}
	}
}

// TestCompletionScriptsParse: each script is valid for its shell, where
// the shell is installed.
func TestCompletionScriptsParse(t *testing.T) {
	for _, c := range []struct{ shell, check string }{
		{"bash", "-n"}, {"zsh", "-n"}, {"fish", "--no-execute"},
	} {
		t.Run(c.shell, func(t *testing.T) {
			sh, err := osexec.LookPath(c.shell)
			if err != nil {
				t.Skipf("%s is not installed", c.shell)
			}
			script, err := Completion(c.shell)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "relay."+c.shell)
			if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := osexec.Command(sh, c.check, f).CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", c.shell, c.check, err, out)
			}
		})
	}
	if code, _, errs := cliRun(t, nil, "", "completion", "tcsh"); code != ExitUsage || !strings.Contains(errs, `unknown shell "tcsh"`) {
		t.Errorf("relay completion tcsh: got exit %d %q, want a usage error", code, errs)
	}
}
