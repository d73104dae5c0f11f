package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/relaychat/relay/internal/audit"
)

// Example_witness is a witness run with the transport left out: the host's
// side (what relay serve-ssh answers) is called directly.
func Example_witness() {
	tmp, _ := os.MkdirTemp("", "witness-example")
	defer os.RemoveAll(tmp)
	logDir := filepath.Join(tmp, "audit")
	k0, _ := audit.Init(logDir, nil)
	clear(k0)
	pub, _ := audit.ReadPublicKey(logDir) // the owner's copy, printed by init
	l, _ := audit.Open(logDir, audit.Options{})
	l.Append(audit.Record{Type: "start", Outcome: "ok"})

	// The host's answers.
	head := func() []byte { cp, _ := audit.LatestCheckpoint(logDir); return cp.Note }
	fetch := func(since uint64) (io.ReadCloser, error) {
		var b bytes.Buffer
		_, err := audit.RecordsSince(audit.Files(logDir), since, &b)
		return io.NopCloser(&b), err
	}

	// The witness, on another machine.
	s, _ := audit.CreateWitnessStore(filepath.Join(tmp, "witness"), pub)
	defer s.Close()
	s.Witness(head(), fetch) // first contact: taken on trust
	l.Append(audit.Record{Type: "request", Outcome: "ok", Command: "uptime"})
	l.Close()
	res, err := s.Witness(head(), fetch)
	var we *audit.WitnessError
	switch {
	case errors.As(err, &we):
		fmt.Println("ALERT", we.Kind, "at seq", we.FirstBad)
	case err != nil:
		fmt.Println("witness failed:", err)
	default:
		fmt.Println("witnessed seq", res.Checkpoint.Seq, "after", res.Records, "new record(s)")
		audit.RecordWitnessed(logDir, res.Checkpoint.Note) // audit-witnessed
	}
	// Output: witnessed seq 3 after 1 new record(s)
}
