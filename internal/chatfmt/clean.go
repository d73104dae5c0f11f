package chatfmt

import "unicode/utf8"

// Scanner states for terminal escape sequences (ECMA-48).
const (
	stGround   = iota
	stEsc      // after ESC
	stEscInter // ESC followed by intermediate bytes
	stCSI      // control sequence: ESC [ or C1 CSI
	stString   // OSC, DCS, SOS, PM or APC string
	stStrEsc   // ESC inside a string, expecting the '\' of ST
)

// clean decodes b and returns the characters worth showing, with the byte
// offset in b where each one came from. Invalid UTF-8 becomes U+FFFD. ANSI
// escape sequences (CSI, OSC and the other string controls, two-byte
// escapes) are dropped whole, as are C0 and C1 controls except newline and
// tab, DEL, and the bidirectional formatting characters that could make
// output read differently from what it is.
//
// A sequence is abandoned at any C0 control, so that an unterminated OSC
// cannot swallow everything after it: the state is back to ground at every
// newline.
func clean(b []byte) ([]rune, []int32) {
	runes := make([]rune, 0, len(b))
	offs := make([]int32, 0, len(b))
	state := stGround
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		// A loop, because an aborted sequence hands its terminating
		// character back to the ground state.
		for {
			next, emit, reprocess := step(state, r)
			state = next
			if emit {
				runes = append(runes, r)
				offs = append(offs, int32(i))
			}
			if !reprocess {
				break
			}
		}
		i += size
	}
	return runes, offs
}

// step advances the scanner by one character. It returns the next state,
// whether r is shown, and whether r must be fed again in the next state.
func step(state int, r rune) (next int, emit, reprocess bool) {
	switch state {
	case stGround:
		switch {
		case r == 0x1b:
			return stEsc, false, false
		case r == 0x9b:
			return stCSI, false, false
		case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f:
			return stString, false, false
		case r == '\n' || r == '\t':
			return stGround, true, false
		case hidden(r):
			return stGround, false, false
		default:
			return stGround, true, false
		}
	case stEsc:
		switch {
		case r == '[':
			return stCSI, false, false
		case r == ']' || r == 'P' || r == 'X' || r == '^' || r == '_':
			return stString, false, false
		case r == 0x1b:
			return stEsc, false, false
		case r >= 0x20 && r <= 0x2f:
			return stEscInter, false, false
		case r >= 0x30 && r <= 0x7e:
			return stGround, false, false
		default:
			return stGround, false, true
		}
	case stEscInter:
		switch {
		case r >= 0x20 && r <= 0x2f:
			return stEscInter, false, false
		case r >= 0x30 && r <= 0x7e:
			return stGround, false, false
		default:
			return stGround, false, true
		}
	case stCSI:
		switch {
		case r >= 0x20 && r <= 0x3f:
			return stCSI, false, false
		case r >= 0x40 && r <= 0x7e:
			return stGround, false, false
		case r == 0x1b:
			return stEsc, false, false
		default:
			return stGround, false, true
		}
	case stString:
		switch {
		case r == 0x07 || r == 0x9c:
			return stGround, false, false
		case r == 0x1b:
			return stStrEsc, false, false
		case r < 0x20:
			return stGround, false, true
		default:
			return stString, false, false
		}
	default: // stStrEsc
		if r == '\\' {
			return stGround, false, false
		}
		return stEsc, false, true
	}
}

// hidden reports whether r is a control or formatting character that is
// never shown: C0 and C1 controls, DEL, and bidirectional overrides,
// embeddings, isolates and marks.
func hidden(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r >= 0x202a && r <= 0x202e:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
