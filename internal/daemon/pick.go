package daemon

import (
	"context"
	"slices"
	"strings"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/internal/picker"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

// Parameter pickers: a command sent without its next required argument,
// when that parameter has a short list of values, answers with a button
// per value. The buttons carry a token (internal/picker) and the button's
// number, never a value; the value comes from the state kept here. Each
// press appends that value to the words and asks policy's Command.Next
// again, against the command as the policy has it now, until the words
// are complete; then they bind and run exactly as typing them would
// (proceed: the same Bind, sandbox, confirm and records).

// pickState is what a picker's keyboard stands for.
type pickState struct {
	command string   // the command's name, looked up again at the press
	words   []string // the arguments so far, as Bind takes them
	choices []policy.Choice
	// steppedUp: the command's step-up code was checked when it was sent;
	// a command that needs one and was sent without it never gets here.
	steppedUp bool
}

// pickRow is how many buttons a row holds: a phone's width.
func pickRow(choices []policy.Choice) int {
	for _, c := range choices {
		if len([]rune(c.Label)) > 6 {
			return 3
		}
	}
	return 4
}

// askPick shows (or, for a press, edits msgID into) the keyboard for p,
// the next parameter of cmd after words.
func (d *Daemon) askPick(u telegram.Update, msgID int, cmd *policy.Command, words []string, p *policy.Param, choices []policy.Choice, steppedUp bool) bool {
	info, ok := d.auth.Session(u.ChatID)
	if !ok {
		d.reply(u.ChatID, chatfmt.Say("not logged in: send /login CODE"))
		return false
	}
	tok, err := d.picks.Put(info.ID, pickState{command: cmd.Name, words: slices.Clone(words), choices: choices, steppedUp: steppedUp})
	if err != nil {
		d.o.Log.Error().Err(err).Msg("picker token")
		d.reply(u.ChatID, chatfmt.Say("could not make the buttons; type the arguments instead"))
		return false
	}
	_ = d.record(audit.Record{Type: audit.KindUpdate, Outcome: audit.OutcomeOK, UserID: u.UserID, ChatID: u.ChatID, Command: cmd.Name,
		Detail: "picker for " + p.Name})
	line := "/" + cmd.Name
	for _, w := range words {
		line += " " + chatfmt.QuoteArg(w)
	}
	line += " … choose " + p.Name
	if p.Description != "" {
		line += ": " + p.Description
	}
	var rows [][]telegram.Button
	per := pickRow(choices)
	for i, c := range choices {
		if i%per == 0 {
			rows = append(rows, nil)
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], telegram.Button{Text: c.Label, Data: picker.Data(tok, i)})
	}
	html, chat := chatfmt.Line(line), u.ChatID
	d.out.post(chat, func(ctx context.Context) {
		var err error
		if msgID != 0 {
			err = d.tg.EditText(ctx, chat, msgID, html, telegram.Buttons(rows...))
		} else {
			_, err = d.tg.SendText(ctx, chat, html, telegram.Buttons(rows...))
		}
		if err != nil {
			d.o.Log.Warn().Err(err).Msg("picker not delivered")
		}
	})
	return true
}

// pickLabels are what a refused press's keyboard turns into.
var pickLabels = map[error]string{
	picker.ErrExpired: "✗ expired",
	picker.ErrSession: "✗ void: the session ended",
}

// pickPressed handles a picker button, behind the session gate. Every
// press is answered; a keyboard that can no longer do anything is
// disabled.
func (d *Daemon) pickPressed(u telegram.Update) {
	qid, chat, msg := u.CallbackID, u.ChatID, u.MessageID
	answer := func(r chatfmt.Reply) {
		d.out.post(chat, func(ctx context.Context) {
			if err := d.tg.AnswerCallback(ctx, qid, r.String()); err != nil {
				d.o.Log.Warn().Err(err).Msg("answerCallbackQuery failed")
			}
		})
	}
	dead := func(label string) {
		if msg != 0 {
			d.markPressed(chat, msg, label)
		}
	}
	base := audit.Record{Type: audit.KindRequest, UserID: u.UserID, ChatID: u.ChatID}
	refuse := func(reason string, text chatfmt.Reply) {
		r := base
		r.Outcome, r.Reason = audit.OutcomeDenied, reason
		_ = d.record(r)
		answer(text)
	}
	tok, i, ok := picker.ParseData(u.CallbackData)
	if !ok {
		refuse("picker: malformed button data", chatfmt.Say("unknown button"))
		return
	}
	if text, ok := d.gate(u, base); !ok {
		answer(text)
		dead(pickLabels[picker.ErrSession])
		return
	}
	info, _ := d.auth.Session(chat)
	st, err := d.picks.Take(info.ID, tok)
	if err != nil {
		// ErrUsed is also the second of two quick presses, whose first
		// has already put the next keyboard on this message: leave it.
		refuse("picker: "+err.Error(), chatfmt.Refusal(err, "these buttons no longer work; send the command again"))
		if label, ok := pickLabels[err]; ok {
			dead(label)
		}
		return
	}
	base.Command = st.command
	if i >= len(st.choices) {
		refuse("picker: no such button", chatfmt.Say("unknown button"))
		dead("✗ void")
		return
	}
	words := append(slices.Clone(st.words), st.choices[i].Value)
	shown := "/" + st.command + " " + strings.Join(quoted(words), " ")
	deny := func(reason string, text chatfmt.Reply) {
		r := base
		r.Outcome, r.Reason = audit.OutcomeDenied, reason
		_ = d.record(r)
		answer(chatfmt.Say("not run"))
		dead("✗ " + st.choices[i].Label)
		d.reply(chat, text)
	}
	if d.draining.Load() {
		deny("shutting down", chatfmt.Say("relay is shutting down; command not run"))
		return
	}
	if err := d.audit.Heal(); err != nil {
		answer(chatfmt.Say("not run"))
		d.reply(chat, chatfmt.Say("audit log unavailable; command not run"))
		return
	}
	// The policy may have changed since the keyboard was shown.
	cmd := d.config().Lookup(st.command)
	if cmd == nil {
		deny("unknown command", chatfmt.Say("/%s is no longer in the policy; send /help", chatfmt.Name(st.command)))
		return
	}
	if cmd.Reauth && !st.steppedUp {
		deny("missing step-up code", chatfmt.Say("/%s now needs a fresh TOTP code first: /%[1]s CODE …", chatfmt.Name(cmd.Name)))
		return
	}
	denied := false
	switch d.proceed(u, cmd, words, st.steppedUp, msg, func(reason string, text chatfmt.Reply) { denied = true; deny(reason, text) }) {
	case proceedRefused:
		if !denied {
			// No keyboard could be made; askPick has said why.
			answer(chatfmt.Say("not run"))
		}
	case proceedPicked:
		answer(chatfmt.Reply{})
	case proceedRan:
		answer(chatfmt.Say("%s", chatfmt.Name(st.choices[i].Label)))
		dead("✓ " + cutLabel(shown))
	}
}

func quoted(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = chatfmt.QuoteArg(w)
	}
	return out
}

// cutLabel keeps a pressed keyboard's label to one short line.
func cutLabel(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}
