package playground

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

const (
	gateToken  = "Zm9yIHRoZSBnYXRlIHRlc3RzIG9ubHksIDMyIGJ5dGVz"
	gateHost   = "127.0.0.1:5555"
	gateOrigin = "http://127.0.0.1:5555"
)

// gateServer is a page server that no listener serves: requests are made
// up by the test, headers and all.
func gateServer() *server {
	return &server{
		token: gateToken, host: gateHost, origin: gateOrigin,
		fake: fakebotapi.New(botToken), owner: testOwner, feed: newFeed(),
		code: func() (string, int) { return "123456", 17 }, now: time.Now, keepalive: time.Hour,
	}
}

type header map[string]string

func serve(s *server, method, host, path string, h header, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://"+gateHost+path, strings.NewReader(body))
	req.Host = host
	for k, v := range h {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// TestGateRefuses is a stranger's try at the page: every request that is
// not the page's own, from its own origin, with its token, is refused
// before any handler runs, and the refusal says nothing about why.
func TestGateRefuses(t *testing.T) {
	s := gateServer()
	same := header{"Sec-Fetch-Site": "same-origin"}
	post := header{"Origin": gateOrigin, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
	with := func(h header, k, v string) header {
		c := header{}
		for a, b := range h {
			c[a] = b
		}
		if v == "" {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	wrong := strings.Repeat("A", len(gateToken))
	for _, tc := range []struct {
		name         string
		method, host string
		path         string
		h            header
	}{
		{"no token", "GET", gateHost, "/", nil},
		{"no token, an asset", "GET", gateHost, "/app.js", nil},
		{"a wrong token of the same length", "GET", gateHost, "/" + wrong + "/", nil},
		{"the token's prefix", "GET", gateHost, "/" + gateToken[:len(gateToken)-1] + "/", nil},
		{"the token, longer", "GET", gateHost, "/" + gateToken + "x/", nil},
		{"the token without its slash", "GET", gateHost, "/" + gateToken, nil},
		{"the token in the query", "GET", gateHost, "/?t=" + gateToken, nil},
		{"the token elsewhere in the path", "GET", gateHost, "/x/" + gateToken + "/", nil},
		{"a rebound DNS name as Host", "GET", "evil.example:5555", "/" + gateToken + "/", nil},
		{"localhost as Host", "GET", "localhost:5555", "/" + gateToken + "/", nil},
		{"another port as Host", "GET", "127.0.0.1:5556", "/" + gateToken + "/", nil},
		{"cross-site", "GET", gateHost, "/" + gateToken + "/events", header{"Sec-Fetch-Site": "cross-site"}},
		{"same-site: another port of 127.0.0.1", "GET", gateHost, "/" + gateToken + "/events", header{"Sec-Fetch-Site": "same-site"}},
		{"another origin's event stream", "GET", gateHost, "/" + gateToken + "/events", with(same, "Origin", "http://127.0.0.1:8000")},
		{"a null origin", "GET", gateHost, "/" + gateToken + "/totp", with(same, "Origin", "null")},
		{"navigating to the code", "GET", gateHost, "/" + gateToken + "/totp", header{"Sec-Fetch-Site": "none"}},
		{"a POST without Origin", "POST", gateHost, "/" + gateToken + "/send", with(post, "Origin", "")},
		{"a POST from another origin", "POST", gateHost, "/" + gateToken + "/send", with(post, "Origin", "https://evil.example")},
		{"a form post", "POST", gateHost, "/" + gateToken + "/send", with(post, "Content-Type", "application/x-www-form-urlencoded")},
		{"a text/plain post", "POST", gateHost, "/" + gateToken + "/send", with(post, "Content-Type", "text/plain")},
		{"a POST without a type", "POST", gateHost, "/" + gateToken + "/send", with(post, "Content-Type", "")},
		{"a cross-site POST", "POST", gateHost, "/" + gateToken + "/send", with(post, "Sec-Fetch-Site", "cross-site")},
		{"a CORS preflight", "OPTIONS", gateHost, "/" + gateToken + "/send", header{"Origin": gateOrigin, "Access-Control-Request-Method": "POST"}},
		{"PUT", "PUT", gateHost, "/" + gateToken + "/send", post},
		{"DELETE", "DELETE", gateHost, "/" + gateToken + "/doc/1", same},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(s, tc.method, tc.host, tc.path, tc.h, `{"text":"/start"}`)
			if w.Code != http.StatusForbidden {
				t.Errorf("got %d, want 403", w.Code)
			}
			if strings.Contains(w.Body.String(), gateToken) {
				t.Errorf("the refusal shows the token: %q", w.Body.String())
			}
			for k := range w.Header() {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("CORS header %s on a refusal", k)
				}
			}
		})
	}
	if got := len(s.feed.events); got != 0 {
		t.Errorf("refused requests sent %d messages, want 0", got)
	}
}

// TestGateAdmitsThePage is the other half: the page itself gets through,
// so that the refusals above are not a server that refuses everything.
func TestGateAdmitsThePage(t *testing.T) {
	s := gateServer()
	for _, tc := range []struct {
		name, method, path string
		h                  header
		want               int
		ctype              string
	}{
		{"the page, typed in", "GET", "/" + gateToken + "/", header{"Sec-Fetch-Site": "none"}, 200, "text/html"},
		{"the page, without fetch metadata", "GET", "/" + gateToken + "/", nil, 200, "text/html"},
		{"its script", "GET", "/" + gateToken + "/app.js", header{"Sec-Fetch-Site": "same-origin"}, 200, "text/javascript"},
		{"its style", "GET", "/" + gateToken + "/style.css", header{"Sec-Fetch-Site": "same-origin"}, 200, "text/css"},
		{"the code", "GET", "/" + gateToken + "/totp", header{"Sec-Fetch-Site": "same-origin", "Origin": gateOrigin}, 200, "application/json"},
		{"a message", "POST", "/" + gateToken + "/send", header{"Origin": gateOrigin, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}, 200, "application/json"},
		{"something else", "GET", "/" + gateToken + "/nothing", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(s, tc.method, gateHost, tc.path, tc.h, `{"text":"/start"}`)
			if w.Code != tc.want {
				t.Fatalf("got %d %q, want %d", w.Code, w.Body.String(), tc.want)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type: got %q, want %s", ct, tc.ctype)
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
				"Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
			} {
				if got := w.Header().Get(k); got != want {
					t.Errorf("%s: got %q, want %q", k, got, want)
				}
			}
			for k := range w.Header() {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("CORS header %s", k)
				}
			}
		})
	}
	if len(s.feed.events) != 1 || s.fake.Pending() != 1 {
		t.Errorf("the page's message: got %d page events and %d updates, want 1 and 1", len(s.feed.events), s.fake.Pending())
	}
}

// TestPageLoadsNothingFromElsewhere: the embedded page names no other
// origin: no CDN, no font, no image from anywhere.
func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	n := 0
	fs.WalkDir(web, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, _ := web.ReadFile(path)
		text := string(b)
		if path == "web/icon.svg" {
			// An SVG names its XML namespace, which is not a request.
			text = strings.Replace(text, `xmlns="http://www.w3.org/2000/svg"`, "", 1)
		}
		for _, bad := range []string{"://", "@import", "url(", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if strings.Contains(text, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		return nil
	})
	if n != len(assets) {
		t.Errorf("web has %d files, the server serves %d", n, len(assets))
	}
}

func TestSendChecksTheMessage(t *testing.T) {
	s := gateServer()
	h := header{"Origin": gateOrigin, "Content-Type": "application/json"}
	path := "/" + gateToken + "/send"
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"empty", `{"text":""}`, 400},
		{"blank", `{"text":" \n\t"}`, 400},
		{"too long", `{"text":"` + strings.Repeat("é", 4097) + `"}`, 400},
		{"too long in UTF-16", `{"text":"` + strings.Repeat("😀", 2049) + `"}`, 400},
		{"an unknown field", `{"text":"/start","chat_id":1}`, 400},
		{"not JSON", `text=/start`, 400},
		{"larger than any message", `{"text":"` + strings.Repeat("a", maxRequest) + `"}`, 400},
		{"the longest message", `{"text":"` + strings.Repeat("é", 4096) + `"}`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := serve(s, "POST", gateHost, path, h, tc.body); w.Code != tc.want {
				t.Errorf("got %d %s, want %d", w.Code, w.Body.String(), tc.want)
			}
		})
	}
	if got := s.fake.Pending(); got != 1 {
		t.Errorf("updates queued: got %d, want 1", got)
	}
}

// FuzzAdmit: whatever a request says, it is admitted only with the exact
// Host and token, and a POST only with JSON from the page's own origin.
func FuzzAdmit(f *testing.F) {
	f.Add("GET", gateHost, "/"+gateToken+"/", "", "none", "")
	f.Add("POST", gateHost, "/"+gateToken+"/send", gateOrigin, "same-origin", "application/json")
	f.Add("POST", "evil.example", "/"+gateToken+"/send", "http://evil.example", "cross-site", "text/plain")
	s := gateServer()
	f.Fuzz(func(t *testing.T, method, host, path, origin, site, ctype string) {
		req := &http.Request{Method: method, Host: host, URL: &url.URL{Path: path}, Header: http.Header{}}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rest, ok := s.admit(req)
		if !ok {
			return
		}
		if host != gateHost || !strings.HasPrefix(path, "/"+gateToken+"/") || rest != path[len(gateToken)+2:] {
			t.Fatalf("admitted host %q path %q", host, path)
		}
		if origin != "" && origin != gateOrigin {
			t.Fatalf("admitted origin %q", origin)
		}
		if method == "POST" && (origin != gateOrigin || !strings.HasPrefix(ctype, "application/json")) {
			t.Fatalf("admitted a POST with origin %q and type %q", origin, ctype)
		}
		if method != "GET" && method != "HEAD" && method != "POST" {
			t.Fatalf("admitted %s", method)
		}
	})
}

func TestDisposition(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"disk-20260101.txt", `attachment; filename="disk-20260101.txt"; filename*=UTF-8''disk-20260101.txt`},
		{"a\"b\r\nX-Evil: 1.txt", `attachment; filename="a_b__X-Evil__1.txt"; filename*=UTF-8''a%22b%0D%0AX-Evil:%201.txt`},
		{"../..", `attachment; filename="document"; filename*=UTF-8''..%2F..`},
		{"é.txt", `attachment; filename="_.txt"; filename*=UTF-8''%C3%A9.txt`},
	} {
		if got := disposition(tc.name); got != tc.want {
			t.Errorf("disposition(%q): got %s, want %s", tc.name, got, tc.want)
		}
	}
}
