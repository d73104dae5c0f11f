package audit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browser is one tab of Debian's chromium, headless, with a fresh profile
// and nothing that reaches for the network by itself, and every request
// the page made.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []string
}

func openBrowser(t *testing.T) *browser {
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
	guard, cancelGuard := context.WithTimeout(context.Background(), 60*time.Second) // a hang guard, not a wait
	actx, cancelAlloc := chromedp.NewExecAllocator(guard,
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
		chromedp.WindowSize(1100, 800),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelGuard()
	})
	b := &browser{t: t, ctx: ctx}
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
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
	return b
}

func (b *browser) open(path string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate("file://"+path)); err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
}

func browserEval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// fetched is every request but the page's own.
func (b *browser) fetched(page string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, u := range b.requests {
		if u != "file://"+page {
			out = append(out, u)
		}
	}
	return out
}

// TestReportInBrowser opens the report in a real headless chromium: it
// renders, the timeline has a point per day for each series, an anomaly's
// link jumps to its record, the page makes no request at all, and the
// hostile text in the log is shown as text, never run.
func TestReportInBrowser(t *testing.T) {
	b := openBrowser(t)

	// The detector first: a page that does fetch is seen to.
	hits := atomic.Int32{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	control := filepath.Join(t.TempDir(), "control.html")
	os.WriteFile(control, []byte(fmt.Sprintf(`<!DOCTYPE html><img src="http://%s/x.png">`, ln.Addr())), 0o644)
	b.open(control)
	if got := b.fetched(control); len(got) == 0 {
		t.Fatal("the request listener saw nothing for a page that fetches an image: it proves nothing")
	}
	b.mu.Lock()
	b.requests = nil
	b.mu.Unlock()
	hits.Store(0)

	dir, k0, broken := reportLog(t)
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, []byte(renderReport(t, dir, ReportOptions{Title: dir, Verify: VerifyOptions{Key: k0}})), 0o644); err != nil {
		t.Fatal(err)
	}
	b.open(page)

	if title := browserEval[string](b, `document.title`); !strings.HasPrefix(title, "relay audit report") {
		t.Fatalf("got title %q: the page did not render", title)
	}
	if h := browserEval[float64](b, `document.getElementById('timeline').getBoundingClientRect().height`); h < 100 {
		t.Fatalf("the timeline is %v px high, want it drawn", h)
	}
	for _, s := range reportSeries {
		n := browserEval[int](b, fmt.Sprintf(`document.querySelectorAll('#timeline circle[data-series=%q]').length`, s.Name))
		if n != 5 {
			t.Fatalf("series %s has %d points in the page, want 5 (one a day)", s.Name, n)
		}
	}
	if n := browserEval[int](b, `document.querySelectorAll('#timeline polyline').length`); n != len(reportSeries) {
		t.Fatalf("got %d lines, want %d", n, len(reportSeries))
	}
	// A day's point says its count: day 1 had 6+1 requests.
	if got := browserEval[string](b, `document.querySelector('#timeline circle[data-series="commands"][data-day="2026-02-01"] title').textContent`); got != "2026-02-01: 7 commands" {
		t.Fatalf("got %q for day 1's commands", got)
	}

	// The chain's break is the first anomaly; its link jumps to its record.
	href := browserEval[string](b, `document.querySelector('#anomalies .anomaly[data-kind="verify"] a').getAttribute('href')`)
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`#anomalies .anomaly[data-kind="verify"] a`))); err != nil {
		t.Fatal(err)
	}
	target := browserEval[string](b, `(document.querySelector(':target') || {}).id || ''`)
	if "#"+target != href {
		t.Fatalf("after the click the target is %q, want %q", target, href)
	}
	if got := browserEval[string](b, `document.querySelector(':target td').textContent`); got != fmt.Sprint(broken) {
		t.Fatalf("the target row is seq %q, want %d", got, broken)
	}
	if top := browserEval[float64](b, `document.querySelector(':target').getBoundingClientRect().top`); top < 0 || top > 800 {
		t.Fatalf("the target row is at %v px, want it scrolled into view", top)
	}

	// The hostile text is there, as text; nothing of it ran or loaded.
	if n := browserEval[int](b, `document.scripts.length + document.images.length`); n != 0 {
		t.Fatalf("the page has %d scripts or images, want none", n)
	}
	if got := browserEval[bool](b, `[...document.querySelectorAll('#records td')].some(td => td.textContent.includes('<script>window.pwned=1</script>'))`); !got {
		t.Fatal("the record with <script> in its detail is not shown as text")
	}
	if got := browserEval[bool](b, `typeof window.pwned === 'undefined'`); !got {
		t.Fatal("the log's script ran")
	}
	if got := b.fetched(page); len(got) != 0 || hits.Load() != 0 {
		t.Fatalf("the report made requests: %v (%d reached the server)", got, hits.Load())
	}
}
