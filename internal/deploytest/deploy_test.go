// Package deploytest checks the files in deploy/: the systemd unit's
// hardening and exposure score, and that the install script is idempotent.
package deploytest

import (
	"bufio"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unit = "../../deploy/systemd/relay.service"

func need(t *testing.T, tool string) {
	t.Helper()
	if _, err := osexec.LookPath(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing in CI", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
}

// directives reads the unit's [Service] settings; a repeated key keeps
// every value.
func directives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	sc := bufio.NewScanner(f)
	section := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if section != "[Service]" {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		d[k] = append(d[k], v)
	}
	return d
}

func TestUnitHardening(t *testing.T) {
	d := directives(t)
	want := map[string]string{
		"Type": "notify", "User": "relay", "UMask": "0077",
		"StateDirectoryMode": "0700", "LogsDirectoryMode": "0700",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
		"ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectClock": "yes",
		"ProtectHostname": "yes", "ProtectProc": "invisible", "RestrictSUIDSGID": "yes",
		"LockPersonality": "yes", "RestrictRealtime": "yes", "CapabilityBoundingSet": "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "MemoryMax": "512M", "TasksMax": "256",
		"LoadCredentialEncrypted": "bot-token:/etc/relay/bot-token.cred",
	}
	for k, v := range want {
		got, ok := d[k]
		if !ok || got[len(got)-1] != v {
			t.Errorf("got %s=%q, want %q", k, got, v)
		}
	}
	filter := strings.Join(d["SystemCallFilter"], " ")
	for _, sc := range []string{"@system-service", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"} {
		if !strings.Contains(filter, sc) {
			t.Errorf("SystemCallFilter lacks %s: without it the sandbox refuses every command", sc)
		}
	}
	if ns := d["RestrictNamespaces"]; len(ns) == 0 || strings.Contains(ns[0], "yes") {
		t.Errorf("got RestrictNamespaces=%q, want the namespaces the sandbox uses (user net)", ns)
	}
}

// TestUnitExposureScore: systemd-analyze's own score, at most 2.0.
func TestUnitExposureScore(t *testing.T) {
	need(t, "systemd-analyze")
	out, err := osexec.Command("systemd-analyze", "security", "--offline=true", "--threshold=20", unit).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if err != nil {
		t.Fatalf("systemd-analyze security: %v: %s", err, last)
	}
	t.Log(last)
}

func TestInstallIsIdempotent(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "relay")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		cmd := osexec.Command("bash", "../../deploy/install.sh", bin)
		cmd.Env = append(os.Environ(), "DESTDIR="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	first := run()
	if !strings.Contains(first, "installed /etc/systemd/system/relay.service") {
		t.Errorf("first run did not install the unit:\n%s", first)
	}
	if second := run(); strings.TrimSpace(second) != "nothing to do" {
		t.Errorf("second run changed something:\n%s", second)
	}
	for _, p := range []string{"/usr/local/bin/relay", "/etc/relay/relay.yaml", "/etc/polkit-1/rules.d/50-relay.rules"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("install.sh did not create %s: %v", p, err)
		}
	}
	fi, err := os.Stat(filepath.Join(root, "etc/relay"))
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("got /etc/relay %v %v, want mode 0750", fi, err)
	}
}
