// Package telegram is relay's transport to the Telegram Bot API: long
// polling, the webhook endpoint, and the few methods the daemon sends.
//
// It wraps github.com/go-telegram/bot and guards against that library's
// traps:
//
//   - The token is redacted from every error and log line. A response body
//     that is not Bot API JSON (a proxy's error page may echo the request
//     path, which holds the token) never reaches an error at all.
//   - 429 retry_after is honoured, and 5xx and network failures are retried
//     with bounded, jittered backoff where a retry is safe. sendMessage and
//     sendDocument are retried after a 5xx or a network failure too (at
//     least once delivery) unless the caller passes AtMostOnce: a duplicated
//     reply is harmless, a lost one invites the owner to run the command
//     again.
//   - Polling is our own loop: the offset is confirmed only after the
//     consumer has returned from an update, a panic while decoding or
//     handling one update is recovered and never stops the loop, and the
//     poll timeout stays well inside the HTTP timeout.
//   - Updates are decoded into our own Update type, without entities, and
//     commands are parsed by ParseCommand, so a malformed bot_command entity
//     cannot crash anything.
//   - The webhook compares the secret token in constant time and answers 401
//     on a mismatch.
//
// It must never log or return message text, callback data or the token,
// and it never decides whether an update is authorised or fresh: that is
// the auth layer's job (stale backlog is filtered there by Update.Date).
package telegram
