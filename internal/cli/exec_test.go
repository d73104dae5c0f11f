package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// execPolicy writes a policy whose commands run unsandboxed (the sandbox
// trampoline needs the relay binary; e2e covers sandboxed runs).
func execPolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "relay.yaml")
	src := `
state_dir: ` + filepath.Join(dir, "state") + `
audit: {dir: ` + filepath.Join(dir, "audit") + `}
auth: {owner_id: 1}
commands:
  args:
    argv: [/usr/bin/printf, "[%s]\n", "{a}", "{b}"]
    params:
      - {name: a, type: string, pattern: "^.{0,64}$", max_len: 64}
      - {name: b, type: enum, values: [x, y], optional: true, default: x}
    sandbox: none
  env:
    argv: [/usr/bin/env]
    env: {FOO: bar}
    sandbox: none
  fail:
    argv: [/bin/sh, -c, "echo out; echo err >&2; exit 7"]
    sandbox: none
  big:
    argv: [/usr/bin/head, -c, "100000", /dev/zero]
    max_output: 1000
    sandbox: none
  boxed:
    argv: [/usr/bin/true]
    sandbox: {cpu: 5s}
  stream:
    argv: [/bin/sh, -c, 'echo first; i=0; while [ ! -e "$0" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; if [ -e "$0" ]; then echo streamed; else echo not-streamed; fi', ` + filepath.Join(dir, "flag") + `]
    sandbox: none
  exit2:
    argv: [/bin/sh, -c, "exit 2"]
    sandbox: none
  exit3:
    argv: [/bin/sh, -c, "exit 3"]
    sandbox: none
  slow:
    argv: [/bin/sleep, "30"]
    timeout: 100ms
    sandbox: none
  killed:
    argv: [/bin/sh, -c, "kill -TERM $$"]
    sandbox: none
`
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Main(context.Background(), args, env)
	return code, out.String(), errb.String()
}

func TestExec(t *testing.T) {
	t.Setenv("RELAY_PARENT_SECRET", "do-not-inherit")
	cfg := execPolicy(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // substring
	}{
		{"ok", []string{"args", "hello world"}, 0, "[hello world]\n[x]\n", "exit 0, "},
		{"shell words are not split again", []string{"args", "a b", "y"}, 0, "[a b]\n[y]\n", ""},
		{"metacharacters stay one argument", []string{"args", "$(id); `id` | cat"}, 0, "[$(id); `id` | cat]\n[x]\n", ""},
		{"env is exactly the policy's", []string{"env"}, 0, "FOO=bar\nLANG=C.UTF-8\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", ""},
		{"a failing command is 6, its status on the status line", []string{"fail"}, ExitCommandFailed, "out\nerr\n", "exit 7, "},
		{"output capped", []string{"big"}, 0, strings.Repeat("\x00", 1000) + "\n[relay: output truncated, 99000 bytes dropped]\n", "100000 bytes, 99000 dropped"},
		{"option injection", []string{"args", "x", "-rf"}, ExitUsage, "", `must not begin with '-'`},
		{"newline refused", []string{"args", "a\nb"}, ExitUsage, "", "control character"},
		{"too many", []string{"args", "a", "x", "z"}, ExitUsage, "", "usage: /args <a: text, max 64 bytes> [b: x|y = x]"},
		{"unknown command", []string{"arg"}, ExitUsage, "", `no command "arg" in ` + cfg + ` (did you mean "args"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"exec", "--config", cfg}, tc.args...)...)
			if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("got code %d stdout %q stderr %q; want code %d stdout %q stderr containing %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
			if strings.Contains(stdout+stderr, "do-not-inherit") {
				t.Error("the relay's environment reached the command")
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	good := execPolicy(t)
	code, stdout, _ := runCLI(t, "policy", "check", good)
	if code != 0 {
		t.Fatalf("valid policy: got code %d", code)
	}
	for _, want := range []string{"/args <a: text, max 64 bytes> [b: x|y = x]", "/fail: argv[0] sh interprets", "/env: runs without a sandbox", "is valid: 10 command(s)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("auth: {owner_id: 1}\nstate_dir: /tmp\naudit: {dir: /tmp}\ncommands:\n  up:\n    argv: [/usr/bin/true]\n    timout: 1s\n    confirm: maybe\n"), 0o600)
	code, stdout, stderr := runCLI(t, "policy", "check", bad)
	if code != ExitConfig || stdout != "" {
		t.Errorf("invalid policy: got code %d stdout %q, want %d and nothing on stdout", code, stdout, ExitConfig)
	}
	for _, want := range []string{bad + `:7:5: unknown key "timout" (did you mean "timeout"?)`, bad + ":8:14: commands.up.confirm: want true or false", "2 error(s)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("errors lack %q:\n%s", want, stderr)
		}
	}
	if code, _, _ := runCLI(t, "policy", "check"); code != ExitUsage {
		t.Errorf("no FILE: got %d, want %d", code, ExitUsage)
	}
	if code, _, _ := runCLI(t, "policy", "check", filepath.Join(t.TempDir(), "missing.yaml")); code != ExitConfig {
		t.Errorf("missing file: got %d, want %d", code, ExitConfig)
	}
}

// flagWriter creates flag once it has been given want.
type flagWriter struct {
	bytes.Buffer
	want, flag string
}

func (w *flagWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains(w.String(), w.want) {
		if _, serr := os.Stat(w.flag); serr != nil {
			os.WriteFile(w.flag, nil, 0o600)
		}
	}
	return n, err
}

// TestExecStreams: output reaches stdout while the command still runs.
// The command waits (up to 5 s) for a file that the test's stdout creates
// on seeing the first line, and says whether it appeared: only streaming
// makes it appear in time.
func TestExecStreams(t *testing.T) {
	cfg := execPolicy(t)
	out := &flagWriter{want: "first\n", flag: filepath.Join(filepath.Dir(cfg), "flag")}
	var errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := Main(context.Background(), []string{"exec", "--config", cfg, "stream"}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := out.String(); got != "first\nstreamed\n" {
		t.Errorf("stdout: got %q, want the first line shown while the command ran", got)
	}
}

// TestExecStreamsUpToTheCap: streamed output stops at max_output and
// the truncation marker follows, exactly as the bot would send it.
func TestExecStreamsUpToTheCap(t *testing.T) {
	code, out, _ := runCLI(t, "exec", "--config", execPolicy(t), "big")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := strings.Repeat("\x00", 1000) + "\n[relay: output truncated, 99000 bytes dropped]\n"
	if out != want {
		t.Errorf("got %d bytes ending %q, want 1000 bytes and the marker", len(out), out[max(0, len(out)-60):])
	}
}
