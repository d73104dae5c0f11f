package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"io"
	"strings"
)

// Recovery codes are 80 random bits written as 16 Crockford base32
// characters in four groups (XXXX-XXXX-XXXX-XXXX). Crockford's alphabet has
// no I, L, O or U, and on input O reads as 0 and I or L as 1, so a code
// copied from paper survives.
//
// Why HMAC-SHA-256 with a per-install salt and not a slow KDF: a slow KDF
// exists to make guessing a low-entropy secret (a password) expensive. A
// recovery code has 80 bits of entropy chosen by crypto/rand; even at 10^12
// hashes a second, finding a preimage for one stored hash takes on average
// 2^79/10^12 s ≈ 19,000 years, and online guessing is throttled by the
// limiter first. The 32-byte salt, fresh at every enrolment, rules out
// precomputation across installs. A KDF would add seconds per login attempt
// (all stored hashes are compared) and protect nothing that needs it.
const (
	recoveryLen   = 16 // characters, 5 bits each
	recoveryBytes = 10 // 80 bits
	saltSize      = 32
	maxRecovery   = 100
)

var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// newRecoveryCode draws one code from r (crypto/rand in production).
func newRecoveryCode(r io.Reader) (string, error) {
	var raw [recoveryBytes]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", fmt.Errorf("generate recovery code: %w", err)
	}
	s := crockford.EncodeToString(raw[:])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16], nil
}

// normalizeRecovery maps a typed code to its canonical 16 characters:
// upper case, separators dropped, look-alikes folded. ok is false for
// anything that cannot be a recovery code.
func normalizeRecovery(code string) (string, bool) {
	if len(code) > 40 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		case r == 'U':
			return "", false
		case (r >= '0' && r <= '9') || (r >= 'A' && r <= 'Z'):
		default:
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != recoveryLen {
		return "", false
	}
	return b.String(), true
}

// hashRecovery is the stored form of a normalized recovery code.
func hashRecovery(salt []byte, norm string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte("relay recovery code v1\x00"))
	m.Write([]byte(norm))
	return m.Sum(nil)
}

// newSalt draws a per-enrolment salt.
func newSalt() ([]byte, error) {
	s := make([]byte, saltSize)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("generate recovery salt: %w", err)
	}
	return s, nil
}
