package deploytest

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

const polkitRules = "../../deploy/polkit/50-relay.rules"

// TestPolkitRuleScope checks the rule's shape without a JavaScript engine:
// it is about manage-units for user relay, verb "start" only, and the unit
// name regex (JavaScript and RE2 agree on this subset) admits exactly the
// relay-action-NAME.service units.
func TestPolkitRuleScope(t *testing.T) {
	b, err := os.ReadFile(polkitRules)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, want := range []string{
		`action.id !== "org.freedesktop.systemd1.manage-units"`,
		`subject.user !== "relay"`,
		`action.lookup("unit")`,
		`verb === "start"`,
		`return polkit.Result.NO;`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("rule lacks %s", want)
		}
	}
	for _, bad := range []string{"Result.AUTH_", `"restart"`, `"stop"`, `"reload"`} {
		if strings.Contains(stripComments(src), bad) {
			t.Errorf("rule mentions %s: relay may only start action units", bad)
		}
	}

	lits := regexp.MustCompile(`/(\^[^/]*\$)/\.test\(unit\)`).FindAllStringSubmatch(src, -1)
	if len(lits) != 1 {
		t.Fatalf("got %d unit-name regex literals, want exactly one anchored /^...$/.test(unit)", len(lits))
	}
	re, err := regexp.Compile(lits[0][1])
	if err != nil {
		t.Fatalf("unit regex %q: %v", lits[0][1], err)
	}
	for _, c := range []struct {
		unit string
		want bool
	}{
		{"relay-action-restart-nginx.service", true},
		{"relay-action-reboot.service", true},
		{"relay-action-a1.service", true},
		{"relay-action-.service", false},
		{"relay-action--x.service", false},
		{"relay-action-x-.service", false},
		{"relay-action@nginx.service", false},
		{"relay-action-x@y.service", false},
		{"relay-action-x.service.d", false},
		{"relay-action-x.socket", false},
		{"relay-action-x.timer", false},
		{"relay-action-X.service", false},
		{"relay.service", false},
		{"nginx.service", false},
		{"xrelay-action-x.service", false},
		{"relay-action-x.service\n", false},
		{"relay-action-../x.service", false},
	} {
		if got := re.MatchString(c.unit); got != c.want {
			t.Errorf("unit %q: got allowed=%v, want %v", c.unit, got, c.want)
		}
	}
}

// stripComments drops // comments so that explanations may name verbs.
func stripComments(src string) string {
	var b strings.Builder
	for _, l := range strings.Split(src, "\n") {
		if i := strings.Index(l, "//"); i >= 0 {
			l = l[:i]
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}
