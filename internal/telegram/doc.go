// Package telegram is relay's transport to the Telegram Bot API: long
// polling, the webhook endpoint, and the few methods the daemon sends.
//
// What Bot API 9.4 to 10.3 added is used where relay gains from it, and
// each use degrades on a server that lacks it (tested against
// fakebotapi.Without): SendDraft streams a job's progress as a message
// draft and reports ErrDraftsUnsupported where the server will not (the
// caller falls back to an edited message); a draft with CanStop delivers
// KindGenerationStopped when the owner presses stop, which an older server
// never sends; Button.Style colours a button, which an older server shows
// plain; MarkPressed turns a pressed keyboard into a disabled button, or
// removes it where disabled buttons are unknown; SetOwnerCommands shows
// the command menu in the owner's chat only. Every text message and edit
// disables link previews, and Options.ProtectContent sets protect_content.
//
// It wraps github.com/go-telegram/bot and guards against that library's
// traps. Each was checked again against v1.24.0 (Bot API 10.3), the newest
// release the module proxy serves; each workaround below is still needed
// there, for the reason given:
//
//   - The token is redacted from every error and log line. A response body
//     that is not Bot API JSON (a proxy's error page may echo the request
//     path, which holds the token) never reaches an error at all. (v1.24.0
//     still quotes an undecodable body whole in its error, and redacts the
//     token only from a *url.Error's URL.)
//   - 429 retry_after is honoured, and 5xx and network failures are retried
//     with bounded, jittered backoff where a retry is safe. sendMessage and
//     sendDocument are retried after a 5xx or a network failure too (at
//     least once delivery) unless the caller passes AtMostOnce: a duplicated
//     reply is harmless, a lost one invites the owner to run the command
//     again. (v1.24.0 honours retry_after only in its own polling loop;
//     method calls are never retried.)
//   - Polling is our own loop: the offset is confirmed only after the
//     consumer has returned from an update, a panic while decoding or
//     handling one update is recovered and never stops the loop, and the
//     poll timeout stays well inside the HTTP timeout. (v1.24.0 still
//     advances its offset when an update is queued for its workers, before
//     any handler ran, and hands updates to workers out of order.)
//   - Updates are decoded into our own Update type, without entities, and
//     commands are parsed by ParseCommand, so a malformed bot_command entity
//     cannot crash anything. (v1.24.0's handler matching still slices the
//     text with the entity's offset and length unchecked.)
//   - The webhook compares the secret token in constant time and answers 401
//     on a mismatch. (v1.24.0's handler compares with != and answers 200 to
//     a wrong secret, reads bodies without a limit, and logs a body it
//     cannot decode.)
//   - A document reader is guarded, because the library copies it into the
//     request from a goroutine that can outlive the call. (Still so in
//     v1.24.0.)
//
// One workaround is gone: up to v1.19 the library's InlineKeyboardButton
// sent "copy_text":{"text":""} with every button, so keyboards were built
// from our own types; v1.24.0 omits the empty field, and TestSendTextRequest
// pins the exact JSON of a keyboard.
//
// It must never log or return message text, callback data or the token,
// and it never decides whether an update is authorised or fresh: that is
// the auth layer's job (stale backlog is filtered there by Update.Date).
package telegram
