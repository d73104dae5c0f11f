package member

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/remote"
)

// witness answers the witness's key: audit-head, a checkpoint signed now
// by whoever holds the log; audit-since, the record lines after a seq
// from the archived and live files, as they are on disk; or
// audit-witnessed, a checkpoint the witness stored, noted beside the log
// (audit.WitnessedFile) once it is shown to be this log's. None writes to
// the log (a refusal aside) or runs anything: what is served is what the
// witness checks, not what it trusts.
func (s *server) witness(ctx context.Context, req *remote.Request) int {
	w := remote.NewWriter(s.o.Stdout)
	dir := s.o.Config.Audit.Dir
	switch req.Op {
	case remote.OpAuditHead:
		if s.o.Checkpoint == nil {
			return s.refuse(ctx, remote.ExitAudit, audit.Record{}, "audit-head: this member signs no checkpoints")
		}
		cp, err := s.o.Checkpoint.Checkpoint(ctx)
		if err != nil {
			return s.refuse(ctx, remote.ExitAudit, audit.Record{}, "audit-head: %v", err)
		}
		if err := w.Hello(s.o.Version); err != nil {
			return s.failed("audit-head", err)
		}
		if err := w.Checkpoint(cp.Note); err != nil {
			return s.failed("audit-head", err)
		}
		return remote.ExitRan
	case remote.OpAuditSince:
		files, err := auditFiles(dir)
		if err != nil {
			return s.refuse(ctx, remote.ExitAudit, audit.Record{}, "audit-since: %v", err)
		}
		if err := w.Hello(s.o.Version); err != nil {
			return s.failed("audit-since", err)
		}
		n, err := audit.RecordsSince(files, req.Since, w.AuditWriter())
		if err != nil {
			// The stream has begun: without its end frame the witness
			// takes it as cut off, never as the log's end.
			fmt.Fprintf(s.o.Stderr, "relay serve-ssh: audit-since %d: %s\n", req.Since, oneLine(err.Error()))
			return remote.ExitAudit
		}
		if err := w.End(n); err != nil {
			return s.failed("audit-since", err)
		}
		return remote.ExitRan
	case remote.OpAuditWitnessed:
		// Checked before it is noted, so that a forged or foreign note
		// is refused as such and leaves the noted one as it was.
		if _, err := audit.CheckWitnessed(dir, req.Note); errors.Is(err, audit.ErrNotThisLog) {
			return s.refuse(ctx, remote.ExitNotThisLog, audit.Record{}, "audit-witnessed refused: %v", err)
		} else if err != nil {
			return s.refuse(ctx, remote.ExitAudit, audit.Record{}, "audit-witnessed: %v", err)
		}
		cp, err := audit.RecordWitnessed(dir, req.Note)
		if err != nil {
			return s.refuse(ctx, remote.ExitAudit, audit.Record{}, "audit-witnessed: %v", err)
		}
		if err := w.Hello(s.o.Version); err != nil {
			return s.failed("audit-witnessed", err)
		}
		if err := w.Checkpoint(cp.Note); err != nil {
			return s.failed("audit-witnessed", err)
		}
		return remote.ExitRan
	}
	return s.refuse(ctx, remote.ExitMalformed, audit.Record{}, "not an audit op")
}

func (s *server) failed(what string, err error) int {
	fmt.Fprintf(s.o.Stderr, "relay serve-ssh: %s not sent: %s\n", what, oneLine(err.Error()))
	return remote.ExitFailed
}

// auditFiles are the log's files in order: those archived in the default
// archive directory, then the live ones.
func auditFiles(dir string) ([]string, error) {
	arch, err := audit.ListArchive(filepath.Join(dir, audit.ArchiveDirName))
	if err != nil {
		return nil, err
	}
	live, err := audit.ListFiles(dir)
	if err != nil {
		return nil, err
	}
	return append(arch, live...), nil
}
