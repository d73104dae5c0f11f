package fleet

import (
	"testing"

	"github.com/relaychat/relay/internal/audit"
)

// TestKindsAreAuditOutcomes: a remote_end record's outcome is its call's
// Kind, so every Kind is an outcome internal/audit knows.
func TestKindsAreAuditOutcomes(t *testing.T) {
	for _, k := range Kinds {
		if !audit.Outcome(k).Known() {
			t.Errorf("fleet kind %q is not in audit.Outcomes", k)
		}
	}
}
