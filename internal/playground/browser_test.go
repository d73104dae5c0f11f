package playground

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// tab is one page of a headless chromium, with what it requested and
// every error its console showed.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []string
	errors   []string
}

// browse starts Debian's chromium, headless, with a fresh profile and
// nothing that reaches for the network by itself (the machine's network
// may be closed, and a stray request would be noise in the checks).
func browse(t *testing.T, width, height int) *tab {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("chromium is not installed (apt-get install chromium; CI installs it)")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(hangGuard(t),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &tab{t: t, ctx: ctx}
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	console := chromedp.Console(ctx)
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.requests = append(b.requests, ev.Request.URL)
			b.mu.Unlock()
		}
	}()
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errors = append(b.errors, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// wait waits until the expression is truthy in the page, and returns its
// value; it fails with what the chat shows when it never is.
func wait[T any](b *tab, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		chat, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById('chat').innerText`))
		b.t.Fatalf("waiting for %s: %v\nthe chat shows:\n%s", what, err, chat)
	}
	return v
}

// send types a message into the message box and presses the send
// button. (Enter sends too, but the protocol's synthetic key events type
// the newline even when the page cancels the key.)
func (b *tab) send(text string) {
	b.t.Helper()
	b.do("type "+text, chromedp.SendKeys(chromedp.ID("text"), text), chromedp.Click(chromedp.ID("send")))
	wait[bool](b, "the message box emptied", `document.getElementById('text').value === ''`)
}

func (b *tab) click(what, css string) {
	b.t.Helper()
	b.do("click "+what, chromedp.Click(chromedp.CSS(css)))
}

// botRow is a JavaScript expression for the ID of the last bot message
// whose text contains s.
func botRow(s string) string {
	return fmt.Sprintf(`(() => { const r = [...document.querySelectorAll('.row.in')].filter(r => r.querySelector('.text') && r.querySelector('.text').textContent.includes(%q)).pop(); return r ? r.dataset.id : ''; })()`, s)
}

// screenshot saves the phone, to look at: in the test's directory, and
// where $RELAY_PLAYGROUND_SCREENSHOT says (for docs/playground.png).
func (b *tab) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.ID("phone")))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	paths := []string{filepath.Join(b.t.TempDir(), name)}
	if dir := os.Getenv("RELAY_PLAYGROUND_SCREENSHOTS"); dir != "" {
		paths = append(paths, filepath.Join(dir, name))
	}
	for _, p := range paths {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.t.Logf("screenshot: %s", paths[len(paths)-1])
}

// checkOwnOrigin fails if the page requested anything but the
// playground's own URLs, or if its console showed an error (a refused
// script, style or request, a violation of its content security policy).
func (b *tab) checkOwnOrigin(pageURL string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		b.t.Error("no requests seen")
	}
	for _, r := range b.requests {
		if !strings.HasPrefix(r, pageURL) {
			b.t.Errorf("the page requested %s, outside %s", r, pageURL)
		}
	}
	for _, e := range b.errors {
		b.t.Errorf("console: %s", e)
	}
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
