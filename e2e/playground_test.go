package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestPlaygroundTouchesNothingReal runs relay playground where a real
// relay is set up: a config in the default location pointing at Telegram
// with a token file, a bot token in the environment, and a session bus
// (where the keyring lives). The playground uses none of it: it runs the
// built-in policy, never connects to the bus, never shows the token,
// prints a URL whose page logs in with the code it shows, and at exit
// leaves nothing behind.
func TestPlaygroundTouchesNothingReal(t *testing.T) {
	home := t.TempDir()
	tokenFile := filepath.Join(home, "token")
	must(t, os.WriteFile(tokenFile, []byte(testToken), 0o600))
	must(t, os.MkdirAll(filepath.Join(home, ".config", "relay"), 0o700))
	must(t, os.WriteFile(filepath.Join(home, ".config", "relay", "relay.yaml"),
		[]byte("auth: {owner_id: 42}\ntelegram: {api_url: \"https://api.telegram.org\", token_file: "+tokenFile+"}\n"), 0o600))

	bus := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", bus)
	must(t, err)
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
	tmp := t.TempDir()

	p := startPlayground(t, []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + home,
		"TMPDIR=" + tmp,
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + bus,
		"RELAY_BOT_TOKEN=" + testToken,
	})
	dir := p.dir
	banner := strings.Join(p.out, "\n")
	for _, want := range []string{"policy    the built-in read-only policy: ", "commands  run for real on this machine"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if !strings.HasPrefix(dir, tmp+"/") {
		t.Errorf("state dir %s is not in TMPDIR %s", dir, tmp)
	}

	// The page logs in with the code it shows, as the newcomer does.
	if info := p.get(t, "info"); !strings.Contains(info, `"policy":"the built-in read-only policy"`) {
		t.Errorf("page info: %s", info)
	}
	var totp struct{ Code string }
	must(t, json.Unmarshal([]byte(p.get(t, "totp")), &totp))
	events := p.events(t)
	p.send(t, "/login "+totp.Code)
	expectEvent(t, events, "logged in; the session ends")
	if resp, err := http.Get(p.origin + "/"); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("the page without its token: got %v, want 403", err)
	} else {
		resp.Body.Close()
	}

	p.stop(t)
	if last := p.out[len(p.out)-1]; !regexp.MustCompile(`^relay playground stopped: [0-9]+ audit records, chain verified with the throwaway K0; removed ` + regexp.QuoteMeta(dir) + `$`).MatchString(last) {
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
	if strings.Contains(p.stderr.String()+strings.Join(p.out, "\n"), testToken) {
		t.Errorf("the playground shows the environment's or the token file's token")
	}
}

// playgroundProc is a relay playground child process.
type playgroundProc struct {
	cmd    *osexec.Cmd
	stderr *syncBuffer
	exited chan error
	lines  chan string
	out    []string
	url    string
	dir    string
	origin string
}

// startPlayground starts relay playground with args and env, and reads
// its banner: the page's URL and the state directory.
func startPlayground(t *testing.T, env []string, args ...string) *playgroundProc {
	t.Helper()
	p := &playgroundProc{stderr: &syncBuffer{}, exited: make(chan error, 1), lines: make(chan string, 100)}
	p.cmd = osexec.Command(relayBin, append([]string{"playground", "--log-format", "json"}, args...)...)
	p.cmd.Env = env
	// A test that dies (a timeout's panic runs no cleanup) takes its
	// playground with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if cg := jobCgroups(t); cg != nil {
		p.cmd.SysProcAttr.UseCgroupFD, p.cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
	}
	stdout, err := p.cmd.StdoutPipe()
	must(t, err)
	p.cmd.Stderr = p.stderr
	must(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	guard := time.After(60 * time.Second) // a hang guard only
	for done := false; !done; {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("playground ended early: %q\n%s", p.out, p.stderr.String())
			}
			p.out = append(p.out, l)
			if m := regexp.MustCompile(`^    open  (http://127\.0\.0\.1:[0-9]+/[A-Za-z0-9_-]{43}/)$`).FindStringSubmatch(l); m != nil {
				p.url = m[1]
			}
			if m := regexp.MustCompile(`^  state .* in (\S+), removed at exit$`).FindStringSubmatch(l); m != nil {
				p.dir = m[1]
			}
			done = l == "Ctrl-C stops it."
		case <-guard:
			t.Fatalf("no URL and state line in %q", p.out)
		}
	}
	if p.url == "" || p.dir == "" {
		t.Fatalf("no URL or state line in the banner:\n%s", strings.Join(p.out, "\n"))
	}
	u, _ := url.Parse(p.url)
	p.origin = "http://" + u.Host
	return p
}

// get fetches a page resource as the page does.
func (p *playgroundProc) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(p.url + path)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	return string(b)
}

// send types a message in the page.
func (p *playgroundProc) send(t *testing.T, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	req, _ := http.NewRequest("POST", p.url+"send", strings.NewReader(string(body)))
	req.Header.Set("Origin", p.origin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("send %q: %s", text, resp.Status)
	}
}

// events follows the page's event stream.
func (p *playgroundProc) events(t *testing.T) *bufio.Scanner {
	t.Helper()
	// The stream never ends by itself: a hang guard bounds the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", p.url+"events", nil)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	t.Cleanup(func() {
		resp.Body.Close()
		cancel()
	})
	return bufio.NewScanner(resp.Body)
}

// expectEvent reads the event stream up to a line that contains want.
func expectEvent(t *testing.T, sc *bufio.Scanner, want string) {
	t.Helper()
	expectEvents(t, sc, want)
}

// expectEvents reads the event stream until lines containing each of
// wants have been seen, in any order.
func expectEvents(t *testing.T, sc *bufio.Scanner, wants ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, w := range wants {
		left[w] = true
	}
	var seen []string
	for len(left) > 0 && sc.Scan() {
		for w := range left {
			if strings.Contains(sc.Text(), w) {
				delete(left, w)
			}
		}
		seen = append(seen, sc.Text())
	}
	if len(left) > 0 {
		t.Fatalf("the event stream ended without %q (%v) after:\n%s", wants, sc.Err(), strings.Join(seen, "\n"))
	}
}

// stop interrupts the playground as Ctrl-C does and waits for it.
func (p *playgroundProc) stop(t *testing.T) {
	t.Helper()
	must(t, p.cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Errorf("exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second): // a hang guard only
		t.Fatal("the playground did not stop on SIGINT")
	}
	for l := range p.lines {
		p.out = append(p.out, l)
	}
}

// TestPlaygroundReloadsItsPolicy: the policy author edits the file and
// sends SIGHUP, as the banner says; a policy that names a Bot API is
// refused in the chat and the old one kept.
func TestPlaygroundReloadsItsPolicy(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "relay.yaml")
	policy := "auth: {owner_id: 42}\ncommands:\n  hello: {argv: [/usr/bin/echo, hello]}\n"
	must(t, os.WriteFile(cfg, []byte(policy), 0o600))
	p := startPlayground(t, []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}, "--config", cfg)
	banner := strings.Join(p.out, "\n")
	if !strings.Contains(banner, "policy    "+cfg+": 1 commands (hello)") || !strings.Contains(banner, "reload    edit "+cfg+", then: kill -HUP ") {
		t.Errorf("banner:\n%s", banner)
	}
	events := p.events(t)
	expectEvent(t, events, `"command":"hello"`)

	must(t, os.WriteFile(cfg, []byte(policy+"  world: {argv: [/usr/bin/echo, world]}\n"), 0o600))
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	expectEvents(t, events, `"command":"world"`, "config reloaded: 2 commands")

	must(t, os.WriteFile(cfg, []byte("telegram: {api_url: \"https://api.telegram.org\"}\n"+policy), 0o600))
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	expectEvent(t, events, "config reload failed, keeping the old one: "+cfg+":1:21: telegram.api_url is")
	p.stop(t)
}
