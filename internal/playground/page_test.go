package playground

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// TestPageShowsWhatTheBotSends plays a bot that uses every part of the
// chat the page draws (more than relay itself uses today): styled,
// disabled and link buttons, a draft with its stop button, links that
// must and must not open, a spoiler, a document of hostile HTML, a
// checkpoint, an edit and a deletion. A real browser shows each as a phone
// would, presses only what a phone can press, and runs nothing it was sent.
func TestPageShowsWhatTheBotSends(t *testing.T) {
	b := browse(t, 520, 1000)
	fake, p := botPage(t)
	b.do("open the page", chromedp.Navigate(p.url))
	wait[bool](b, "the event stream", `document.getElementById('status').textContent === 'bot'`)

	bot(t, fake, "sendMessage", map[string]any{"chat_id": testOwner.ID, "parse_mode": "HTML",
		"text": "<code>audit checkpoint seq=41 mac=00112233445566778899aabbccddeeff</code>", "disable_notification": true})
	links := messageID(t, bot(t, fake, "sendMessage", map[string]any{"chat_id": testOwner.ID, "parse_mode": "HTML",
		"text": `<a href="javascript:window.pwned=1">click me</a>, <a href="https://example.org/ok">a site</a> and <tg-spoiler>a secret</tg-spoiler>`}))
	ask := messageID(t, bot(t, fake, "sendMessage", map[string]any{"chat_id": testOwner.ID, "parse_mode": "HTML",
		"text": "<b>Run /restart?</b>", "reply_markup": keyboard}))
	wait[bool](b, "the keyboard", fmt.Sprintf(`document.querySelectorAll('.row[data-id="%d"] .kb-button').length === 4`, ask))

	row := fmt.Sprintf(`.row[data-id="%d"]`, ask)
	got := eval[string](b, fmt.Sprintf(`[...document.querySelectorAll('%s .kb-button')].map(b => [b.tagName, b.textContent, b.className, b.disabled === true, b.getAttribute('href') || '', b.rel || ''].join('|')).join('\n')`, row))
	want := strings.Join([]string{
		"BUTTON|Run|kb-button style-danger|false||",
		"BUTTON|Cancel|kb-button style-success|false||",
		"BUTTON|Expired|kb-button disabled|true||",
		"A|Docs|kb-button|false|https://example.org/docs|noopener noreferrer",
	}, "\n")
	if got != want {
		t.Errorf("buttons:\n%s\nwant:\n%s", got, want)
	}
	// A disabled button gets no click; Run does, and only it reaches the bot.
	b.do("click the disabled button", chromedp.Click(chromedp.CSS(row+` .kb-button[data-n="3"]`)))
	b.click("Run", row+` .kb-button[data-n="1"]`)
	data, qid := pendingCallback(t, fake)
	if data != "r:1" {
		t.Errorf("press: got %q, want r:1 (Run)", data)
	}
	bot(t, fake, "answerCallbackQuery", map[string]any{"callback_query_id": qid, "text": "running"})
	wait[bool](b, "the answer", `document.getElementById('toast').textContent === 'running'`)

	got = eval[string](b, fmt.Sprintf(`(() => { const a = [...document.querySelectorAll('.row[data-id="%d"] a.e-a')]; return a.map(x => x.textContent + '=' + (x.getAttribute('href') || '')).join(' '); })()`, links))
	// Telegram drops a javascript: link, leaving its text.
	if got != "a site=https://example.org/ok" {
		t.Errorf("links: got %q, want only the https one", got)
	}
	b.click("the spoiler", ".e-spoiler")
	if got := eval[string](b, `[typeof window.pwned, document.querySelector('.e-spoiler').className].join()`); got != "undefined,e-spoiler shown" {
		t.Errorf("after clicking: got %s, want undefined,e-spoiler shown", got)
	}

	// A draft ID as relay makes them: 64 bits, more than a JavaScript
	// number holds exactly.
	const draftID int64 = 1430023994423828201
	bot(t, fake, "sendMessageDraft", map[string]any{"chat_id": testOwner.ID, "draft_id": draftID, "parse_mode": "HTML",
		"text": "/backup ⏳ running · 4s\n<pre>copied 120 of 800 files</pre>", "can_stop": true})
	wait[bool](b, "the draft", `!!document.querySelector('.row.draft .draft-stop') && document.querySelector('.row.draft .text').textContent.includes('copied 120')`)
	b.screenshot("page.png")
	b.click("stop", ".row.draft .draft-stop")
	wait[bool](b, "the draft stopped", `document.querySelector('.row.draft').classList.contains('stopped') && !document.querySelector('.draft-stop')`)
	if _, err := fake.WaitDraft(hangGuard(t), func(d fakebotapi.Draft) bool { return d.ID == draftID && d.State == fakebotapi.DraftStopped }); err != nil {
		t.Fatal(err)
	}

	hostile := `<script>window.pwned=2</script><img src=x onerror="window.pwned=3">`
	doc := botDocument(t, fake, "evil.html", []byte(hostile), "<b>/evil</b> · exit 0")
	wait[bool](b, "the document", `!!document.querySelector('.row.has-doc')`)
	if n := eval[int](b, `document.querySelectorAll('.row.draft').length`); n != 0 {
		t.Errorf("the document did not end the draft: %d drafts shown", n)
	}
	b.click("the preview", ".row.has-doc summary")
	if got := wait[string](b, "the preview", `(document.querySelector('.row.has-doc details[open] pre') || {}).textContent || ''`); got != hostile {
		t.Errorf("preview: got %q, want the document as text", got)
	}
	resp, err := http.Get(p.url + eval[string](b, `document.querySelector('.row.has-doc a.doc-download').getAttribute('href')`))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if body != hostile || resp.Header.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="evil.html"`) {
		t.Errorf("download: got %q, %q, %q; want the bytes as an attachment, never a page", body, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}

	bot(t, fake, "editMessageText", map[string]any{"chat_id": testOwner.ID, "message_id": ask, "text": "Run /restart? (expired)"})
	wait[bool](b, "the edit", fmt.Sprintf(`(() => { const r = document.querySelector('%s'); return r.querySelector('.edited') && r.textContent.includes('(expired)') && !r.querySelector('.keyboard'); })()`, row))
	bot(t, fake, "deleteMessage", map[string]any{"chat_id": testOwner.ID, "message_id": doc})
	wait[bool](b, "the deletion", fmt.Sprintf(`(() => { const r = document.querySelector('.row[data-id="%d"]'); return r.classList.contains('deleted') && !r.querySelector('.doc-download') && r.textContent.includes('deleted'); })()`, doc))
	if !eval[bool](b, `document.querySelector('.row.checkpoint .label').textContent.includes('audit checkpoint')`) {
		t.Error("the checkpoint is not labelled")
	}
	if got := eval[string](b, `[document.querySelectorAll('#chat script, #chat img, #chat iframe').length, typeof window.pwned].join()`); got != "0,undefined" {
		t.Errorf("elements from the chat: got %s, want 0,undefined", got)
	}
	b.checkOwnOrigin(p.url)
}

// strangerPage is another site's page, here on another port of
// 127.0.0.1, that knows the playground's whole URL, token included, and
// tries every way a page has to drive it or read from it.
const strangerPage = `<!doctype html><title>stranger</title>
<iframe name="sink"></iframe>
<script>
const u = %q;
const r = window.results = {};
fetch(u + 'send', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: '{"text":"/lock"}'})
  .then(x => r.nocors = 'answered', () => r.nocors = 'failed');
fetch(u + 'send', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"text":"/lock"}'})
  .then(x => r.cors = 'read ' + x.status, () => r.cors = 'failed');
fetch(u + 'totp').then(x => x.text()).then(t => r.totp = 'read ' + t, () => r.totp = 'failed');
const es = new EventSource(u + 'events');
es.onmessage = m => r.events = 'read ' + m.data;
es.onerror = () => { r.events = r.events || 'failed'; es.close(); };
const f = document.createElement('form');
f.method = 'POST'; f.action = u + 'send'; f.enctype = 'text/plain'; f.target = 'sink';
const i = document.createElement('input');
// text/plain sends name=value: together, valid JSON.
i.name = '{"text":"/lock'; i.value = '"}';
f.append(i); document.body.append(f);
document.querySelector('iframe').onload = () => r.form = 'posted';
f.submit();
</script>`

// TestStrangerPageCannotDriveIt: even with the token, a page of another
// origin cannot send a message, read the code or follow the chat, and a
// name other than 127.0.0.1 (as DNS rebinding would give) gets nothing.
func TestStrangerPageCannotDriveIt(t *testing.T) {
	b := browse(t, 520, 1000)
	fake, p := botPage(t)
	stranger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, strangerPage, p.url)
	}))
	defer stranger.Close()

	b.do("open the stranger's page", chromedp.Navigate(stranger.URL))
	got := wait[string](b, "the stranger's tries", `(() => { const r = window.results; return r && r.nocors && r.cors && r.totp && r.events && r.form ? JSON.stringify(r, ['nocors', 'cors', 'totp', 'events', 'form']) : ''; })()`)
	// Even the opaque no-cors request fails: the page's resources are
	// for its own origin only (Cross-Origin-Resource-Policy).
	want := `{"nocors":"failed","cors":"failed","totp":"failed","events":"failed","form":"posted"}`
	if got != want {
		t.Errorf("the stranger's page got %s, want %s", got, want)
	}
	if n := fake.Pending(); n != 0 {
		t.Errorf("the stranger's page sent %d messages to the bot", n)
	}
	if n := len(p.srv.feed.events); n != 0 {
		t.Errorf("the chat shows %d events from the stranger's page", n)
	}

	rebound := strings.Replace(p.url, "127.0.0.1", "localhost", 1)
	b.do("open the page by another name", chromedp.Navigate(rebound))
	if text := eval[string](b, `document.body.innerText`); !strings.HasPrefix(text, "forbidden") {
		t.Errorf("the page by the name localhost: got %q, want forbidden", text)
	}
}
