package deploytest

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const apparmorProfile = "../../deploy/apparmor/relay"

// TestAppArmorProfile: the profile names exactly the installed binary,
// stays unconfined, grants user namespaces, and apparmor_parser accepts
// it. Debian 12's parser (AppArmor 3) knows neither abi 4.0 nor the userns
// rule, so there the rest of the profile is checked with the userns line
// and the abi taken out, and the userns line only by its text; an AppArmor
// 4 parser (Ubuntu 24.04) checks the file as it is.
func TestAppArmorProfile(t *testing.T) {
	b, err := os.ReadFile(apparmorProfile)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, want := range []string{
		"abi <abi/4.0>,",
		"profile relay /usr/local/bin/relay flags=(unconfined) {",
		"\n  userns,\n",
		"include if exists <local/relay>",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("profile lacks %q", want)
		}
	}
	if _, err := osexec.LookPath("apparmor_parser"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("apparmor_parser is missing, and CI must run this test: install apparmor")
		}
		t.Skip("apparmor_parser is not installed (Debian: apparmor)")
	}
	dir := t.TempDir()
	parse := func(name, text string) (string, error) {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(text), 0o644))
		// -Q: parse and compile, never load; -K: no cache.
		out, err := osexec.Command("apparmor_parser", "-Q", "-K", p).CombinedOutput()
		return string(out), err
	}
	text := src
	if _, err := os.Stat("/etc/apparmor.d/abi/4.0"); err != nil {
		t.Log("apparmor_parser predates AppArmor 4: checking the profile without its abi 4.0 and userns lines")
		text = strings.Replace(text, "abi <abi/4.0>,", "abi <abi/3.0>,", 1)
		text = strings.Replace(text, "\n  userns,\n", "\n", 1)
	}
	if out, err := parse("relay", text); err != nil {
		t.Errorf("apparmor_parser refuses the profile: %v\n%s", err, out)
	}
	// The check can fail.
	if out, err := parse("broken", strings.Replace(text, "flags=(unconfined) {", "flags=(unconfined {", 1)); err == nil {
		t.Errorf("apparmor_parser accepted a broken profile:\n%s", out)
	}
}
