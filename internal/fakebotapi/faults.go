package fakebotapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// PathPlaceholder in a Fail body is replaced by the request's URL path,
// which holds the bot token: a proxy error page that echoes it is the case
// relay must redact.
const PathPlaceholder = "{{PATH}}"

// ProxyErrorPage is a 502 page in the style of nginx that echoes the
// request path, for Fail(method, n, 502, ProxyErrorPage, "text/html").
const ProxyErrorPage = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<p>The upstream for POST ` + PathPlaceholder + ` did not answer.</p>
<hr><center>nginx</center>
</body>
</html>
`

// fault is what is injected into one method's calls.
type fault struct {
	// rateN more calls answer 429 retry_after=rateAfter.
	rateN     int
	rateAfter time.Duration
	// blockedUntil is when the last 429's retry_after ends; a call before
	// it is a violation and is answered 429 again.
	blockedUntil time.Time

	failN      int
	failStatus int
	failBody   string
	failType   string

	dropN int
	delay time.Duration
}

func (s *Server) faultLocked(method string) *fault {
	key := strings.ToLower(method)
	f := s.faults[key]
	if f == nil {
		f = &fault{}
		s.faults[key] = f
	}
	return f
}

// RateLimit makes the next n calls of method answer 429 "Too Many
// Requests: retry after N" with parameters.retry_after N, the seconds of
// retryAfter rounded up. A call of method that comes back before the last
// 429's retry_after has elapsed on the fake's clock is counted (see
// RetriedTooEarly) and answered 429 again with the time left, as Telegram
// does; it does not use up one of the n.
func (s *Server) RateLimit(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faultLocked(method)
	f.rateN, f.rateAfter = max(n, 0), max(retryAfter, time.Second)
}

// Fail makes the next n calls of method answer status with body and
// Content-Type contentType, verbatim except that PathPlaceholder becomes
// the request's URL path. Nothing is done for the failed calls.
func (s *Server) Fail(method string, n int, status int, body, contentType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faultLocked(method)
	f.failN, f.failStatus, f.failBody, f.failType = max(n, 0), status, body, contentType
}

// Drop makes the next n calls of method lose their connection without an
// answer, before anything is done for them.
func (s *Server) Drop(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultLocked(method).dropN = max(n, 0)
}

// Delay holds every call of method for d (at most five minutes) before it
// is handled, until Delay(method, 0). A delayed call whose client gives up
// is never handled.
func (s *Server) Delay(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultLocked(method).delay = min(max(d, 0), maxDelay)
}

// RetriedTooEarly counts calls that came back before a 429's retry_after
// had elapsed.
func (s *Server) RetriedTooEarly() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tooEarly
}

// injectFault applies method's faults to one call. It reports whether the
// call was answered (or dropped) by a fault.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, method string) bool {
	s.mu.Lock()
	delay := time.Duration(0)
	if f := s.faults[method]; f != nil {
		delay = f.delay
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-s.clock.After(delay):
		case <-r.Context().Done():
			return true
		case <-s.done:
			writeError(w, &apiError{code: http.StatusServiceUnavailable, desc: "Service Unavailable: server is closing"})
			return true
		}
	}

	s.mu.Lock()
	f := s.faults[method]
	if f == nil {
		s.mu.Unlock()
		return false
	}
	now := s.clock.Now()
	switch {
	case f.dropN > 0:
		f.dropN--
		s.mu.Unlock()
		drop(w)
		return true
	case f.failN > 0:
		f.failN--
		status, body, ct := f.failStatus, f.failBody, f.failType
		s.mu.Unlock()
		body = strings.ReplaceAll(body, PathPlaceholder, r.URL.Path)
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return true
	case now.Before(f.blockedUntil):
		s.tooEarly++
		left := f.blockedUntil.Sub(now)
		s.notifyLocked()
		s.mu.Unlock()
		writeError(w, tooMany(left))
		return true
	case f.rateN > 0:
		f.rateN--
		f.blockedUntil = now.Add(f.rateAfter)
		after := f.rateAfter
		s.mu.Unlock()
		writeError(w, tooMany(after))
		return true
	}
	s.mu.Unlock()
	return false
}

func tooMany(d time.Duration) *apiError {
	secs := int((d + time.Second - 1) / time.Second)
	secs = max(secs, 1)
	return &apiError{
		code:       http.StatusTooManyRequests,
		desc:       fmt.Sprintf("Too Many Requests: retry after %d", secs),
		retryAfter: secs,
	}
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}
