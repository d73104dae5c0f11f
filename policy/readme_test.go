package policy

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEConfigExampleLoads keeps the config reference in README.md
// honest: its example must load without error.
func TestREADMEConfigExampleLoads(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	start := strings.Index(s, "```yaml\nstate_dir:")
	if start < 0 {
		t.Fatal("README.md has no config example starting with state_dir")
	}
	body := s[start+len("```yaml\n"):]
	end := strings.Index(body, "```")
	if end < 0 {
		t.Fatal("unterminated config example in README.md")
	}
	if _, err := Parse("README.md", []byte(body[:end])); err != nil {
		t.Errorf("the README's config example does not load:\n%v", err)
	}
}
