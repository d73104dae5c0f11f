package policy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/errors")

// TestGoldenErrors loads each bad file in testdata/errors and compares
// every error it reports with the .golden file next to it.
func TestGoldenErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(filepath.Base(f), data)
			var list *ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("got %v, want an *ErrorList", err)
			}
			for _, e := range *list {
				if e.Line == 0 && filepath.Base(f) != "empty.yaml" {
					t.Errorf("error without a position: %v", e)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Parse("relay.yaml", []byte("auth: {owner_id: 1}\nstate_dir: /tmp\naudit: {dir: /tmp}\ncommands:\n  up:\n    argv: [/usr/bin/true]\n    timout: 10s\n"))
	want := `relay.yaml:7:5: unknown key "timout" (did you mean "timeout"?)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

const minimal = `
state_dir: /var/lib/relay
audit: {dir: /var/log/relay}
auth: {owner_id: 42}
commands:
  up:
    argv: [/usr/bin/true]
`

func TestDefaults(t *testing.T) {
	cfg, err := Parse("relay.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Lookup("up")
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"api_url", cfg.Telegram.APIURL, "https://api.telegram.org"},
		{"mode", cfg.Telegram.Mode, "polling"},
		{"poll_timeout", cfg.Telegram.PollTimeout, 25 * time.Second},
		{"max_document_bytes", cfg.Telegram.MaxDocumentBytes, int64(50 << 20)},
		{"max_body_bytes", cfg.Telegram.Webhook.MaxBodyBytes, int64(1 << 20)},
		{"max_message_age", cfg.Auth.MaxMessageAge, 60 * time.Second},
		{"session_idle", cfg.Auth.SessionIdle, 15 * time.Minute},
		{"session_max", cfg.Auth.SessionMax, 12 * time.Hour},
		{"login_attempts", cfg.Auth.LoginAttempts, 3},
		{"login_window", cfg.Auth.LoginWindow, 30 * time.Second},
		{"lockout", cfg.Auth.LockoutBase, time.Minute},
		{"lockout_max", cfg.Auth.LockoutMax, 24 * time.Hour},
		{"recovery_codes", cfg.Auth.RecoveryCodes, 10},
		{"rotate_bytes", cfg.Audit.RotateBytes, int64(64 << 20)},
		{"checkpoint_interval", cfg.Audit.CheckpointInterval, time.Hour},
		{"max_concurrent", cfg.Limits.MaxConcurrent, 4},
		{"default_timeout", cfg.Limits.DefaultTimeout, 30 * time.Second},
		{"max_timeout", cfg.Limits.MaxTimeout, 10 * time.Minute},
		{"default_max_output", cfg.Limits.DefaultMaxOutput, int64(16 << 20)},
		{"max_output", cfg.Limits.MaxOutput, int64(1 << 30)},
		{"secrets.keyring", cfg.Secrets.NoKeyring, false},
		{"command timeout", c.Timeout, 30 * time.Second},
		{"command max_output", c.MaxOutput, int64(16 << 20)},
		{"command concurrency", c.Concurrency, 1},
		{"command workdir", c.Workdir, "/"},
		{"command description", c.Description, "run true"},
		{"command sandbox", c.Sandbox.Disabled, false},
		{"command line", c.Line, 6},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestFullSchema(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, []byte("x"), 0o600)
	src := strings.ReplaceAll(`
state_dir: /var/lib/relay
telegram: {api_url: "http://127.0.0.1:8081", mode: webhook, poll_timeout: 20s, max_document_bytes: 20MB, token_file: /etc/relay/token, webhook: {listen: "127.0.0.1:8443", url: "https://relay.example.org", tls_cert: CERT, tls_key: CERT, max_body_bytes: 2MiB}}
auth: {owner_id: 123456789, max_message_age: 30s, session_idle: 5m, session_max: 1h, login_attempts: 5, login_window: 1m, lockout: 2m, lockout_max: 1h, recovery_codes: 0}
audit: {dir: /var/log/relay, rotate_bytes: 1MiB, checkpoint_interval: 0s}
limits: {max_concurrent: 8, default_timeout: 10s, max_timeout: 1h, default_max_output: 1MiB, max_output: 2GiB}
secrets: {keyring: false}
commands:
  restart:
    description: restart a service
    argv: [/usr/bin/systemctl, restart, "{unit}.service"]
    params:
      - {name: unit, type: enum, values: [nginx, caddy], description: the unit}
    timeout: 20s
    workdir: /tmp
    env: {FOO: bar, N: 1}
    max_output: 4096
    concurrency: 2
    confirm: true
    reauth: true
    sandbox: {read: [/var/log], write: [/tmp], connect_ports: [1883, 443], namespaces: true, cpu: 10s, nofile: 256, fsize: 64MiB, address_space: 4GiB, procs: 64}
`, "CERT", cert)
	cfg, err := Parse("full.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Lookup("restart")
	s := c.Sandbox
	if cfg.Telegram.MaxDocumentBytes != 20e6 || cfg.Telegram.Webhook.MaxBodyBytes != 2<<20 || cfg.Auth.RecoveryCodes != 0 ||
		cfg.Audit.CheckpointInterval != 0 || !cfg.Secrets.NoKeyring || c.MaxOutput != 4096 || !c.Confirm || !c.Reauth || c.Env["N"] != "1" ||
		s.CPU != 10*time.Second || s.FileSize != 64<<20 || s.AddressSpace != 4<<30 || s.Procs != 64 || len(s.ConnectPorts) != 2 || !s.ObsoleteNamespaces {
		t.Errorf("decoded config differs from the file: %+v %+v", cfg, c)
	}
}

func TestOwnerRequired(t *testing.T) {
	_, err := Parse("r.yaml", []byte("state_dir: /tmp\naudit: {dir: /tmp}\n"))
	if err == nil || !strings.Contains(err.Error(), "auth.owner_id is required") {
		t.Errorf("got %v, want owner_id required", err)
	}
}

func TestCommandsKeepFileOrder(t *testing.T) {
	src := minimal + "  zz:\n    argv: [/usr/bin/true]\n  aa:\n    argv: [/usr/bin/true]\n"
	cfg, err := Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cfg.Commands {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "up zz aa" {
		t.Errorf("order: got %q, want \"up zz aa\"", got)
	}
	if cfg.Lookup("nope") != nil || cfg.Lookup("") != nil {
		t.Error("Lookup found a command that is not allowlisted")
	}
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "relay.yaml")
	os.WriteFile(p, []byte(minimal), 0o600)
	cfg, err := Load(p)
	if err != nil || cfg.Source != p {
		t.Fatalf("Load: %v, source %q", err, cfg.Source)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(big, []byte(minimal+"#"+strings.Repeat("x", maxFileBytes)), 0o600)
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a 1 MiB+ file: got %v, want refused", err)
	}
}

func TestDefaultPaths(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         map[string]string
		state, logs string
	}{
		{"systemd", map[string]string{"STATE_DIRECTORY": "/var/lib/relay", "LOGS_DIRECTORY": "/var/log/relay", "HOME": "/root"}, "/var/lib/relay", "/var/log/relay"},
		{"systemd list", map[string]string{"STATE_DIRECTORY": "/var/lib/relay:/var/lib/other"}, "/var/lib/relay", "/var/lib/relay/audit"},
		{"xdg", map[string]string{"XDG_STATE_HOME": "/home/u/.st", "HOME": "/home/u"}, "/home/u/.st/relay", "/home/u/.st/relay/audit"},
		{"home", map[string]string{"HOME": "/home/u"}, "/home/u/.local/state/relay", "/home/u/.local/state/relay/audit"},
		{"relative xdg ignored", map[string]string{"XDG_STATE_HOME": "rel", "HOME": "/home/u"}, "/home/u/.local/state/relay", "/home/u/.local/state/relay/audit"},
		{"nothing", map[string]string{}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPaths(func(k string) string { return tc.env[k] })
			if p.StateDir != tc.state || p.AuditDir != tc.logs {
				t.Errorf("got %+v, want state %q audit %q", p, tc.state, tc.logs)
			}
		})
	}
	t.Run("used by Parse", func(t *testing.T) {
		t.Setenv("STATE_DIRECTORY", "/srv/state")
		t.Setenv("LOGS_DIRECTORY", "/srv/logs")
		cfg, err := Parse("r.yaml", []byte("auth: {owner_id: 1}\n"))
		if err != nil || cfg.StateDir != "/srv/state" || cfg.Audit.Dir != "/srv/logs" {
			t.Errorf("got %v %+v", err, cfg)
		}
	})
	t.Run("no default is an error", func(t *testing.T) {
		for _, k := range []string{"STATE_DIRECTORY", "LOGS_DIRECTORY", "XDG_STATE_HOME", "HOME"} {
			t.Setenv(k, "")
		}
		if _, err := Parse("r.yaml", []byte("auth: {owner_id: 1}\n")); err == nil || !strings.Contains(err.Error(), "state_dir: no path") {
			t.Errorf("got %v, want state_dir missing", err)
		}
	})
}

func TestDefault(t *testing.T) {
	cfg, err := Default(func(k string) string { return map[string]string{"HOME": "/home/u"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.OwnerID != 0 {
		t.Errorf("owner: got %d, want 0 for the caller to fill in", cfg.Auth.OwnerID)
	}
	if len(cfg.Commands) == 0 {
		t.Fatal("no diagnostics at all")
	}
	for _, c := range cfg.Commands {
		if c.Sandbox.Disabled || len(c.Params) != 0 || c.Sandbox.Network || len(c.Sandbox.Write) != 0 {
			t.Errorf("/%s is not a sandboxed, parameterless, read-only diagnostic", c.Name)
		}
		if _, err := os.Stat(c.Argv[0]); err != nil {
			t.Errorf("/%s kept although %s is missing", c.Name, c.Argv[0])
		}
		if _, err := c.Bind(nil); err != nil {
			t.Errorf("/%s does not bind: %v", c.Name, err)
		}
	}
	if ws := Warnings(cfg); len(ws) != 0 {
		t.Errorf("the default policy has warnings: %v", ws)
	}
}

func TestDefaultDropsMissingPrograms(t *testing.T) {
	orig := defaultYAML
	defer func() { defaultYAML = orig }()
	defaultYAML = []byte("commands:\n  ok:\n    argv: [/usr/bin/true]\n  gone:\n    argv: [/nonexistent/systemctl]\n")
	cfg, err := Default(func(string) string { return "/home/u" })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Commands) != 1 || cfg.Lookup("gone") != nil {
		t.Errorf("got %d commands, want only /ok", len(cfg.Commands))
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"4096", 4096, true}, {"64MiB", 64 << 20, true}, {"1MB", 1e6, true}, {"10B", 10, true},
		{"1GiB", 1 << 30, true}, {"2TB", 2e12, true}, {"1G", 0, false}, {"1.5MiB", 0, false}, {"-1", 0, false},
		{"", 0, false}, {"MiB", 0, false}, {"1 MiB", 0, false}, {"99999999999TiB", 0, false}, {"1mib", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("got %d, %v; want %d, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	src := strings.ReplaceAll(`
state_dir: /tmp
audit: {dir: /tmp}
auth: {owner_id: 1}
commands:
  shell:
    argv: [/bin/sh, -c, "uptime"]
    sandbox: none
  net:
    argv: [/usr/bin/true]
    sandbox: {network: true, write: [DIR]}
  other:
    argv: [/usr/bin/true]
    workdir: DIR
    sandbox: {write: [DIR]}
  wipe:
    argv: [/usr/bin/rm, -f, /tmp/x]
  dash:
    argv: [/usr/bin/echo, "{v}"]
    params: [{name: v, type: enum, values: [-n], allow_dash: true}]
    env: {LD_PRELOAD: /x.so}
`, "DIR", dir)
	cfg, err := Parse("w.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, w := range Warnings(cfg) {
		all = append(all, w.String())
	}
	got := strings.Join(all, "\n")
	for _, want := range []string{
		"w.yaml:6: warning: /shell: runs without a sandbox",
		"w.yaml:6: warning: /shell: argv[0] sh interprets",
		"w.yaml:9: warning: /net: has unrestricted network access",
		"w.yaml:12: warning: /other: writable directory " + dir + " is shared with /net",
		"w.yaml:12: warning: /other: workdir " + dir + " is writable by /net",
		"w.yaml:16: warning: /wipe: looks destructive",
		"w.yaml:18: warning: /dash: parameter \"v\" may begin with '-'",
		"w.yaml:18: warning: /dash: env sets LD_PRELOAD",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q; got:\n%s", want, got)
		}
	}
}

func TestSummaryHidesEnvValues(t *testing.T) {
	src := minimal + "    env: {API_KEY: s3cr3t-value}\n"
	cfg, err := Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	cfg.Summary(&b)
	out := b.String()
	if strings.Contains(out, "s3cr3t-value") {
		t.Errorf("Summary printed an env value:\n%s", out)
	}
	for _, want := range []string{"/up", "argv: /usr/bin/true", "env API_KEY", "timeout 30s", "limits: 4 concurrent"} {
		if !strings.Contains(out, want) {
			t.Errorf("Summary lacks %q:\n%s", want, out)
		}
	}
}

func TestErrorsNeverQuoteEnvValues(t *testing.T) {
	src := minimal + "    env: {\"BAD-NAME\": s3cr3t-value, OK: \"a\\0b-s3cr3t\"}\n"
	_, err := Parse("r.yaml", []byte(src))
	if err == nil {
		t.Fatal("bad env accepted")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("an env value leaked into an error: %v", err)
	}
}

// TestCheckAPIURL: the exported check is the loader's own, so a URL that
// first-run setup accepts is one the written config loads with.
func TestCheckAPIURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string // "" = accepted
	}{
		{"https://api.telegram.org", ""},
		{"http://127.0.0.1:8081", ""},
		{"http://localhost:8081/", ""},
		{"http://[::1]:8081", ""},
		{"http://192.168.1.2:8081", "telegram.api_url: plain http to a non-loopback host (the bot token travels in the URL: use https, or http only to a local Bot API server on loopback)"},
		{"ftp://example.org", `telegram.api_url: want an https URL, got scheme "ftp"`},
		{"api.telegram.org", `telegram.api_url: invalid URL "api.telegram.org": want scheme://host[:port][/path], without credentials, query or fragment (use a base URL such as "https://api.telegram.org")`},
		{"https://user:pw@example.org", `telegram.api_url: invalid URL "https://user:xxxxx@example.org": want scheme://host[:port][/path], without credentials, query or fragment (use a base URL such as "https://api.telegram.org")`},
		// The password is never quoted back.
		{"https://user:hunter2@example.org/?q", `telegram.api_url: invalid URL "https://user:xxxxx@example.org/?q": want scheme://host[:port][/path], without credentials, query or fragment (use a base URL such as "https://api.telegram.org")`},
	} {
		err := CheckAPIURL(tc.url)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("CheckAPIURL(%q): got %q, want %q", tc.url, got, tc.want)
		}
		src := minimal + "telegram: {api_url: \"" + tc.url + "\"}\n"
		_, lerr := Parse("r.yaml", []byte(src))
		if (lerr == nil) != (tc.want == "") {
			t.Errorf("Parse with api_url %q: got %v, want the same verdict as CheckAPIURL", tc.url, lerr)
		}
	}
}
