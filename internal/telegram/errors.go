package telegram

import (
	"context"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sentinels for errors.Is on an *Error.
var (
	// ErrUnauthorized means the Bot API refused the token (401, or 404 for
	// a token it cannot even parse). Retrying cannot help.
	ErrUnauthorized = errors.New("telegram: bot token rejected")
	// ErrConflict means another client is polling with this token, or a
	// webhook is set while polling.
	ErrConflict = errors.New("telegram: conflict")
	// ErrRateLimited means Telegram answered 429.
	ErrRateLimited = errors.New("telegram: rate limited")
	// ErrForbidden means the bot may not write to the chat (blocked by the
	// user, removed from the group).
	ErrForbidden = errors.New("telegram: forbidden")
)

// Error is a failed Bot API call. Its message is safe to log: the token has
// been removed and no response body that was not Bot API JSON is quoted.
// Public gives a shorter message that is safe to show in the chat.
type Error struct {
	// Method is the Bot API method, e.g. "sendMessage".
	Method string
	// Code is the Bot API error_code, or the HTTP status when the body had
	// none; 0 when no response arrived.
	Code int
	// RetryAfter is the wait Telegram asked for with a 429.
	RetryAfter time.Duration

	// msg is the redacted detail, with a hint.
	msg string
	// desc is the redacted Bot API description, for matching benign
	// answers such as "message is not modified".
	desc string
	// invalid marks a response that arrived but could not be decoded:
	// retrying will not change it.
	invalid bool
	// cause is context.Canceled or context.DeadlineExceeded when the call
	// ended that way, and nil otherwise. It is never the library's error,
	// whose text may hold the token.
	cause error
	// netClass is the kind of network failure when no response arrived
	// (see netClass), "" otherwise.
	netClass string
	// unsupported marks an answer that means the server lacks the feature
	// the call used (ErrDraftsUnsupported), so that a 404 for a method the
	// server does not know is not taken for a rejected token.
	unsupported bool
}

func (e *Error) Error() string { return "telegram " + e.Method + ": " + e.msg }

// Unwrap exposes only the context error, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is maps the Bot API error codes to the package's sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Code == 401 || (e.Code == 404 && !e.unsupported)
	case ErrConflict:
		return e.Code == 409
	case ErrRateLimited:
		return e.Code == 429
	case ErrForbidden:
		return e.Code == 403
	case ErrDraftsUnsupported:
		return e.unsupported
	}
	return false
}

// reason says in a few words why the call failed, for a log line: the
// redacted Bot API description, or the kind of network failure. It never
// holds a URL.
func (e *Error) reason() string {
	switch {
	case e.Code != 0 && e.desc != "":
		return e.desc
	case e.Code != 0:
		return "http " + strconv.Itoa(e.Code)
	case e.cause == context.Canceled:
		return "canceled"
	case e.cause == context.DeadlineExceeded:
		return "timeout"
	case e.netClass != "":
		return e.netClass
	case e.invalid:
		return "invalid response"
	}
	return "request failed"
}

// Public returns a one-line description that is safe to show the owner.
func (e *Error) Public() string {
	switch {
	case e.unsupported:
		return "telegram does not offer this here"
	case e.cause != nil || e.Code == 0:
		return "telegram could not be reached, try again later"
	case e.Code == 429:
		return "telegram is rate limiting the bot, try again later"
	case e.Code == 401 || e.Code == 404:
		return "telegram rejected the bot token"
	case e.Code == 403:
		return "telegram refused: the bot may not write to this chat"
	case e.Code >= 500:
		return "telegram had a server error, try again later"
	default:
		return "telegram rejected the request"
	}
}

// hint names the fix for a Bot API error code.
func hint(code int) string {
	switch {
	case code == 401 || code == 404:
		return "check the bot token and the api url"
	case code == 403:
		return "the bot was blocked by the user or removed from the chat"
	case code == 409:
		return "another process is polling with this token or a webhook is set; stop it or delete the webhook"
	case code == 429:
		return "rate limited by telegram; send less often"
	case code >= 500:
		return "bot api server error; it is retried, check the server or proxy if it persists"
	}
	return ""
}

// redactor removes the bot token from text.
type redactor struct {
	// needles are the token and its encodings, longest first.
	needles []string
}

// tokenShape matches anything that looks like a bot token, so that even a
// token other than ours (or ours mangled beyond the exact needles) is
// redacted.
var tokenShape = lazyre.New(`[0-9]{3,}(:|%3[aA])[A-Za-z0-9_-]{20,}`)

func newRedactor(token string) *redactor {
	r := &redactor{}
	add := func(s string) {
		if len(s) >= 8 && !contains(r.needles, s) {
			r.needles = append(r.needles, s)
		}
	}
	add(token)
	add(url.PathEscape(token))
	add(url.QueryEscape(token))
	if _, secret, ok := strings.Cut(token, ":"); ok {
		add(secret)
	}
	return r
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

const redacted = "[redacted]"

// String returns s with every occurrence of the token replaced.
func (r *redactor) String(s string) string {
	for _, n := range r.needles {
		s = strings.ReplaceAll(s, n, redacted)
	}
	return tokenShape().ReplaceAllString(s, redacted)
}

// transportError is what the transport returns instead of the underlying
// error, whose text may hold the URL and so the token.
type transportError struct {
	msg   string
	cause error // a context error, or nil
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.cause }

func contextCause(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

// classify turns the outcome of one call into an *Error. info says what
// the transport saw; err is the library's (or our) error, which is only
// ever quoted redacted.
func (c *Client) classify(method string, info *callInfo, err error) *Error {
	e := &Error{Method: method, cause: contextCause(err), netClass: info.netClass}
	switch {
	case info.responded && info.code != 0:
		e.Code = info.code
		e.desc = info.desc
		e.RetryAfter = time.Duration(info.retryAfter) * time.Second
		e.msg = fmt.Sprintf("%d %s", info.code, info.desc)
		if h := hint(info.code); h != "" {
			e.msg += " (" + h + ")"
		}
	case e.cause == context.Canceled:
		e.msg = "request canceled"
	case e.cause == context.DeadlineExceeded:
		e.msg = "request timed out (check network access to the bot api server)"
	case info.responded:
		e.invalid = true
		e.msg = "invalid response: " + c.redact.String(err.Error()) + " (check the api url points at a bot api server)"
	case info.netClass != "":
		// The class, not the error's text: that holds the request URL.
		e.msg = "request failed: " + info.netClass + " (check network access to the bot api server)"
	default:
		e.msg = "request failed: " + c.redact.String(err.Error()) + " (check network access to the bot api server)"
	}
	return e
}
