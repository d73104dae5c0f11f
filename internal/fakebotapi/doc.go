// Package fakebotapi is the project's own fake Telegram Bot API server, for
// end-to-end tests that drive the real relay binary on 127.0.0.1.
//
// It owns the Bot API's observable behaviour as far as relay depends on
// it: the response envelopes and error texts, getUpdates long polling with
// offsets and the 409 a competing poll gets, the HTML and MarkdownV2 entity
// parsers and the 4096 and 1024 UTF-16 limits applied after them, message
// edits and deletes, multipart document uploads with a size limit, inline
// keyboards (with Bot API 9.4 styles and 10.3 disabled buttons) and
// callback queries, link preview options and protect_content, message
// drafts (sendMessageDraft) that live 30 seconds on the fake's clock with
// the 10.3 stop button, command menus per scope as Telegram resolves them,
// and webhook settings. Tests play the owner through it (SendMessage,
// PressButton, PressButtonAt, StopDraft, PushRawUpdate), observe what the
// bot did (Sent, Documents, Drafts, CommandMenus, VisibleCommands, the
// Wait methods, and the Events feed a viewer follows) and inject faults
// (RateLimit, Fail, Drop, Delay). Without makes it answer as a server that
// predates drafts, stop buttons, button styles or disabled buttons, so
// that every fallback can be tested.
//
// Where Telegram is lenient in a way that hides a sender's bug, the fake is
// stricter and says so in the doc comment (ParseHTML and "&"); everywhere
// else it tries to answer exactly as Telegram does, because a fake that is
// kinder than the real service proves nothing.
//
// Where the Bot API documentation leaves behaviour open (what a draft does
// after a stop, what a message does to a live draft), the fake picks one
// and says so on the method; tests must not depend on more.
//
// It must never listen on anything but loopback, never contact the real
// Telegram, and never keep unbounded state: uploads beyond a cap are kept
// as size and SHA-256 only, the event feed and a draft's history keep
// only their latest entries, and every fault is bounded.
package fakebotapi
