package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// allowedUpdates are the update types relay asks Telegram for. Telegram
// remembers the last list it was given, so it is sent with every poll and
// with setWebhook.
// A server that predates an update type ignores its name.
var allowedUpdates = []string{KindMessage, KindEditedMessage, KindCallbackQuery, KindGenerationStopped}

// pollLimit is the most updates one getUpdates returns.
const pollLimit = 100

// confirmTimeout bounds the final getUpdates that confirms the offset when
// Poll stops.
const confirmTimeout = 5 * time.Second

// Poll long-polls for updates until ctx is done, then returns nil. It
// returns an error only when polling cannot succeed: the token is rejected,
// or Telegram keeps refusing the request (another poller, a webhook set).
// 429s, 5xx answers and network failures are waited out, forever, with
// bounded backoff.
//
// handle is called for one update at a time, in update order. An update's
// offset is confirmed to Telegram only after handle has returned for it,
// so an update that was being handled when the process died is delivered
// again on the next start; when ctx ends, Poll confirms what was handled
// before returning, so a clean stop redelivers nothing. An update that
// fails to decode, or whose handle panics, is logged by ID, skipped, and
// never delivered again: a poison update must not stop the loop or replay
// forever.
func (c *Client) Poll(ctx context.Context, handle func(context.Context, Update)) error {
	if !c.polling.CompareAndSwap(false, true) {
		return errors.New("telegram: Poll is already running on this client")
	}
	defer c.polling.Store(false)

	var (
		offset    int64 // the next update_id wanted: all below were handed over
		confirmed int64 // the offset Telegram has last been sent
		failures  int   // consecutive polls that failed on the way
		refusals  int   // consecutive polls Telegram refused (4xx)
	)
	defer func() {
		if offset > confirmed {
			c.confirm(offset)
		}
	}()
	for {
		if ctx.Err() != nil {
			return nil
		}
		batch, err := c.getUpdates(ctx, offset, c.pollTimeout, pollLimit)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var e *Error
			if !errors.As(err, &e) {
				return err
			}
			var wait time.Duration
			switch {
			case e.Is(ErrUnauthorized):
				return e
			case e.Code == http.StatusTooManyRequests:
				wait = min(max(e.RetryAfter, time.Second), maxPollRetryAfter)
			case e.Code >= 400 && e.Code < 500:
				refusals++
				if refusals > c.maxRetries {
					return e
				}
				wait = backoff(refusals - 1)
			default:
				failures++
				wait = backoff(min(failures-1, 16))
			}
			c.logRetry("getUpdates", e).Int("consecutive", failures+refusals).
				Stringer("wait", wait).Msg("getUpdates failed, retrying")
			if c.sleep(ctx, wait) != nil {
				return nil
			}
			continue
		}
		confirmed = offset
		failures, refusals = 0, 0

		progressed := false
		for _, raw := range batch {
			if ctx.Err() != nil {
				break // not handed over, so not confirmed: redelivered next start
			}
			id, ok := updateID(raw)
			if !ok {
				c.log.Warn().Msg("update without a valid update_id skipped")
				continue
			}
			if id < offset {
				continue
			}
			c.deliver(ctx, id, raw, handle)
			offset = id + 1
			progressed = true
		}
		if len(batch) > 0 && !progressed && ctx.Err() == nil {
			// Only unreadable updates: nothing moves the offset, so asking
			// again at once would spin. Wait, and let a later update carry
			// the offset past them.
			if c.sleep(ctx, backoff(0)) != nil {
				return nil
			}
		}
	}
}

// deliver decodes one update and hands it to handle, containing any panic.
// Only the update ID is ever logged.
func (c *Client) deliver(ctx context.Context, id int64, raw []byte, handle func(context.Context, Update)) {
	u, err := decodeUpdate(raw)
	if err != nil {
		c.log.Warn().Int64("update_id", id).Str("error", err.Error()).Msg("update skipped")
		return
	}
	defer func() {
		// The panic value is logged by type only: its text could hold the
		// message being handled.
		if r := recover(); r != nil {
			c.log.Error().Int64("update_id", id).Str("panic", fmt.Sprintf("%T", r)).Msg("update handler panicked; update skipped")
		}
	}()
	handle(ctx, u)
}

// confirm sends the final offset, so Telegram drops what was handled.
func (c *Client) confirm(offset int64) {
	ctx, cancel := context.WithTimeout(context.Background(), confirmTimeout)
	defer cancel()
	if _, err := c.getUpdates(ctx, offset, 0, 1); err != nil {
		c.log.Warn().Str("error", err.Error()).
			Msg("could not confirm the last handled updates; they may be delivered again after a restart")
	}
}

type getUpdatesRequest struct {
	Offset         int64    `json:"offset,omitempty"`
	Limit          int      `json:"limit"`
	Timeout        int      `json:"timeout"`
	AllowedUpdates []string `json:"allowed_updates"`
}

// getUpdates makes one getUpdates request through the same client, and so
// the same redacting transport, as the library's calls. The library's own
// polling loop confirms the offset before the update is handled, so it is
// not used.
func (c *Client) getUpdates(ctx context.Context, offset int64, timeout time.Duration, limit int) ([]json.RawMessage, error) {
	body, err := json.Marshal(getUpdatesRequest{
		Offset:         offset,
		Limit:          limit,
		Timeout:        int(timeout / time.Second),
		AllowedUpdates: allowedUpdates,
	})
	if err != nil {
		return nil, err
	}
	actx, info := withCall(ctx)
	actx, cancel := context.WithTimeout(actx, timeout+pollSlack)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.methodURL("getUpdates"), bytes.NewReader(body))
	if err != nil {
		return nil, c.classify("getUpdates", info, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.classify("getUpdates", info, err)
	}
	defer resp.Body.Close()
	var r struct {
		OK     bool              `json:"ok"`
		Result []json.RawMessage `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, c.classify("getUpdates", info, errors.New("malformed response"))
	}
	if !r.OK {
		return nil, c.classify("getUpdates", info, errors.New("request refused"))
	}
	return r.Result, nil
}
