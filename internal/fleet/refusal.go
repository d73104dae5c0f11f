package fleet

import (
	"strings"

	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/lazyre"
)

// fingerprintLine finds the key ssh saw in its host key warning.
var fingerprintLine = lazyre.New(`(?m)^(SHA256:[A-Za-z0-9+/]{43})\.?\r?$`)

// sshFailures maps what ssh logs for a failure it exits 255 for to a Kind
// and the words the owner reads. ssh's own text is never shown whole: it
// names files and options of the hub.
var sshFailures = []struct {
	needle string
	kind   Kind
	reason string
}{
	{"REMOTE HOST IDENTIFICATION HAS CHANGED", KindHostKey, "host key mismatch: the member offered a key that is not the pinned one"},
	{"host key is known for", KindHostKey, "host key not pinned for this address (known_hosts has no entry for it)"},
	{"no matching host key type found", KindHostKey, "the member offers no host key of the pinned type"},
	{"Host key verification failed", KindHostKey, "host key verification failed"},
	{"Permission denied", KindAuth, "the member refused the hub's key (is it in the member's authorized_keys, with from= matching the hub?)"},
	{"Load key", KindHub, "the hub cannot load its identity key"},
	{"Connection refused", KindUnreachable, "unreachable: connection refused"},
	{"Connection timed out", KindUnreachable, "unreachable: connection timed out"},
	{"Operation timed out", KindUnreachable, "unreachable: connection timed out"},
	{"No route to host", KindUnreachable, "unreachable: no route to host"},
	{"Network is unreachable", KindUnreachable, "unreachable: network is unreachable"},
	{"Could not resolve hostname", KindUnreachable, "unreachable: the host name does not resolve"},
	{"Name or service not known", KindUnreachable, "unreachable: the host name does not resolve"},
	{"Timeout, server", KindUnreachable, "connection lost: the member stopped answering"},
	{"closed by remote host", KindUnreachable, "connection lost: closed by the member"},
	{"Connection reset", KindUnreachable, "connection lost: reset"},
	{"Connection closed", KindUnreachable, "connection lost: closed"},
	{"Broken pipe", KindUnreachable, "connection lost: broken pipe"},
	{"kex_exchange_identification", KindUnreachable, "unreachable: the member closed the connection before the ssh handshake"},
}

// sshFailure fills r for an ssh exit of 255, from ssh's log.
func sshFailure(r *Result, log string, midRun bool) {
	for _, f := range sshFailures {
		if strings.Contains(log, f.needle) {
			r.Kind, r.Reason = f.kind, f.reason
			if f.kind == KindHostKey {
				if m := fingerprintLine().FindStringSubmatch(log); m != nil {
					r.Fingerprint = m[1]
					r.Reason += "; it offered " + m[1]
				}
			}
			if midRun && f.kind == KindUnreachable {
				r.Reason += " (mid-run: the member's job dies with the connection)"
			}
			return
		}
	}
	last := "no message"
	if lines := strings.Split(strings.TrimSpace(log), "\n"); len(lines) > 0 && lines[len(lines)-1] != "" {
		last = cleanText(lines[len(lines)-1], 200)
	}
	r.Kind, r.Reason = KindUnreachable, "ssh failed: "+last
}

// SSHFailureReason says, in words safe to show, why ssh exited 255, from
// its log (-E): the host key, the key refused, unreachable. For other
// relay commands that reach a host through SSHArgv.
func SSHFailureReason(log string) string {
	var r Result
	sshFailure(&r, log, false)
	return r.Reason
}

// RefusalLine is the one-line refusal of relay serve-ssh at the end of
// what came back, cleaned of control characters and cut short.
func RefusalLine(s *exec.Spool) string { return memberLine(s) }
