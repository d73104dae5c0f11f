package telegram

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unicode/utf8"
)

// maxResponse caps a Bot API response body. getUpdates returns at most 100
// updates of a few KiB each; anything near this is not the Bot API.
const maxResponse = 16 << 20

// maxDescription caps the Bot API description we keep for errors.
const maxDescription = 200

// callInfo is what the transport saw of one request. A fresh one rides on
// each attempt's context, so concurrent calls never share it; the
// transport writes it from the goroutine that called Do, before Do returns.
type callInfo struct {
	// responded is set once any HTTP response arrived.
	responded bool
	// code is the Bot API error_code (or the HTTP status when the body had
	// none) of a failed call, and 0 on success.
	code int
	// desc is the redacted, length-capped description of a failed call.
	desc string
	// retryAfter is the 429 wait in seconds.
	retryAfter int
	// netClass names the kind of network failure when no response
	// arrived ("connection refused", "timeout", ...), never its text,
	// which holds the URL and so the token.
	netClass string
}

type callKey struct{}

func withCall(ctx context.Context) (context.Context, *callInfo) {
	info := &callInfo{}
	return context.WithValue(ctx, callKey{}, info), info
}

// transport sits under the library's HTTP client. It makes every response
// the library sees either the server's successful Bot API JSON, or a
// synthetic failure that holds nothing the server sent except a redacted
// description; and it replaces transport errors, whose text may hold the
// request URL, with redacted ones. It never retries: a request body is a
// stream that cannot be replayed, so retries happen a level up, where the
// request can be rebuilt.
type transport struct {
	base   http.RoundTripper
	redact *redactor
	// The first request opens the connection alone: requests made before
	// it has one wait (first closes), so that the calls a relay makes at
	// start share that connection, multiplexed over HTTP/2 as the Bot API
	// speaks it, instead of each paying a TCP and a TLS handshake of its
	// own on the way to the first getUpdates.
	leader    atomic.Bool
	first     chan struct{}
	firstOnce sync.Once
}

func newTransport(base http.RoundTripper, red *redactor) *transport {
	return &transport{base: base, redact: red, first: make(chan struct{})}
}

// opened ends the first request's head start.
func (t *transport) opened() { t.firstOnce.Do(func() { close(t.first) }) }

// await holds req until the first request has its connection, or has
// failed; the first request itself goes at once, and tells when.
func (t *transport) await(req *http.Request) (*http.Request, error) {
	if t.leader.CompareAndSwap(false, true) {
		trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { t.opened() }}
		return req.WithContext(httptrace.WithClientTrace(req.Context(), trace)), nil
	}
	select {
	case <-t.first:
		return req, nil
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}

type apiReply struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code,omitempty"`
	Description string `json:"description,omitempty"`
	Parameters  *struct {
		RetryAfter int `json:"retry_after,omitempty"`
	} `json:"parameters,omitempty"`
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	info, _ := req.Context().Value(callKey{}).(*callInfo)
	if info == nil {
		info = &callInfo{}
	}
	held, err := t.await(req)
	if err != nil {
		// A RoundTripper closes the body on every path. Left open, the
		// library's form writer stays blocked until the library closes
		// the pipe with the returned error, and then formats that error
		// while the library rewrites it: a data race, under -race a crash.
		if req.Body != nil {
			req.Body.Close()
		}
		info.netClass = netClass(err)
		return nil, &transportError{msg: t.redact.String(err.Error()), cause: contextCause(err)}
	}
	req = held
	resp, err := t.base.RoundTrip(req)
	t.opened() // the first request's connection failed, or it is done
	if err != nil {
		info.netClass = netClass(err)
		return nil, &transportError{msg: t.redact.String(err.Error()), cause: contextCause(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		info.netClass = "response cut short: " + netClass(err)
		return nil, &transportError{msg: "read response: " + t.redact.String(err.Error()), cause: contextCause(err)}
	}
	info.responded = true
	if len(body) > maxResponse {
		return nil, &transportError{msg: fmt.Sprintf("response larger than %d bytes", maxResponse)}
	}

	var r apiReply
	jsonErr := json.Unmarshal(body, &r)
	if jsonErr == nil && r.OK && resp.StatusCode == http.StatusOK {
		return reply(req, resp.StatusCode, body), nil
	}

	code, desc := resp.StatusCode, ""
	if jsonErr == nil {
		if r.ErrorCode != 0 {
			code = r.ErrorCode
		}
		desc = t.redact.String(r.Description)
	} else {
		desc = fmt.Sprintf("http %d %s (response body is not bot api json, withheld)", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if code == http.StatusOK {
		code = http.StatusBadGateway // "ok":false with a 200 is still a failure
	}
	retryAfter := 0
	if jsonErr == nil && r.Parameters != nil {
		retryAfter = r.Parameters.RetryAfter
	}
	if retryAfter == 0 && code == http.StatusTooManyRequests {
		retryAfter, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
	}
	desc = capString(desc, maxDescription)
	info.code, info.desc, info.retryAfter = code, desc, max(retryAfter, 0)

	out := apiReply{ErrorCode: code, Description: desc}
	if info.retryAfter > 0 {
		out.Parameters = &struct {
			RetryAfter int `json:"retry_after,omitempty"`
		}{info.retryAfter}
	}
	synthetic, _ := json.Marshal(out)
	return reply(req, resp.StatusCode, synthetic), nil
}

// netClass names the kind of a network failure from a fixed vocabulary,
// so that a retry line can say why without quoting the error, whose text
// holds the request URL and so the token.
func netClass(err error) string {
	var (
		dns  *net.DNSError
		op   *net.OpError
		cert *tls.CertificateVerificationError
		rec  tls.RecordHeaderError
		ne   net.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "network unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server"
	case errors.As(err, &dns):
		return "dns lookup failed"
	case errors.As(err, &cert), errors.As(err, &rec):
		return "tls handshake failed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &op):
		return "network error (" + op.Op + ")"
	}
	return "network error"
}

// reply builds the response the library reads.
func reply(req *http.Request, status int, body []byte) *http.Response {
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
