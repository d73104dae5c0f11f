package cli

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// TestPlaygroundTouchesNoRealSecret runs the playground where a real relay
// is set up: a config in the default location pointing at Telegram with a
// token file, and a session bus. The playground uses none of it: it runs
// the built-in policy, never connects to the bus (where the keyring is),
// prints its URL, serves the page there, and at exit leaves nothing behind.
func TestPlaygroundTouchesNoRealSecret(t *testing.T) {
	home := t.TempDir()
	tokenFile := filepath.Join(home, "token")
	os.WriteFile(tokenFile, []byte("1234567890:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0o600)
	os.MkdirAll(filepath.Join(home, ".config", "relay"), 0o700)
	os.WriteFile(filepath.Join(home, ".config", "relay", "relay.yaml"), []byte("auth: {owner_id: 42}\ntelegram: {api_url: \"https://api.telegram.org\", token_file: "+tokenFile+"}\n"), 0o600)

	bus := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", bus)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dialed atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			c.Close()
		}
	}()
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+bus)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	vars := map[string]string{"HOME": home, "DBUS_SESSION_BUS_ADDRESS": "unix:path=" + bus}
	pr, pw := io.Pipe()
	errb := &syncWriter{}
	env := &Env{Stdin: strings.NewReader(""), Stdout: pw, Stderr: errb, Getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- Main(ctx, []string{"playground", "--log-format", "json"}, env)
		pw.Close()
	}()

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out []string
	var pageURL, dir string
	guard := time.After(60 * time.Second) // a hang guard only
	for pageURL == "" || dir == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("playground ended early: %q, stderr %s", out, errb.String())
			}
			out = append(out, l)
			if m := regexp.MustCompile(`^    open  (http://127\.0\.0\.1:[0-9]+/[A-Za-z0-9_-]{43}/)$`).FindStringSubmatch(l); m != nil {
				pageURL = m[1]
			}
			if m := regexp.MustCompile(`^  state .* in (\S+), removed at exit$`).FindStringSubmatch(l); m != nil {
				dir = m[1]
			}
		case <-guard:
			t.Fatalf("no URL and state line in %q", out)
		}
	}
	if !strings.Contains(strings.Join(out, "\n"), "policy    the built-in read-only policy: ") {
		t.Errorf("banner does not name the built-in policy:\n%s", strings.Join(out, "\n"))
	}
	if !strings.HasPrefix(dir, tmp+"/") {
		t.Errorf("state dir %s is not in TMPDIR %s", dir, tmp)
	}
	resp, err := http.Get(pageURL + "info")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"policy":"the built-in read-only policy"`) {
		t.Errorf("page info: got %s %s", resp.Status, body)
	}
	u, _ := url.Parse(pageURL)
	if resp, err := http.Get("http://" + u.Host + "/"); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("the page without its token: got %v, want 403", err)
	} else {
		resp.Body.Close()
	}

	cancel()
	if c := <-code; c != ExitOK {
		t.Errorf("exit: got %d, want 0; stderr %s", c, errb.String())
	}
	for l := range lines {
		out = append(out, l)
	}
	if last := out[len(out)-1]; !regexp.MustCompile(`^relay playground stopped: [0-9]+ audit records, chain verified with the throwaway K0; removed ` + regexp.QuoteMeta(dir) + `$`).MatchString(last) {
		t.Errorf("last line: got %q", last)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir %s after exit: %v, want it gone", dir, err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("TMPDIR after exit: %v, want empty", ents)
	}
	if n := dialed.Load(); n != 0 {
		t.Errorf("the playground connected to the session bus %d times", n)
	}
	if strings.Contains(errb.String(), "AAAAAAAAAAAAAAAAAAAA") {
		t.Errorf("stderr shows the token file's token: %s", errb.String())
	}
}

// syncWriter lets the daemon's logger and the CLI share a buffer.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
