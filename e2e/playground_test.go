package e2e

import (
	"bufio"
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

	cmd := osexec.Command(relayBin, "playground", "--log-format", "json")
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + home,
		"TMPDIR=" + tmp,
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + bus,
		"RELAY_BOT_TOKEN=" + testToken,
	}
	if cg := jobCgroups(t); cg != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	}
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
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
				t.Fatalf("playground ended early: %q\n%s", out, stderr.String())
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
	banner := strings.Join(out, "\n")
	for _, want := range []string{"policy    the built-in read-only policy: ", "commands  run for real on this machine"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if !strings.HasPrefix(dir, tmp+"/") {
		t.Errorf("state dir %s is not in TMPDIR %s", dir, tmp)
	}

	// The page logs in with the code it shows, as the newcomer does.
	get := func(path string) string {
		resp, err := http.Get(pageURL + path)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	if info := get("info"); !strings.Contains(info, `"policy":"the built-in read-only policy"`) {
		t.Errorf("page info: %s", info)
	}
	var totp struct{ Code string }
	must(t, json.Unmarshal([]byte(get("totp")), &totp))
	u, _ := url.Parse(pageURL)
	req, _ := http.NewRequest("POST", pageURL+"send", strings.NewReader(`{"text":"/login `+totp.Code+`"}`))
	req.Header.Set("Origin", "http://"+u.Host)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("send /login: %s", resp.Status)
	}
	events, err := http.Get(pageURL + "events")
	must(t, err)
	defer events.Body.Close()
	sc := bufio.NewScanner(events.Body)
	for sc.Scan() && !strings.Contains(sc.Text(), "logged in; the session ends") {
	}
	if sc.Err() != nil {
		t.Fatalf("events: %v", sc.Err())
	}
	if resp, err := http.Get("http://" + u.Host + "/"); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("the page without its token: got %v, want 403", err)
	} else {
		resp.Body.Close()
	}

	must(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second): // a hang guard only
		t.Fatal("the playground did not stop on SIGINT")
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
	if strings.Contains(stderr.String()+strings.Join(out, "\n"), testToken) {
		t.Errorf("the playground shows the environment's or the token file's token")
	}
}
