package fleet

import (
	"os"
	"strings"
	"testing"
)

// TestReconcile: after real calls of every kind, the hub's log and the
// member's agree; a member's log with a record cut out, or another
// member's log, does not.
func TestReconcile(t *testing.T) {
	nas := newMember(t, "nas", memberOpts{})
	web := newMember(t, "web", memberOpts{})
	h := newHub(t, "", nas, web)
	h.call(t, "nas", "hello", "one")
	h.call(t, "nas", "fails")
	h.call(t, "nas", "hello", "Two") // refused by the member
	h.call(t, "web", "hello", "w")
	nas.stop()
	h.f.Close()
	h.call(t, "nas", "hello", "three") // unreachable
	nas.start()

	rc, err := Reconcile(hubFiles(h), "nas", fileList(nas.auditDir))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Calls != 4 || rc.Found != 2 || rc.Refused != 1 || rc.Unreached != 1 || len(rc.Problems) != 0 {
		t.Errorf("got %s %v", rc, rc.Problems)
	}
	// Another member's log holds none of nas's calls.
	rc, _ = Reconcile(hubFiles(h), "nas", fileList(web.auditDir))
	if len(rc.Problems) != 3 {
		t.Errorf("against web's log: got %s %v, want 3 problems", rc, rc.Problems)
	}
	// The member's log with its last end record cut out (a member that
	// hides a command it ran): the cross-check finds the gap.
	files := fileList(nas.auditDir)
	data, err := os.ReadFile(files[0])
	must(t, err)
	var kept []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if strings.Contains(l, `"type":"exec_end"`) && strings.Contains(l, `"outcome":"failed"`) {
			continue
		}
		kept = append(kept, l)
	}
	cut := files[0] + ".cut"
	must(t, os.WriteFile(cut, []byte(strings.Join(kept, "")), 0o600))
	rc, _ = Reconcile(hubFiles(h), "nas", []string{cut})
	if len(rc.Problems) != 1 || !strings.Contains(rc.Problems[0], "/fails") {
		t.Errorf("against a log missing /fails's end: got %s %v", rc, rc.Problems)
	}
}
