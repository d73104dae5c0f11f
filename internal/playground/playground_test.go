package playground

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestPlaygroundInBrowser is the newcomer's five minutes, in a real
// browser against the real daemon: open the URL, log in with the code the
// page shows, run a command, watch a long job's progress draft end in a
// document, open the document, stop another long job from its draft,
// press a confirmation's Run (its buttons then show disabled), use the
// "/" menu, and see the last checkpoint when the playground stops. Along the way: what the
// bot sent stays text, and the page fetches nothing from anywhere else.
func TestPlaygroundInBrowser(t *testing.T) {
	b := browse(t, 520, 1000)
	r := startPlayground(t, Options{})
	b.do("open the page", chromedp.Navigate(r.info.URL))

	wait[bool](b, "the event stream", `document.getElementById('status').textContent === 'bot'`)
	wait[bool](b, "the command menu", `!document.getElementById('menu-button').classList.contains('empty')`)
	code := wait[string](b, "the TOTP code", `document.getElementById('totp-code').dataset.code || ''`)
	if len(code) != 6 {
		t.Fatalf("TOTP code: got %q, want six digits", code)
	}

	b.send("/login " + code)
	wait[string](b, "logged in", botRow("logged in; the session ends"))
	wait[bool](b, "the /login message shown deleted",
		`[...document.querySelectorAll('.row.out.deleted')].some(r => r.textContent.includes('/login') && r.textContent.includes('deleted'))`)

	b.send("/hello")
	wait[string](b, "/hello's output", botRow(`hello <img src=x onerror="window.pwned=1"> <b>not bold</b> & co`))
	if got := eval[string](b, `[document.querySelectorAll('#chat img').length, document.querySelectorAll('#chat .text b').length, typeof window.pwned].join()`); got != "0,0,undefined" {
		t.Errorf("the command's markup became HTML: images, bold, window.pwned: got %s, want 0,0,undefined", got)
	}

	// A long job's progress is a live draft; its document ends it.
	b.send("/slow")
	wait[bool](b, "/slow's progress draft", `[...document.querySelectorAll('.row.draft')].some(r => r.textContent.includes('/slow ⏳ running') && r.querySelector('.draft-stop'))`)
	wait[bool](b, "/slow's document", `!!document.querySelector('.row.has-doc .doc-name') && document.querySelector('.row.has-doc .doc-name').textContent.startsWith('slow-')`)
	if n := eval[int](b, `document.querySelectorAll('.row.draft').length`); n != 0 {
		t.Errorf("%d drafts shown after the result, want none", n)
	}

	b.click("the preview", ".row.has-doc summary")
	preview := wait[string](b, "the preview", `(document.querySelector('.row.has-doc details[open] pre') || {}).textContent || ''`)
	if !strings.HasPrefix(preview, "working\n1\n2\n3\n") {
		t.Errorf("preview: got %.40q, want the output's start", preview)
	}
	href := eval[string](b, `document.querySelector('.row.has-doc a.doc-download').getAttribute('href')`)
	resp, err := http.Get(r.info.URL + href)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	var want strings.Builder
	want.WriteString("working\n")
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if resp.StatusCode != 200 || body != want.String() || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
		t.Errorf("download %s: got %s, %d bytes, %q; want the whole output as an attachment", href, resp.Status, len(body), resp.Header.Get("Content-Disposition"))
	}

	// A confirmation: Run is red. It waits while a second long job is
	// stopped from its draft's stop button, which kills it as /kill does.
	b.send("/confirmrun")
	ask := wait[string](b, "the confirmation", botRow("Run /confirmrun?"))
	row := fmt.Sprintf(`.row[data-id="%s"]`, ask)
	buttons := eval[string](b, fmt.Sprintf(`[...document.querySelectorAll('%s .kb-button')].map(b => b.textContent + ':' + b.className).join()`, row))
	if buttons != "Run:kb-button style-danger,Cancel:kb-button" {
		t.Errorf("confirmation buttons: got %q, want a red Run and a Cancel", buttons)
	}
	b.send("/tick")
	wait[bool](b, "/tick's progress draft", `[...document.querySelectorAll('.row.draft')].some(r => r.textContent.includes('/tick ⏳ running') && r.querySelector('.draft-stop'))`)
	b.screenshot("playground.png")
	b.click("the draft's stop button", ".row.draft .draft-stop")
	wait[string](b, "the kill", botRow("killing job "))
	wait[string](b, "/tick's end", botRow("/tick · killed"))

	b.click("Run", row+` .kb-button[data-n="1"]`)
	wait[bool](b, "the answer to the press", `document.getElementById('toast').textContent === 'running'`)
	wait[bool](b, "the buttons marked pressed", fmt.Sprintf(`(() => { const b = [...document.querySelectorAll('%s .kb-button')]; return b.length === 1 && b[0].disabled && b[0].textContent.includes('Run'); })()`, row))
	wait[string](b, "the confirmed command's output", botRow("/confirmrun · exit 0"))

	b.click("the menu button", "#menu-button")
	items := wait[string](b, "the menu", `[...document.querySelectorAll('.menu-item .menu-command')].map(e => e.textContent).join(' ')`)
	for _, c := range []string{"/hello", "/confirmrun", "/slow", "/tick", "/login", "/status"} {
		if !strings.Contains(items, c) {
			t.Errorf("menu %q lacks %s", items, c)
		}
	}
	b.click("/hello in the menu", ".menu-item:first-child")
	wait[bool](b, "a second /hello", `[...document.querySelectorAll('.row.in .text')].filter(e => e.textContent.includes('/hello · exit 0')).length === 2`)

	b.checkOwnOrigin(r.info.URL)
	res := r.end(t)
	wait[bool](b, "the last checkpoint", `[...document.querySelectorAll('.row.checkpoint .text')].some(e => /audit checkpoint seq=\d+ mac=[0-9a-f]+/.test(e.textContent))`)
	wait[bool](b, "the end of the chat", `!!document.querySelector('.service.end')`)
	if res.err != nil || !res.res.Verified {
		t.Errorf("at exit: got %+v, %v, want a verified audit log", res.res, res.err)
	}
	if _, err := os.Stat(r.info.Dir); !os.IsNotExist(err) {
		t.Errorf("state %s after exit: %v, want it removed", r.info.Dir, err)
	}
}
