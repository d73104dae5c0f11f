package policy

import (
	"strings"
	"unicode/utf8"
)

// SplitArgs tokenizes the text after a chat command into arguments.
//
// Spaces and tabs separate words. Double quotes group words into one
// argument, and may be empty ("" is an empty argument); the typographic
// quotes “ and ” that phone keyboards substitute count as double quotes.
// Inside quotes, \" and \\ stand for " and \; any other backslash is
// literal, and outside quotes a backslash is always literal. Quoted and
// unquoted text that touch form one word, as in a shell.
//
// It refuses, without echoing the input: an unbalanced quote, more than
// MaxArgBytes bytes in total, invalid UTF-8, NUL and every other control
// character (tabs count as separators outside quotes only), CR and LF,
// Unicode line separators and bidirectional formatting characters.
func SplitArgs(s string) ([]string, error) {
	if len(s) > MaxArgBytes {
		return nil, &SplitError{Reason: "the arguments are longer than 4096 bytes"}
	}
	if !utf8.ValidString(s) {
		return nil, &SplitError{Reason: "the arguments are not valid UTF-8"}
	}
	var (
		out    []string
		word   strings.Builder
		inWord bool // a word is open, possibly empty ("")
		quoted bool
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\t' && !quoted, r == ' ' && !quoted:
			if inWord {
				out = append(out, word.String())
				word.Reset()
				inWord = false
			}
			continue
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			return nil, &SplitError{Reason: "the arguments contain a control character or line break"}
		case r == 0x2028 || r == 0x2029:
			return nil, &SplitError{Reason: "the arguments contain a line separator"}
		case isBidi(r):
			return nil, &SplitError{Reason: "the arguments contain a bidirectional text control character"}
		}
		inWord = true
		switch {
		case isQuote(r):
			quoted = !quoted
		case r == '\\' && quoted && i+1 < len(rs) && (isQuote(rs[i+1]) || rs[i+1] == '\\'):
			i++
			word.WriteRune(rs[i])
		default:
			word.WriteRune(r)
		}
	}
	if quoted {
		return nil, &SplitError{Reason: "a double quote is not closed"}
	}
	if inWord {
		out = append(out, word.String())
	}
	return out, nil
}

func isQuote(r rune) bool { return r == '"' || r == '“' || r == '”' }
