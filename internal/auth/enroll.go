package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// ErrCodeMismatch is Enrollment.Confirm's answer to a wrong code.
var ErrCodeMismatch = errors.New("code does not match (hint: check that the phone's clock is right and type the code currently shown)")

// Enrollment is a TOTP secret being set up: generated, shown to the owner,
// and saved only once the owner has proved their app produces its codes.
type Enrollment struct {
	key    *otp.Key
	secret string // canonical base32
	// step is the step of the confirmed code; 0 until Confirm succeeds.
	// Save records it as used, so the enrolment code cannot log in.
	step int64
}

// Enroll generates a new secret: 20 random bytes, SHA-1, 6 digits, 30 s,
// the parameters every authenticator app supports.
func Enroll(issuer, account string) (*Enrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      period,
		SecretSize:  secretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
		Rand:        rand.Reader,
	})
	if err != nil {
		return nil, fmt.Errorf("generate totp secret: %w", err)
	}
	secret, err := parseSecret([]byte(key.Secret()))
	if err != nil {
		return nil, err
	}
	return &Enrollment{key: key, secret: secret}, nil
}

// URI is the otpauth:// URI. It contains the secret: show it to the owner
// once, never log it.
func (e *Enrollment) URI() string { return e.key.URL() }

// Image renders the URI as a QR code image of the given size, for --png.
func (e *Enrollment) Image(width, height int) (image.Image, error) {
	img, err := e.key.Image(width, height)
	if err != nil {
		return nil, fmt.Errorf("render qr image: %w", err)
	}
	return img, nil
}

// Confirm checks a code from the owner's app against the new secret
// (steps now-1..now+1, constant time). It must succeed before Save.
func (e *Enrollment) Confirm(code string, now time.Time) error {
	c, ok := normalizeTOTP(code)
	if !ok {
		return errors.New("a code is six digits (hint: type the code the app shows for relay)")
	}
	steps, err := matchTOTP(e.secret, c, now)
	if err != nil {
		return err
	}
	if len(steps) == 0 {
		return ErrCodeMismatch
	}
	e.step = steps[0]
	return nil
}

// Save stores the confirmed secret in store, then resets the auth state at
// statePath (no failures, no lockout, no lock, the enrolment code's step
// marked used) with nRecovery fresh recovery codes, which it returns for
// the owner to write down: only their hashes are kept.
//
// It refuses with ErrStateInUse while a relay holds the state: the relay
// would keep accepting the old secret and overwrite the new state.
//
// The secret is written first: if the store refuses, nothing changed. If
// the state write then fails, the old state (its old recovery codes and
// step floor) stays in force and the error says to run enrolment again.
func (e *Enrollment) Save(store SecretStore, statePath string, nRecovery int) ([]string, error) {
	if e.step == 0 {
		return nil, errors.New("save totp secret: no code confirmed yet (hint: confirm a current code first)")
	}
	if nRecovery < 0 || nRecovery > maxRecovery {
		return nil, fmt.Errorf("save totp secret: %d recovery codes requested, want 0 to %d", nRecovery, maxRecovery)
	}
	st := &state{LastStep: e.step}
	var codes []string
	if nRecovery > 0 {
		salt, err := newSalt()
		if err != nil {
			return nil, err
		}
		st.Salt = salt
		seen := map[string]bool{}
		for len(codes) < nRecovery {
			c, err := newRecoveryCode(rand.Reader)
			if err != nil {
				return nil, err
			}
			n, _ := normalizeRecovery(c)
			if seen[n] {
				continue // 2^-80: only here so the state file never holds a duplicate
			}
			seen[n] = true
			codes = append(codes, c)
			st.Recovery = append(st.Recovery, recoveryEntry{Hash: hashRecovery(salt, n)})
		}
	}
	// Held from before the secret changes until the state matches it, so
	// a running relay can neither keep the old secret nor overwrite the
	// new state.
	lock, err := lockState(statePath)
	if err != nil {
		return nil, fmt.Errorf("save totp secret: %w", err)
	}
	defer lock.release()
	if err := store.Set(SecretName, []byte(e.secret)); err != nil {
		return nil, fmt.Errorf("save totp secret: %w", err)
	}
	if err := saveState(statePath, st); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResetIncomplete, err)
	}
	return codes, nil
}
