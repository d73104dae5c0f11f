package remote

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// maxShown is how many bytes of an untrusted value a message quotes.
const maxShown = 32

// show renders an untrusted value for a message: a short prefix, cut on a
// rune boundary, quoted with every non-graphic character escaped.
func show(v string) string {
	if len(v) <= maxShown {
		return strconv.QuoteToGraphic(v)
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return strconv.QuoteToGraphic(v[:cut]) + fmt.Sprintf("… (%d bytes)", len(v))
}
