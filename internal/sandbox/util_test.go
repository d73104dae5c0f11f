package sandbox

import (
	"regexp"
	"testing"
)

func matches(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func tempDir(t testing.TB, p *Profile) string {
	t.Helper()
	d, err := p.TempDir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
