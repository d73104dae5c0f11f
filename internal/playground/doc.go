// Package playground runs relay offline, as a phone would show it: the
// real daemon against an embedded fake Bot API (internal/fakebotapi), with
// throwaway state, and a local web page that looks and behaves like the
// bot's private chat. The owner types messages in the page; the page shows
// the bot's messages, edits, drafts, documents, buttons, deletions, command
// menu and checkpoints as they happen, and the current TOTP code of the
// throwaway enrolment, so that /login needs no phone.
//
// It owns the throwaway state (one temporary directory holding the auth
// state, the audit log and the spool, removed at exit; a TOTP secret, a
// bot token and an audit key K0 generated for the run and kept in memory),
// the page and its server, and the translation of the fake's events into
// what the page shows.
//
// It must never touch a real token, keyring or Telegram: the token is
// generated, the Bot API is the embedded fake on 127.0.0.1, no secret
// store is opened, and a config that names a Bot API of its own is
// refused. Its web server listens on 127.0.0.1 only and answers only
// requests that carry the URL's random token, name the playground's own
// address as Host, and come from its own origin; it sends no CORS header
// and never renders what the bot sent as HTML. Commands are not simulated:
// they run on this machine, through the daemon's real sandbox, exactly as
// the policy says.
package playground
