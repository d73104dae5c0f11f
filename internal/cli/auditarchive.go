package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/relaychat/relay/internal/audit"
)

// parseBefore reads archive's --before: an RFC 3339 time, a date (the
// start of that day, UTC), or a duration back from now.
func parseBefore(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := parseWhen(s, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2026-01-02), an RFC 3339 time (2026-01-02T15:04:05Z) nor a duration (720h)", s)
	}
	return t, nil
}

func auditArchive(env *Env, args []string) error {
	fs := newFlags("audit archive")
	cfgPath := fs.String("config", "", "")
	dir := fs.String("dir", "", "")
	before := fs.String("before", "", "")
	to := fs.String("to", "", "")
	keyArg := fs.String("key", "", "")
	force := fs.Bool("force-unwitnessed", false, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *before == "" {
		return usageErr("audit archive: --before is required (archive whole files older than it)")
	}
	t, err := parseBefore(*before, time.Now())
	if err != nil {
		return usageErr("audit archive: --before: %v", err)
	}
	w, err := auditLocate(env, *cfgPath, *dir)
	if err != nil {
		return err
	}
	k0, err := auditKey(env, *keyArg, w, "audit archive")
	if err != nil {
		return err
	}
	defer clear(k0)
	if k0 == nil {
		return failf(ExitNotSetup, "pass --key K0 (--key - reads it from standard input)", "audit archive: K0 is needed to verify what is archived")
	}
	l, err := audit.Open(w.dir, audit.Options{})
	if errors.Is(err, audit.ErrInUse) {
		return failf(ExitFailure, "stop it (systemctl stop relay), archive, then start it again", "audit archive: the relay daemon is running and owns %s", w.dir)
	}
	if err != nil {
		return err
	}
	res, aerr := l.Archive(audit.ArchiveOptions{Before: t, Dir: *to, Key: k0, ForceUnwitnessed: *force})
	if cerr := l.Close(); aerr == nil {
		aerr = cerr
	}
	if len(res.Files) > 0 {
		first, last := res.Files[0], res.Files[len(res.Files)-1]
		fmt.Fprintf(env.Stdout, "archived %d file(s), records %d-%d, to %s; the live log now starts at seq %d (archive record seq %d)\n",
			len(res.Files), first.First, last.Last, res.Dir, last.Last+1, res.Record.Seq)
	}
	return aerr
}
