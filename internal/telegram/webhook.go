package telegram

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/go-telegram/bot"
)

// SecretHeader carries the webhook secret token on Telegram's requests.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// secretFormat is what Telegram accepts as a secret_token. We also demand
// at least 16 characters: a short secret is a guessable one.
var secretFormat = lazyre.New(`^[A-Za-z0-9_-]{16,256}$`)

// RandomSecret returns a fresh webhook secret token: 256 random bits in
// Telegram's alphabet.
func RandomSecret() string { return random(32) }

// RandomPath returns a URL path with a random component for the webhook
// endpoint, so that the endpoint cannot be found by guessing.
func RandomPath() string { return "/telegram/" + random(24) }

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return base64.RawURLEncoding.EncodeToString(b)
}

// WebhookHandler returns the endpoint Telegram posts updates to. It accepts
// only POST (405), only with the secret token in SecretHeader (compared in
// constant time, 401 on any mismatch, and on every request when secret is
// not a valid secret), only bodies up to maxBody bytes (413). It hands each
// update to handle before answering 200, one at a time and in update ID
// order: an update with an ID at or below the last one handed over is a
// redelivery and is acknowledged without being handed over again. An
// update that fails to decode, or whose handle panics, is logged by ID and
// acknowledged, so that Telegram does not redeliver a poison update
// forever.
//
// handle gets a context that is not canceled when the request ends; jobs
// it starts should run under the daemon's own context anyway. Set the
// webhook with SetWebhook, which asks Telegram for one connection at a
// time, so updates arrive in order.
func (c *Client) WebhookHandler(secret string, maxBody int64, handle func(context.Context, Update)) http.Handler {
	valid := secretFormat().MatchString(secret)
	if !valid {
		c.log.Error().Msg("webhook secret is missing or malformed; every webhook request will be refused")
	}
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	return &webhook{
		c:       c,
		valid:   valid,
		want:    sha256.Sum256([]byte(secret)),
		maxBody: maxBody,
		handle:  handle,
	}
}

type webhook struct {
	c     *Client
	valid bool
	// want is the SHA-256 of the secret: comparing fixed-length digests
	// keeps even the secret's length out of the timing.
	want    [sha256.Size]byte
	maxBody int64
	handle  func(context.Context, Update)

	// mu serialises hand-overs, and guards last.
	mu sync.Mutex
	// last is the highest update ID handed over.
	last int64
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	got := sha256.Sum256([]byte(r.Header.Get(SecretHeader)))
	if subtle.ConstantTimeCompare(got[:], h.want[:]) != 1 || !h.valid {
		h.c.log.Warn().Str("remote", r.RemoteAddr).Msg("webhook request with a wrong secret token refused")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.ContentLength > h.maxBody {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	id, ok := updateID(body)
	if !ok {
		h.c.log.Warn().Msg("webhook update without a valid update_id refused")
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if id <= h.last {
		h.c.log.Debug().Int64("update_id", id).Msg("webhook redelivery acknowledged")
		w.WriteHeader(http.StatusOK)
		return
	}
	h.c.deliver(context.WithoutCancel(r.Context()), id, body, h.handle)
	h.last = id
	w.WriteHeader(http.StatusOK)
}

// SetWebhook points Telegram at the webhook endpoint hookURL (https, with
// the random path), with the secret token it must send back. Pending
// updates are kept: the auth layer decides what is stale.
func (c *Client) SetWebhook(ctx context.Context, hookURL, secret string) error {
	u, err := url.Parse(hookURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return errors.New("telegram: webhook url must be an https url without credentials (telegram only posts to https)")
	}
	if !secretFormat().MatchString(secret) {
		return fmt.Errorf("telegram: webhook secret must be 16 to 256 of [A-Za-z0-9_-] (use RandomSecret)")
	}
	params := &bot.SetWebhookParams{
		URL:            hookURL,
		MaxConnections: 1,
		AllowedUpdates: allowedUpdates,
		SecretToken:    secret,
	}
	return c.call(ctx, "setWebhook", true, callTimeout, func(ctx context.Context) error {
		_, err := c.bot.SetWebhook(ctx, params)
		return err
	})
}

// DeleteWebhook removes the webhook, as polling requires. Pending updates
// are kept.
func (c *Client) DeleteWebhook(ctx context.Context) error {
	return c.call(ctx, "deleteWebhook", true, callTimeout, func(ctx context.Context) error {
		_, err := c.bot.DeleteWebhook(ctx, &bot.DeleteWebhookParams{})
		return err
	})
}
