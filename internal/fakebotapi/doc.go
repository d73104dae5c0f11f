// Package fakebotapi is the project's own fake Telegram Bot API server, for
// end-to-end tests that drive the real relay binary on 127.0.0.1.
//
// It owns the Bot API's observable behaviour as far as relay depends on
// it: the response envelopes and error texts, getUpdates long polling with
// offsets and the 409 a competing poll gets, the HTML and MarkdownV2 entity
// parsers and the 4096 and 1024 UTF-16 limits applied after them, message
// edits and deletes, multipart document uploads with a size limit, inline
// keyboards and callback queries, bot commands and webhook settings. Tests
// play the owner through it (SendMessage, PressButton, PushRawUpdate),
// observe what the bot did (Sent, Documents, the Wait methods) and inject
// faults (RateLimit, Fail, Drop, Delay).
//
// Where Telegram is lenient in a way that hides a sender's bug, the fake is
// stricter and says so in the doc comment (ParseHTML and "&"); everywhere
// else it tries to answer exactly as Telegram does, because a fake that is
// kinder than the real service proves nothing.
//
// It must never listen on anything but loopback, never contact the real
// Telegram, and never keep unbounded state: uploads beyond a cap are kept
// as size and SHA-256 only, and every fault is bounded.
package fakebotapi
