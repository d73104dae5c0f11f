package auth

import (
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// The TOTP parameters every authenticator app understands (RFC 6238 with
// Google Authenticator's defaults). They are fixed, not configurable: a
// different period or digit count would silently break enrolment.
const (
	period     = 30 // seconds per step
	digits     = 6
	skew       = 1  // steps accepted either side of the current one
	secretSize = 20 // bytes, the SHA-1 block-friendly size RFC 4226 recommends
	minSecret  = 16 // bytes: RFC 4226 requires at least 128 bits
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// stepAt is the TOTP time step at t: floor(unix/period), also for times
// before 1970, so that a step is never shared by two different instants.
func stepAt(t time.Time) int64 {
	u := t.Unix()
	s := u / period
	if u%period < 0 {
		s--
	}
	return s
}

// StepStart is when TOTP step begins, for showing Status.LastStep.
func StepStart(step int64) time.Time { return time.Unix(step*period, 0) }

// parseSecret validates a stored TOTP secret (base32 text, as written by
// Enrollment.Save and as shown in the otpauth:// URI) and returns it in the
// canonical form hotp expects. Its errors never quote the secret.
func parseSecret(b []byte) (string, error) {
	s := strings.ToUpper(strings.TrimRight(strings.TrimSpace(string(b)), "="))
	if s == "" {
		return "", fmt.Errorf("%w: totp secret is empty", ErrNoSecret)
	}
	raw, err := b32.DecodeString(s)
	if err != nil {
		// err names only a byte offset, but the secret is not worth the risk.
		return "", fmt.Errorf("%w: totp secret is not valid base32", ErrSecretUnusable)
	}
	if len(raw) < minSecret {
		return "", fmt.Errorf("%w: totp secret is too short: %d bytes, want at least %d", ErrSecretUnusable, len(raw), minSecret)
	}
	return s, nil
}

// codeAt is the code for step. hotp is used directly rather than
// totp.GenerateCodeCustom because the caller works in steps: it needs to
// know which step matched, and an integer step avoids totp's float maths.
func codeAt(secret string, step int64) (string, error) {
	return hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{
		Digits:    otp.DigitsSix,
		Algorithm: otp.AlgorithmSHA1,
	})
}

// normalizeTOTP accepts exactly six ASCII digits, allowing the spaces some
// apps display in the middle ("123 456").
func normalizeTOTP(code string) (string, bool) {
	if len(code) > 16 {
		return "", false
	}
	var b [digits]byte
	n := 0
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch {
		case c == ' ':
		case c >= '0' && c <= '9' && n < digits:
			b[n] = c
			n++
		default:
			return "", false
		}
	}
	if n != digits {
		return "", false
	}
	return string(b[:]), true
}

// matchTOTP returns the steps in now-skew..now+skew whose code equals code,
// newest first. Every candidate is generated and compared in constant time,
// with no early exit, so the time taken says nothing about the code.
func matchTOTP(secret, code string, now time.Time) ([]int64, error) {
	c := stepAt(now)
	var matched []int64
	for s := c + skew; s >= c-skew; s-- {
		if s < 0 {
			continue
		}
		want, err := codeAt(secret, s)
		if err != nil {
			return nil, fmt.Errorf("%w: totp secret unusable", ErrSecretUnusable)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = append(matched, s)
		}
	}
	return matched, nil
}
