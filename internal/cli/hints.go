package cli

import (
	"errors"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/internal/telegram"
)

// hints is where the library's errors meet the commands that fix them:
// library packages return errors wrapping these sentinels (or typed
// errors) and never name a relay command; report prints the first entry
// whose error err wraps as a "relay: hint:" line. TestHintsOnlyAtTheBoundary
// keeps the commands out of the libraries.
var hints = []struct {
	is   func(error) bool
	hint string
}{
	{isErr(audit.ErrInUse), "stop it, or use 'relay notify', which goes through it"},
	{isErr(audit.ErrNotInitialized), "run 'relay audit init'"},
	{isErr(audit.ErrStateCorrupt), "restore it from a backup, or start a new log with 'relay audit init' in an empty directory"},
	{isErr(audit.ErrDoesNotVerify), "run 'relay audit verify'; to start over, move the directory aside and run 'relay audit init'"},
	{isErr(audit.ErrNoCheckpointKey), "run 'relay audit init --checkpoint-key'"},
	{isErr(audit.ErrCheckpointKeyCorrupt), "restore it, or make a new one with 'relay audit init --checkpoint-key --force' and give the new public key to your witness"},
	{isErr(audit.ErrPublicKey), "pass the public checkpoint key (checkpoint.pub), as 'relay audit init' printed it"},
	{isErr(audit.ErrKeySize), "pass K0 as 'relay audit init' printed it"},
	{notFound(secrets.BotToken), "store it with 'relay token set'"},
	{notFound(secrets.TOTPSecret), "enrol it with 'relay totp enroll'"},
	{notFound(secrets.AuditKey), "'relay audit init' stores it; '--no-store' keeps it off the host"},
	{isErr(secrets.ErrStoredEmpty), "store it again ('relay token set', 'relay totp enroll' or 'relay audit init', for the secret named)"},
	{isErr(auth.ErrNoSecret), "run 'relay totp enroll'"},
	{isErr(auth.ErrSecretUnusable), "run 'relay totp enroll --force'"},
	{isErr(auth.ErrStateCorrupt), "restore it from a backup, or run 'relay totp enroll --force' to start over (this also issues new recovery codes)"},
	{isErr(auth.ErrResetIncomplete), "fix that, then run 'relay totp enroll --force' again"},
	{isErr(telegram.ErrTokenMalformed), "store the token BotFather gave with 'relay token set'"},
	{telegramCode(401, 404), "check the bot token ('relay token set') and telegram.api_url"},
}

// hintPlaygroundAPIURL is the fix for a playground.APIURLError.
const hintPlaygroundAPIURL = "run the playground on a copy of the config without telegram.api_url; relay run keeps using the original"

// hintFor is the hint for err from the table, "" when none applies.
func hintFor(err error) string {
	for _, h := range hints {
		if h.is(err) {
			return h.hint
		}
	}
	return ""
}

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func notFound(name string) func(error) bool {
	return func(err error) bool {
		var nf *secrets.NotFoundError
		return errors.As(err, &nf) && nf.Name == name
	}
}

func telegramCode(codes ...int) func(error) bool {
	return func(err error) bool {
		var te *telegram.Error
		if !errors.As(err, &te) {
			return false
		}
		for _, c := range codes {
			if te.Code == c {
				return true
			}
		}
		return false
	}
}
