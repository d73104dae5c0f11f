package cli

import (
	"errors"
	"fmt"

	"github.com/relaychat/relay/internal/secrets"
)

// keyringNote says why the OS keyring was not used, in one line, or ok
// false when it was used (or turned off on purpose, which needs no word).
// An absent keyring is a note: files take its place. A keyring that is
// there but locked or failing is a warning with the fix, since it may hold
// the very secret relay then goes without.
func keyringNote(err error) (kind, msg, hint string, ok bool) {
	if err == nil || errors.Is(err, secrets.ErrKeyringOff) {
		return "", "", "", false
	}
	var ke *secrets.KeyringError
	if !errors.As(err, &ke) {
		return kindWarning, "os keyring skipped: " + err.Error(), "", true
	}
	if secrets.Absent(err) {
		return kindNote, fmt.Sprintf("no os keyring here (%v); using files (secrets.keyring: false in the config stops looking)", ke.Kind), "", true
	}
	return kindWarning, "os keyring skipped: " + ke.Kind.Error(), ke.Hint(), true
}

// tellKeyring prints keyringNote for the first keyring failure of the run;
// later ones are the same news.
func (e *Env) tellKeyring(errs ...error) {
	if e.keyringTold {
		return
	}
	for _, err := range errs {
		kind, msg, hint, ok := keyringNote(err)
		if !ok {
			continue
		}
		e.keyringTold = true
		e.tell(kind, msg, hint)
		return
	}
}

func skippedErrs(p secrets.Probe) []error {
	var errs []error
	for _, s := range p.Skipped {
		errs = append(errs, s.Err)
	}
	return errs
}

// lookup reads a secret and tells, once, why the keyring was skipped.
func lookup(env *Env, store *secrets.Store, name string) ([]byte, secrets.Probe, error) {
	v, p, err := store.Lookup(name)
	env.tellKeyring(skippedErrs(p)...)
	return v, p, err
}

// keeper stores secrets by relay's one rule: in the OS keyring, or in a
// 0600 file in the state directory when this host has no keyring (or the
// config turns it off, or --file asks for a file). A keyring that is there
// but locked is an error, not a reason to write a second copy elsewhere.
// It remembers where each secret went, for the message that says so. It
// satisfies auth.SecretStore and audit.KeyStore.
type keeper struct {
	env    *Env
	store  *secrets.Store
	toFile bool
	// kept records, per secret name, where Set put it.
	kept map[string]kept
}

type kept struct {
	source secrets.Source // SourceKeyring or SourceFile
	where  string         // for a person: the keyring item or the file
}

func newKeeper(env *Env, store *secrets.Store, toFile bool) *keeper {
	return &keeper{env: env, store: store, toFile: toFile, kept: map[string]kept{}}
}

// where says where Set put name, "" when it did not.
func (k *keeper) where(name string) string { return k.kept[name].where }

func (k *keeper) Get(name string) ([]byte, error) {
	v, _, err := lookup(k.env, k.store, name)
	return v, err
}

func (k *keeper) Set(name string, v []byte) error {
	if !k.toFile {
		err := k.store.Set(name, v)
		if err == nil {
			k.kept[name] = kept{secrets.SourceKeyring, fmt.Sprintf("the os keyring (service %q, user %q)", keyringService(), name)}
			return nil
		}
		if !secrets.Absent(err) {
			var ke *secrets.KeyringError
			if errors.As(err, &ke) && ke.Hint() != "" {
				return withHint(err, ke.Hint()+"; or pass --file")
			}
			return err
		}
		k.env.tellKeyring(err)
	}
	path, err := k.store.SetFile(name, v)
	if err != nil {
		return err
	}
	k.kept[name] = kept{secrets.SourceFile, path + " (mode 0600)"}
	return nil
}

// warnOutranked tells the owner when a source that takes precedence holds
// another copy of name than the one just stored: otherwise they believe
// relay now uses the new one.
func (k *keeper) warnOutranked(name, what string) {
	p, err := k.store.Probe(name)
	if err != nil {
		k.env.warnf("the stored %s cannot be read back: %v", what, err)
		return
	}
	if p.Source != k.kept[name].source {
		k.env.warnf("relay will keep using the %s from the %s (%s), which takes precedence", what, sourceName(p.Source), p.Location)
	}
}
