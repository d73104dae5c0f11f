package telegram

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"github.com/rs/zerolog"
)

// Defaults for Options.
const (
	DefaultAPIURL        = "https://api.telegram.org"
	DefaultPollTimeout   = 25 * time.Second
	DefaultMaxRetries    = 4
	DefaultMaxRetryAfter = 2 * time.Minute
	DefaultUploadTimeout = 10 * time.Minute

	// pollSlack is how much longer than the long-poll timeout the HTTP
	// request may take, so a slow but healthy poll is never cut short.
	pollSlack = 10 * time.Second
	// callTimeout bounds one attempt of an ordinary method.
	callTimeout = 30 * time.Second
	// backoffBase and backoffMax shape the retry delay after a 5xx or a
	// network failure: base·2^attempt, capped, with jitter.
	backoffBase = 500 * time.Millisecond
	backoffMax  = 30 * time.Second
	// maxPollRetryAfter caps a 429 wait while polling: a longer one is
	// almost certainly a broken proxy, and we would rather ask again.
	maxPollRetryAfter = 10 * time.Minute
)

// Options configures a Client.
type Options struct {
	// Token is the bot token. It is required and never leaves the Client
	// except in request URLs.
	Token string
	// APIURL is the Bot API base URL (default DefaultAPIURL): a local Bot
	// API server or a test fake. Plain http is refused unless the host is a
	// loopback address or AllowInsecureHTTP is set, since the token travels
	// in the URL.
	APIURL string
	// AllowInsecureHTTP permits a plain-http APIURL on a non-loopback host.
	AllowInsecureHTTP bool
	// PollTimeout is the long-poll timeout (default 25 s, at least 1 s).
	PollTimeout time.Duration
	// Logger receives transport events. Nothing logged holds the token or
	// message content.
	Logger zerolog.Logger
	// HTTPClient is optional. Its Transport is wrapped; a nonzero Timeout
	// must exceed PollTimeout by at least 10 s. Redirects are never
	// followed.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx is done (default: a timer). Tests inject
	// one that records the waits instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxRetries bounds the retries of one call after the first attempt
	// (default DefaultMaxRetries; negative means none).
	MaxRetries int
	// MaxRetryAfter is the longest 429 wait a send accepts; a longer one
	// fails the call at once (default DefaultMaxRetryAfter).
	MaxRetryAfter time.Duration
	// UploadTimeout bounds one attempt of SendDocument (default
	// DefaultUploadTimeout).
	UploadTimeout time.Duration
	// ProtectContent sends every message and document with
	// protect_content, so the owner's app will not forward or save it.
	ProtectContent bool
}

// Client talks to the Bot API. It is safe for concurrent use, except that
// only one Poll may run at a time.
type Client struct {
	bot    *bot.Bot
	http   *http.Client
	token  *secret // a pointer, so printing the struct prints an address
	api    string  // base URL, no token, no trailing slash
	host   string  // for String
	redact *redactor
	log    zerolog.Logger

	now           func() time.Time
	sleep         func(context.Context, time.Duration) error
	pollTimeout   time.Duration
	maxRetries    int
	maxRetryAfter time.Duration
	uploadTimeout time.Duration

	// protect is Options.ProtectContent.
	protect bool

	// polling is set while Poll runs.
	polling atomic.Bool
	// noDrafts is set once the server answered that it does not know
	// sendMessageDraft.
	noDrafts atomic.Bool
	// noDisabledButtons is set once the server refused a disabled button
	// (before Bot API 10.3).
	noDisabledButtons atomic.Bool
}

// secret holds the token so that printing it by accident prints nothing.
type secret struct{ token string }

func (secret) String() string   { return redacted }
func (secret) GoString() string { return redacted }

// ErrTokenMalformed: the bot token does not have a token's shape; it is
// never quoted.
var ErrTokenMalformed = errors.New("bot token is malformed")

var tokenFormat = lazyre.New(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$`)

// New checks the options and builds a Client. It makes no request.
func New(o Options) (*Client, error) {
	if !tokenFormat().MatchString(o.Token) {
		// Never quote the token, even a malformed one.
		return nil, fmt.Errorf("telegram: %w (want <digits>:<secret> as given by @BotFather)", ErrTokenMalformed)
	}
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	api, host, err := CheckAPIURL(o.APIURL, o.AllowInsecureHTTP)
	if err != nil {
		return nil, fmt.Errorf("telegram: api url: %w", err)
	}
	if o.PollTimeout == 0 {
		o.PollTimeout = DefaultPollTimeout
	}
	if o.PollTimeout < time.Second {
		return nil, fmt.Errorf("telegram: poll timeout %s is below 1s (raise it)", o.PollTimeout)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.MaxRetries < 0 {
		o.MaxRetries = 0
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.UploadTimeout <= 0 {
		o.UploadTimeout = DefaultUploadTimeout
	}

	red := newRedactor(o.Token)
	hc := &http.Client{}
	if o.HTTPClient != nil {
		if t := o.HTTPClient.Timeout; t != 0 && t < o.PollTimeout+pollSlack {
			return nil, fmt.Errorf("telegram: http client timeout %s must be at least the poll timeout %s plus %s (raise it or lower the poll timeout)", t, o.PollTimeout, pollSlack)
		}
		hc.Timeout = o.HTTPClient.Timeout
		hc.Transport = o.HTTPClient.Transport
	}
	if hc.Transport == nil {
		hc.Transport = defaultTransport()
	}
	hc.Transport = newTransport(hc.Transport, red)
	// The Bot API never redirects; following one could carry the token's
	// URL to another host.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	c := &Client{
		http:          hc,
		token:         &secret{o.Token},
		api:           api,
		host:          host,
		redact:        red,
		log:           o.Logger.With().Str("component", "telegram").Logger(),
		now:           o.Now,
		sleep:         o.Sleep,
		pollTimeout:   o.PollTimeout,
		maxRetries:    o.MaxRetries,
		maxRetryAfter: o.MaxRetryAfter,
		uploadTimeout: o.UploadTimeout,
		protect:       o.ProtectContent,
	}
	b, err := bot.New(o.Token,
		bot.WithServerURL(api),
		bot.WithHTTPClient(o.PollTimeout, hc),
		bot.WithSkipGetMe(),
		bot.WithDefaultHandler(func(context.Context, *bot.Bot, *models.Update) {}),
		bot.WithErrorsHandler(c.libraryError),
		bot.WithDebugHandler(func(string, ...any) {}),
	)
	if err != nil {
		return nil, fmt.Errorf("telegram: %s", red.String(err.Error()))
	}
	c.bot = b
	return c, nil
}

// APIURLError is a Bot API base URL CheckAPIURL refuses. Reason and Hint
// never hold the URL's credentials.
type APIURLError struct {
	Reason string // e.g. "plain http to a non-loopback host"
	Hint   string // the fix; may be empty
}

func (e *APIURLError) Error() string {
	if e.Hint == "" {
		return e.Reason
	}
	return e.Reason + " (" + e.Hint + ")"
}

// CheckAPIURL is the one rule for a Bot API base URL, for the config
// (policy's telegram.api_url) and the client alike: an https base URL
// without credentials, query or fragment, or plain http only to loopback
// (or anywhere when allowHTTP), since the bot token travels in the URL.
// It returns the URL without a trailing slash and its host.
func CheckAPIURL(raw string, allowHTTP bool) (base, host string, err error) {
	const baseHint = `use a base URL such as "https://api.telegram.org"`
	u, perr := url.Parse(raw)
	if perr != nil {
		return "", "", &APIURLError{Reason: "invalid URL", Hint: baseHint}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Host == "" {
		return "", "", &APIURLError{Reason: fmt.Sprintf("invalid URL %q: want scheme://host[:port][/path], without credentials, query or fragment", u.Redacted()), Hint: baseHint}
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP && !isLoopback(u.Hostname()) {
			return "", "", &APIURLError{Reason: "plain http to a non-loopback host",
				Hint: "the bot token travels in the URL: use https, or http only to a local Bot API server on loopback"}
		}
	default:
		return "", "", &APIURLError{Reason: fmt.Sprintf("want an https URL, got scheme %q", u.Scheme)}
	}
	return strings.TrimRight(u.String(), "/"), u.Host, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Prepare starts in the background what the first request to apiURL will
// need, so that it overlaps the rest of the relay's start instead of
// delaying the first getUpdates: for HTTPS, loading and parsing the
// system's root certificates (milliseconds of CPU, done once per process).
func Prepare(apiURL string) {
	if apiURL == "" || strings.HasPrefix(apiURL, "https:") {
		go x509.SystemCertPool()
	}
}

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = nil // the default: TLS 1.2+, system roots
	t.MaxIdleConnsPerHost = 4
	return t
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// String names the client without its token.
func (c *Client) String() string { return "telegram client (" + c.host + ")" }

// GoString is String, so %#v cannot reach the token either.
func (c *Client) GoString() string { return c.String() }

// MarshalJSON keeps a JSON logger from walking into the client.
func (c *Client) MarshalJSON() ([]byte, error) { return []byte(`"` + c.String() + `"`), nil }

// libraryError logs what the library reports outside a call's return
// value (pipe and body-close failures), redacted.
func (c *Client) libraryError(err error) {
	c.log.Warn().Str("error", c.redact.String(err.Error())).Msg("telegram library error")
}

// methodURL is the request URL for a method. It holds the token: it goes to
// the HTTP client and nowhere else.
func (c *Client) methodURL(method string) string {
	return c.api + "/bot" + c.token.token + "/" + method
}

// call runs one Bot API call with retries. fn is invoked once per attempt
// with a context that carries a fresh callInfo and the attempt timeout.
// safe says whether a retry after a 5xx or a network failure is allowed;
// a 429 is always retried, since Telegram did not act on the request.
func (c *Client) call(ctx context.Context, method string, safe bool, timeout time.Duration, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		e, err := c.try(ctx, method, timeout, fn)
		if e == nil || ctx.Err() != nil {
			return err
		}
		wait, ok := c.retryWait(e, attempt, safe)
		if !ok {
			return e
		}
		c.logRetry(method, e).Int("attempt", attempt+1).Stringer("wait", wait).
			Msg("telegram call failed, retrying")
		if err := c.sleep(ctx, wait); err != nil {
			e.cause = contextCause(err)
			return e
		}
	}
}

// callOnce runs one attempt of a call that is never retried, classified
// as call classifies it.
func (c *Client) callOnce(ctx context.Context, method string, fn func(context.Context) error) error {
	_, err := c.try(ctx, method, callTimeout, fn)
	return err
}

// try runs one attempt of fn. It returns the error to report, and the
// classified *Error when the attempt failed in a way a retry might cure
// (nil for success and for local errors, which are final).
func (c *Client) try(ctx context.Context, method string, timeout time.Duration, fn func(context.Context) error) (*Error, error) {
	actx, info := withCall(ctx)
	actx, cancel := context.WithTimeout(actx, timeout)
	defer cancel()
	err := invoke(actx, fn)
	if err == nil {
		return nil, nil
	}
	if le := (*localError)(nil); errors.As(err, &le) {
		return nil, le.err
	}
	e := c.classify(method, info, err)
	if ctx.Err() != nil {
		e.cause = ctx.Err()
	}
	return e, e
}

// logRetry starts the warning for a failed call that will be retried: it
// says why (the Bot API's redacted description, or the kind of network
// failure, never a URL) and names the fix. Waits are logged as Stringers
// ("1.5s"): zerolog's Dur writes a bare number of milliseconds.
func (c *Client) logRetry(method string, e *Error) *zerolog.Event {
	ev := c.log.Warn().Str("method", method).Int("code", e.Code).Str("reason", e.reason())
	if h := hint(e.Code); h != "" {
		ev = ev.Str("hint", h)
	}
	return ev
}

// invoke runs fn, turning a panic inside the library (for instance while
// decoding an unexpected response) into an error.
func invoke(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in bot api client: %T", r)
		}
	}()
	return fn(ctx)
}

// retryWait decides whether attempt (0-based) may be followed by another,
// and after how long.
func (c *Client) retryWait(e *Error, attempt int, safe bool) (time.Duration, bool) {
	if attempt >= c.maxRetries || e.invalid || e.cause == context.Canceled {
		return 0, false
	}
	switch {
	case e.Code == http.StatusTooManyRequests:
		wait := max(e.RetryAfter, time.Second)
		if wait > c.maxRetryAfter {
			return 0, false
		}
		return wait, true
	case (e.Code == 0 || e.Code >= 500) && safe:
		return backoff(attempt), true
	}
	return 0, false
}

// backoff is the wait before retry number attempt+1: exponential, capped,
// with "equal jitter" so that retries from many clients spread out while
// the wait never falls below half the nominal value.
func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 16 {
		d = min(backoffBase<<attempt, backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}
