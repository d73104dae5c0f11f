package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPlaygroundRefusesAConfiguredBotAPI: a config that names a Bot API,
// the real one or any other, is refused in one line and a hint, before
// anything is created.
func TestPlaygroundRefusesAConfiguredBotAPI(t *testing.T) {
	for _, url := range []string{"https://api.telegram.org", "http://127.0.0.1:8081"} {
		t.Run(url, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			cfg := filepath.Join(t.TempDir(), "relay.yaml")
			text := "auth: {owner_id: 42}\ntelegram:\n  api_url: " + url + "\ncommands:\n  up: {argv: [/usr/bin/uptime]}\n"
			if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := cliRun(t, nil, "", "playground", "--config", cfg)
			want := "relay: error: playground: " + cfg + `:3:12: telegram.api_url is "` + url + `", and the playground talks only to its own embedded Bot API` + "\n" +
				"relay: hint: run the playground on a copy of the config without telegram.api_url; relay run keeps using the original\n"
			if code != ExitConfig || stdout != "" || stderr != want {
				t.Errorf("got %d, stdout %q, stderr:\n%s\nwant %d and stderr:\n%s", code, stdout, stderr, ExitConfig, want)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("a refused playground left %v in TMPDIR", ents)
			}
		})
	}
}

func TestPlaygroundUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"-h", []string{"playground", "-h"}, ExitOK, playgroundUsage, ""},
		{"help playground", []string{"help", "playground"}, ExitOK, playgroundUsage, ""},
		{"a missing config", []string{"playground", "--config", missing}, ExitNotSetup, "",
			"relay: error: no config file " + missing + "\nrelay: hint: leave out --config to try the built-in read-only policy\n"},
		{"an argument", []string{"playground", "x"}, ExitUsage, "", usageLines(`playground: unexpected argument "x"`, "playground")},
		{"a typo", []string{"playground", "--confg", "x"}, ExitUsage, "", usageLines("playground: unknown flag --confg (did you mean --config?)", "playground")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(t, nil, "", tc.args...)
			if code != tc.code || stdout != tc.stdout || stderr != tc.stderr {
				t.Errorf("got %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}
