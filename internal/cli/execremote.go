package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/fleet"
	"github.com/relaychat/relay/internal/recorder"
	"github.com/relaychat/relay/policy"
)

// execRemote is relay exec --host: a fan-out from the hub's shell, audited
// in the hub's log like the chat's.
func execRemote(ctx context.Context, env *Env, path string, cfg *policy.Config, target, name string, args []string) error {
	if len(cfg.Hosts) == 0 {
		return failf(ExitConfig, "add hosts: to "+path+" (see docs/reference.md)", "exec --host: %s names no hosts", path)
	}
	if len(audit.Files(cfg.Audit.Dir)) == 0 {
		return failf(ExitNotSetup, "relay audit init --config "+path, "exec --host: the hub's audit log in %s is not set up; a remote call is never made unrecorded", cfg.Audit.Dir)
	}
	f, err := fleet.New(cfg, fleet.Options{})
	if err != nil {
		return withCode(ExitConfig, err)
	}
	hosts, err := f.Resolve(target)
	if err != nil {
		return usageErr("exec --host: %v", err)
	}
	rec := &recorder.Recorder{Dir: cfg.Audit.Dir, StateDir: cfg.StateDir, RotateBytes: cfg.Audit.RotateBytes}
	record := func(r audit.Record) error { _, err := rec.Record(ctx, r); return err }
	out := &prefixer{w: env.Stdout, prefix: len(hosts) > 1, pending: map[string][]byte{}}
	s := f.FanOut(ctx, hosts, name, args, fleet.FanOutOptions{CallOptions: fleet.CallOptions{Audit: record, Output: out.write}})
	defer s.Close()
	out.flush()
	code := ExitOK
	for _, r := range s.Results {
		line := remoteStatus(r)
		if len(hosts) > 1 || !r.Ran() {
			line = r.Host + ": " + line
		}
		if r.Ran() {
			fmt.Fprintln(env.Stderr, line)
		} else {
			env.say(kindError, "%s", line)
		}
		if r.AuditErr != nil {
			env.say(kindWarning, "%s: the hub's end record was not written: %v", r.Host, r.AuditErr)
		}
		code = worse(code, remoteExit(r))
	}
	if code == ExitOK {
		return nil
	}
	if len(hosts) == 1 && !s.Results[0].Ran() {
		if h := remoteHint(s.Results[0]); h != "" {
			env.say(kindHint, "%s", h)
		}
	}
	return errSilent{code: code}
}

// remoteStatus is the status line of a remote result.
func remoteStatus(r *fleet.Result) string {
	if !r.Ran() {
		return r.Reason
	}
	t := r.Trailer
	s := r.Status()
	s += fmt.Sprintf(", %s, %d bytes", (time.Duration(t.DurationMS) * time.Millisecond).Round(time.Millisecond), t.Bytes)
	if r.Truncated {
		s += fmt.Sprintf(", %d received", t.Sent)
	}
	return s
}

func remoteExit(r *fleet.Result) int {
	switch r.Kind {
	case fleet.KindOK:
		return ExitOK
	case fleet.KindFailed:
		return ExitCommandFailed
	case fleet.KindKilled, fleet.KindTimeout, fleet.KindCanceled:
		return ExitCommandKilled
	case fleet.KindRefused:
		return ExitUsage
	}
	return ExitFailure
}

func remoteHint(r *fleet.Result) string {
	switch r.Kind {
	case fleet.KindHostKey, fleet.KindAuth, fleet.KindUnreachable, fleet.KindProtocol:
		return "relay doctor checks each host"
	case fleet.KindHub:
		if strings.Contains(r.Reason, "audit") {
			return "relay audit verify; relay doctor"
		}
	}
	return ""
}

// worse orders exit codes by how bad they are for a fan-out: a host that
// could not be reached is worse than a command that failed.
func worse(a, b int) int {
	rank := map[int]int{ExitOK: 0, ExitCommandFailed: 1, ExitCommandKilled: 2, ExitUsage: 3, ExitFailure: 4}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// prefixer writes each host's output, prefixing whole lines with the host
// when several run at once, so that their lines never mix mid-line.
type prefixer struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  bool
	pending map[string][]byte
	err     error
}

func (p *prefixer) write(host string, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.prefix {
		if p.err == nil {
			_, p.err = p.w.Write(b)
		}
		return
	}
	buf := append(p.pending[host], b...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		p.line(host, buf[:i+1])
		buf = buf[i+1:]
	}
	// A line without end is cut rather than held without bound.
	if len(buf) > 64<<10 {
		p.line(host, append(buf, '\n'))
		buf = nil
	}
	p.pending[host] = append([]byte(nil), buf...)
}

func (p *prefixer) line(host string, l []byte) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, "%s: %s", host, l)
	}
}

func (p *prefixer) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for host, b := range p.pending {
		if len(b) > 0 {
			p.line(host, append(b, '\n'))
		}
	}
	p.pending = map[string][]byte{}
}
