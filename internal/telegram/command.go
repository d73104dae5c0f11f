package telegram

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxCommandName is Telegram's limit for a command name, and for a bot
// username after the @.
const maxCommandName = 32

// ParseCommand splits a message text of the form "/name", "/name args" or
// "/name@BotName args" into the lower-cased name and the arguments with
// surrounding white space removed. The name must be 1 to 32 of
// [A-Za-z0-9_] and begin the text; anything else is not a command. It
// never looks at entities and never panics.
//
// The name is checked before it is lower-cased, so a Unicode character
// that lower-cases to ASCII (the Kelvin sign K to "k") can never make a
// command out of something that is not one.
func ParseCommand(text string) (name, args string, ok bool) {
	name, _, args, ok = parseCommand(text)
	return name, args, ok
}

// ParseCommandFor is ParseCommand for a bot named bot: a "/name@Other"
// addressed to another bot is not a command for us.
func ParseCommandFor(text, bot string) (name, args string, ok bool) {
	name, mention, args, ok := parseCommand(text)
	if !ok || (mention != "" && !strings.EqualFold(mention, bot)) {
		return "", "", false
	}
	return name, args, true
}

func parseCommand(text string) (name, mention, args string, ok bool) {
	if !strings.HasPrefix(text, "/") || !utf8.ValidString(text) {
		return "", "", "", false
	}
	head, rest := text[1:], ""
	if i := strings.IndexFunc(head, unicode.IsSpace); i >= 0 {
		head, rest = head[:i], head[i:]
	}
	name, mention, hasAt := strings.Cut(head, "@")
	if !validName(name) || (hasAt && !validName(mention)) {
		return "", "", "", false
	}
	return strings.ToLower(name), mention, strings.TrimFunc(rest, unicode.IsSpace), true
}

// validName reports whether s is 1 to 32 ASCII letters, digits or
// underscores.
func validName(s string) bool {
	if len(s) == 0 || len(s) > maxCommandName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
