package playground

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/relaychat/relay/internal/fakebotapi"
)

//go:embed web
var web embed.FS

// The page's own files, by the name it asks for. There are no others: no
// external asset, no font, nothing fetched from anywhere but this server.
var assets = map[string]struct{ file, mime string }{
	"":          {"web/index.html", "text/html; charset=utf-8"},
	"app.js":    {"web/app.js", "text/javascript; charset=utf-8"},
	"style.css": {"web/style.css", "text/css; charset=utf-8"},
	"icon.svg":  {"web/icon.svg", "image/svg+xml"},
}

// csp allows the page its own script, style and requests, and nothing
// else: no inline script, no other origin, no frames, no forms.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// maxRequest caps a request body from the page: one message is at most
// 4096 UTF-16 code units, which is at most 12 KiB of UTF-8.
const maxRequest = 16 << 10

// pageInfo is what the page shows about this playground.
type pageInfo struct {
	Bot      string `json:"bot"`
	Policy   string `json:"policy"`
	Commands int    `json:"commands"`
}

// server is the playground's web server: the chat page and its API, for
// whoever has the URL's token.
type server struct {
	// token is the URL's secret first path segment; every request must
	// carry it.
	token string
	// host is the only Host header accepted ("127.0.0.1:PORT"), and
	// origin the only Origin: a page of any other origin, a rebound DNS
	// name included, is refused.
	host, origin string

	fake  *fakebotapi.Server
	owner fakebotapi.User
	feed  *feed
	// code is the current TOTP code and the seconds it has left.
	code func() (string, int)
	info pageInfo
	now  func() time.Time
	// keepalive is how often an idle event stream gets a comment line.
	keepalive time.Duration
}

// forbidden is the whole answer to a request that fails a check: it says
// nothing about which check, or about the token.
func forbidden(w http.ResponseWriter) {
	http.Error(w, "forbidden: open the URL the playground printed", http.StatusForbidden)
}

// admit checks everything a request must pass before any handler runs,
// and returns the path after the token. A request is admitted only when
// its Host is the playground's own address, its path starts with the
// token, a browser's Sec-Fetch-Site and Origin (when sent) name this very
// origin, and a POST carries JSON and its Origin: a form or a page of
// another site can do neither.
func (s *server) admit(r *http.Request) (rest string, ok bool) {
	if r.Host != s.host {
		return "", false
	}
	p := r.URL.Path
	if len(p) < len(s.token)+2 || p[0] != '/' || p[len(s.token)+1] != '/' ||
		subtle.ConstantTimeCompare([]byte(p[1:len(s.token)+1]), []byte(s.token)) != 1 {
		return "", false
	}
	rest = p[len(s.token)+2:]
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin":
	case "none":
		// Typed or pasted into the address bar: only the page itself.
		if r.Method != http.MethodGet || rest != "" {
			return "", false
		}
	default:
		return "", false
	}
	origin, hasOrigin := r.Header["Origin"]
	if hasOrigin && (len(origin) != 1 || origin[0] != s.origin) {
		return "", false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if !hasOrigin || err != nil || mt != "application/json" {
			return "", false
		}
	default:
		return "", false
	}
	return rest, true
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	rest, ok := s.admit(r)
	if !ok {
		forbidden(w)
		return
	}
	if r.Method == http.MethodPost {
		switch rest {
		case "send":
			s.send(w, r)
		case "press":
			s.press(w, r)
		case "stop":
			s.stopDraft(w, r)
		default:
			http.NotFound(w, r)
		}
		return
	}
	if a, ok := assets[rest]; ok {
		b, err := web.ReadFile(a.file)
		if err != nil {
			http.Error(w, "missing asset", http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", a.mime)
		w.Write(b)
		return
	}
	switch {
	case rest == "events":
		s.events(w, r)
	case rest == "totp":
		code, left := s.code()
		writeJSON(w, http.StatusOK, map[string]any{"code": code, "remaining": left})
	case rest == "info":
		writeJSON(w, http.StatusOK, s.info)
	case strings.HasPrefix(rest, "doc/"):
		s.download(w, strings.TrimPrefix(rest, "doc/"))
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decode reads the page's JSON request into v, strictly.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "bad request")
		return false
	}
	return true
}

// checkText is why text cannot be sent as a message, as Telegram's app
// would refuse it; "" when it can.
func checkText(text string) string {
	switch {
	case !utf8.ValidString(text):
		return "the message is not valid UTF-8"
	case strings.TrimSpace(text) == "":
		return "the message is empty"
	case fakebotapi.UTF16Len(text) > fakebotapi.MaxMessageLength:
		return "the message is longer than Telegram's 4096 characters"
	}
	return ""
}

func (s *server) send(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Text string `json:"text"`
	}
	if !decode(w, r, &req) {
		return
	}
	if msg := checkText(req.Text); msg != "" {
		fail(w, http.StatusBadRequest, msg)
		return
	}
	var id int
	s.feed.add(func() (pageEvent, bool) {
		_, id = s.fake.SendMessage(s.owner, fakebotapi.Private(s.owner), req.Text)
		return pageEvent{Kind: kindOwner, ID: id, At: s.now().UnixMilli(), Text: plainText(req.Text)}, true
	})
	writeJSON(w, http.StatusOK, map[string]int{"id": id})
}

func (s *server) press(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID int `json:"id"`
		N  int `json:"n"`
	}
	if !decode(w, r, &req) {
		return
	}
	// The fake refuses what a phone could not press: a disabled button,
	// a link, a button that is gone, a deleted message.
	if _, err := s.fake.PressButtonAt(s.owner, s.owner.ID, req.ID, req.N); err != nil {
		fail(w, http.StatusConflict, strings.TrimPrefix(err.Error(), "fakebotapi: "))
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *server) stopDraft(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Draft int64 `json:"draft,string"`
	}
	if !decode(w, r, &req) {
		return
	}
	if _, err := s.fake.StopDraft(s.owner.ID, req.Draft); err != nil {
		fail(w, http.StatusConflict, strings.TrimPrefix(err.Error(), "fakebotapi: "))
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// download serves a document the bot sent, always as an attachment of
// no particular type: a command's output is never rendered by the
// browser, whatever it contains.
func (s *server) download(w http.ResponseWriter, idText string) {
	id, err := strconv.Atoi(idText)
	if err != nil {
		http.Error(w, "no such document", http.StatusNotFound)
		return
	}
	for _, d := range s.fake.Documents() {
		if d.ChatID != s.owner.ID || d.MessageID != id {
			continue
		}
		switch {
		case d.Deleted:
			http.Error(w, "the document was deleted", http.StatusGone)
		case d.Data == nil:
			http.Error(w, "the document was too large to keep", http.StatusGone)
		default:
			h := w.Header()
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Disposition", disposition(d.FileName))
			h.Set("Content-Length", strconv.Itoa(len(d.Data)))
			w.Write(d.Data)
		}
		return
	}
	http.Error(w, "no such document", http.StatusNotFound)
}

// disposition is an attachment header for name: an ASCII fallback with
// only safe characters, and the UTF-8 name percent-encoded.
func disposition(name string) string {
	ascii := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r) {
			return r
		}
		return '_'
	}, name)
	if ascii == "" || strings.Trim(ascii, "._") == "" {
		ascii = "document"
	}
	return fmt.Sprintf("attachment; filename=%q; filename*=UTF-8''%s", ascii, url.PathEscape(name))
}

// events streams the feed to the page as server-sent events, from the
// event after Last-Event-ID (EventSource sends it on reconnection), until
// the page goes away or the playground stops.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	var after uint64
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after, _ = strconv.ParseUint(id, 10, 64)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 1000\n\n")
	if rc.Flush() != nil {
		return
	}
	for {
		ctx, cancel := context.WithTimeout(r.Context(), s.keepalive)
		evs, done, err := s.feed.after(ctx, after)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			continue
		case err != nil:
			return
		}
		for _, e := range evs {
			b, err := json.Marshal(e)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.Seq, b); err != nil {
				return
			}
			after = e.Seq
		}
		if rc.Flush() != nil || done {
			return
		}
	}
}
