package audit

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"unsafe"
)

// minSecret is the shortest value ForbidSecret takes: shorter ones would
// match innocent text and redact it.
const minSecret = 6

// ForbidSecret registers a value that must never appear in a record: the
// bot token, the TOTP secret, K0. Append replaces it (and its hex, base32
// and base64 forms) with "[redacted]" and marks the record redacted, and
// refuses a record whose line would still contain it.
func (l *Log) ForbidSecret(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forbidLocked(b)
}

func (l *Log) forbidLocked(b []byte) {
	if len(b) < minSecret {
		return
	}
	forms := []string{string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base32.StdEncoding.EncodeToString(b), base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b),
		base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
	for _, f := range forms {
		l.secrets = append(l.secrets, []byte(f))
	}
}

const redacted = "[redacted]"

func (l *Log) redactLocked(r *Record) {
	if len(l.secrets) == 0 {
		return
	}
	fix := func(s string) string {
		for _, sec := range l.secrets {
			// A view, not a copy: converting each secret for each field
			// of each record cost more than the append. The slices are
			// only cleared by Close, which holds mu as this does.
			v := unsafe.String(unsafe.SliceData(sec), len(sec))
			if strings.Contains(s, v) {
				s = strings.ReplaceAll(s, v, redacted)
				r.Redacted = true
			}
		}
		return s
	}
	r.Type, r.Outcome = Kind(fix(string(r.Type))), Outcome(fix(string(r.Outcome)))
	for _, p := range []*string{&r.Reason, &r.Command, &r.Workdir, &r.Sandbox,
		&r.Job, &r.Signal, &r.OutputSHA256, &r.Detail, &r.TornSHA256,
		&r.Host, &r.Call, &r.Peer, &r.RemoteMAC} {
		*p = fix(*p)
	}
	if r.Params != nil {
		m := make(map[string]string, len(r.Params))
		for k, v := range r.Params {
			m[fix(k)] = fix(v)
		}
		r.Params = m
	}
	for _, p := range []*[]string{&r.Argv, &r.Args} {
		if *p != nil {
			a := make([]string, len(*p))
			for i, v := range *p {
				a[i] = fix(v)
			}
			*p = a
		}
	}
}
