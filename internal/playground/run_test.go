package playground

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testPolicy has a command of each kind a newcomer meets: one that
// answers at once (with markup in its output that must stay text), one
// that asks first, a long job whose output is a document, and one long
// enough to be stopped.
const testPolicy = `auth: {owner_id: 4242}
commands:
  hello:
    description: say hello
    argv: [/usr/bin/echo, 'hello <img src=x onerror="window.pwned=1"> <b>not bold</b> & co']
  confirmrun:
    description: asks before it runs
    argv: [/usr/bin/echo, confirmed]
    confirm: true
  slow:
    description: a long job whose output is a document
    argv: [/bin/sh, -c, "echo working; sleep 3; seq 1 20000"]
    timeout: 30s
  tick:
    description: a long job, to stop from its draft
    argv: [/bin/sh, -c, "echo one; sleep 25; echo two"]
    timeout: 30s
`

// playground runs Run with the test policy until the test ends, and
// returns where its page is and what it returned, once it did.
type running struct {
	info   Info
	stop   context.CancelFunc
	result chan runResult
}

type runResult struct {
	res *Result
	err error
}

func startPlayground(t *testing.T, o Options) *running {
	t.Helper()
	if o.Config == nil {
		path := filepath.Join(t.TempDir(), "relay.yaml")
		if err := os.WriteFile(path, []byte(commandUserLine()+testPolicy), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadPolicy(path)
		if err != nil {
			t.Fatal(err)
		}
		o.Config, o.ConfigPath = cfg, path
	}
	o.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	o.Version = "test"
	ready := make(chan Info, 1)
	o.Ready = func(i Info) { ready <- i }
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stop: cancel, result: make(chan runResult, 1)}
	go func() {
		res, err := Run(ctx, o)
		r.result <- runResult{res, err}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.result:
		case <-time.After(30 * time.Second): // a hang guard only
			t.Error("the playground did not stop")
		}
	})
	select {
	case r.info = <-ready:
	case res := <-r.result:
		t.Fatalf("the playground stopped before it was ready: %v", res.err)
	case <-hangGuard(t).Done():
		t.Fatal("the playground never got ready")
	}
	return r
}

// end stops the playground and returns what Run returned.
func (r *running) end(t *testing.T) runResult {
	t.Helper()
	r.stop()
	select {
	case res := <-r.result:
		r.result <- res
		return res
	case <-hangGuard(t).Done():
		t.Fatal("the playground did not stop")
	}
	return runResult{}
}

// TestRunServesLoopbackOnly: the page is on 127.0.0.1, and on no other
// address of this machine; without the token it answers 403.
func TestRunServesLoopbackOnly(t *testing.T) {
	r := startPlayground(t, Options{})
	host, port, err := net.SplitHostPort(hostOf(t, r.info.URL))
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("page URL %s: want it on 127.0.0.1 (%v)", r.info.URL, err)
	}
	if !strings.HasSuffix(r.info.URL, "/") || len(strings.Trim(strings.TrimPrefix(r.info.URL, "http://"+host+":"+port), "/")) != 43 {
		t.Errorf("page URL %s: want a 256-bit token as its path", r.info.URL)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	others := 0
	for _, a := range addrs {
		ip, _, err := net.ParseCIDR(a.String())
		if err != nil || ip.IsLoopback() {
			continue
		}
		others++
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), port), 2*time.Second); err == nil {
			c.Close()
			t.Errorf("the page answers on %s too", ip)
		}
	}
	for _, other := range []string{"[::1]", "127.0.0.2"} {
		if c, err := net.DialTimeout("tcp", other+":"+port, 2*time.Second); err == nil {
			c.Close()
			t.Errorf("the page answers on %s too", other)
		}
	}
	t.Logf("checked %d non-loopback addresses", others)

	resp, err := http.Get("http://" + host + ":" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("without the token: got %s, want 403", resp.Status)
	}
	resp, err = http.Get(r.info.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<title>relay playground</title>") {
		t.Errorf("with the token: got %s", resp.Status)
	}

	res := r.end(t)
	if res.err != nil || !res.res.Verified || res.res.Records < 3 {
		t.Errorf("at exit: got %+v, %v; want a verified log of at least init, start and stop", res.res, res.err)
	}
	if _, err := os.Stat(r.info.Dir); !os.IsNotExist(err) {
		t.Errorf("state %s after exit: %v, want it removed", r.info.Dir, err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 2*time.Second); err == nil {
		c.Close()
		t.Error("the page still answers after exit")
	}
}

// TestRunKeepsStateInItsDirectory: everything the run writes is in its
// throwaway directory, private to its owner.
func TestRunKeepsStateInItsDirectory(t *testing.T) {
	base := t.TempDir()
	r := startPlayground(t, Options{TempDir: base})
	if filepath.Dir(r.info.Dir) != base {
		t.Fatalf("state in %s, want it in %s", r.info.Dir, base)
	}
	fi, err := os.Stat(r.info.Dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: got %v %v, want mode 0700", fi.Mode(), err)
	}
	for _, sub := range []string{"audit", "state"} {
		if _, err := os.Stat(filepath.Join(r.info.Dir, sub)); err != nil {
			t.Errorf("%s: %v", sub, err)
		}
	}
	r.end(t)
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

func TestRunTOTPCode(t *testing.T) {
	st := &state{totp: []byte("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")} // RFC 6238's SHA-1 secret
	for _, tc := range []struct {
		unix int64
		code string
		left int
	}{
		{59, "287082", 1},
		{1111111109, "081804", 1},
		{1111111111, "050471", 29},
	} {
		code, left := st.code(time.Unix(tc.unix, 0))
		if code != tc.code || left != tc.left {
			t.Errorf("code at %d: got %s, %d s left; want %s, %d", tc.unix, code, left, tc.code, tc.left)
		}
	}
}
