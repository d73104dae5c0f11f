package deploytest

import (
	"bufio"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	systemdDir = "../../deploy/systemd"
	unitPath   = systemdDir + "/relay.service"
	// maxExposure is the target for systemd-analyze security.
	maxExposure = 2.5
)

// unit is a parsed unit file: section -> key -> every assignment, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open unit: %v", err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: line continuations are not expected here", path, n)
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		u[section][k] = append(u[section][k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last returns the effective value of a single-valued setting.
func (u unit) last(section, key string) (string, bool) {
	vs, ok := u[section][key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// TestUnitDirectives pins every hardening directive the issue asks for, so
// that an edit that drops one fails even while the score stays under 2.5.
func TestUnitDirectives(t *testing.T) {
	u := parseUnit(t, unitPath)
	want := []struct{ key, value string }{
		{"Type", "notify"},
		{"NotifyAccess", "main"},
		{"User", "relay"},
		{"Group", "relay"},
		{"ExecStart", "/usr/local/bin/relay run --config /etc/relay/relay.yaml"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"WatchdogSec", "60s"},
		{"StateDirectory", "relay"},
		{"StateDirectoryMode", "0700"},
		{"LogsDirectory", "relay"},
		{"LogsDirectoryMode", "0700"},
		{"ConfigurationDirectory", "relay"},
		{"ConfigurationDirectoryMode", "0750"},
		{"UMask", "0077"},
		{"LoadCredentialEncrypted", "bot-token:/etc/relay/bot-token.cred"},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"PrivateIPC", "yes"},
		{"PrivateMounts", "yes"},
		{"ProtectKernelTunables", "yes"},
		{"ProtectKernelModules", "yes"},
		{"ProtectKernelLogs", "yes"},
		{"ProtectClock", "yes"},
		{"ProtectHostname", "yes"},
		// The delegated subtree must be writable: TestUnitRunsTheSandbox
		// shows that "yes" makes it read-only.
		{"ProtectControlGroups", "no"},
		{"ProtectProc", "invisible"},
		{"ProcSubset", "pid"},
		{"PrivateUsers", "yes"},
		{"RestrictSUIDSGID", "yes"},
		{"LockPersonality", "yes"},
		{"RestrictRealtime", "yes"},
		{"MemoryDenyWriteExecute", "yes"},
		{"RemoveIPC", "yes"},
		{"KeyringMode", "private"},
		{"DevicePolicy", "closed"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"RestrictNamespaces", "user mnt pid ipc uts cgroup net"},
		{"Delegate", "yes"},
		{"DelegateSubgroup", "relay"},
		{"SystemCallArchitectures", "native"},
		{"SystemCallErrorNumber", "EPERM"},
		{"MemoryMax", "512M"},
		{"TasksMax", "256"},
	}
	for _, w := range want {
		t.Run(w.key, func(t *testing.T) {
			got, ok := u.last("Service", w.key)
			if !ok {
				t.Fatalf("got no %s=, want %s=%s", w.key, w.key, w.value)
			}
			if got != w.value {
				t.Errorf("got %s=%s, want %s=%s", w.key, got, w.key, w.value)
			}
		})
	}
}

// sandboxCalls are the system calls the sandbox's trampoline makes beyond
// @system-service: without any one of them the seccomp filter systemd
// installs makes the sandbox refuse every command.
// TestUnitRunsTheSandbox proves it under a real systemd; this keeps the
// list from shrinking unnoticed where that test cannot run.
var sandboxCalls = []string{
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
	"seccomp",
	"mount", "umount2", "pivot_root", "open_tree", "move_mount", "mount_setattr",
}

// TestUnitSystemCallFilter: the unit's SystemCallFilter= allows
// @system-service and every call in sandboxCalls, and no later line takes
// one away again.
func TestUnitSystemCallFilter(t *testing.T) {
	u := parseUnit(t, unitPath)
	lines := u["Service"]["SystemCallFilter"]
	if len(lines) == 0 {
		t.Fatal("got no SystemCallFilter=, want @system-service plus the sandbox's calls")
	}
	allowed := map[string]bool{}
	for _, l := range lines {
		if l == "" {
			clear(allowed)
			continue
		}
		deny := strings.HasPrefix(l, "~")
		for _, s := range strings.Fields(strings.TrimPrefix(l, "~")) {
			allowed[s] = !deny
		}
	}
	for _, s := range append([]string{"@system-service"}, sandboxCalls...) {
		if !allowed[s] {
			t.Errorf("got SystemCallFilter lines %q, want %s allowed", lines, s)
		}
	}
	// Nothing beyond what the sandbox needs: each extra call is exposure.
	for s, ok := range allowed {
		if ok && s != "@system-service" && !slices.Contains(sandboxCalls, s) {
			t.Errorf("SystemCallFilter= allows %s, which the sandbox does not need", s)
		}
	}
}

// TestUnitSandboxCallsOutsideSystemService: each call in sandboxCalls is
// one @system-service lacks, by systemd's own definition of the group, so
// each line of the filter is needed.
func TestUnitSandboxCallsOutsideSystemService(t *testing.T) {
	needTool(t, "systemd-analyze")
	in := expandGroup(t, "@system-service")
	if len(in) < 100 {
		t.Fatalf("got %d calls in @system-service, want systemd's list", len(in))
	}
	for _, s := range sandboxCalls {
		if in[s] {
			t.Errorf("%s is already in @system-service: listing it is noise", s)
		}
	}
}

// expandGroup asks systemd-analyze for every call in a syscall group,
// nested groups included.
func expandGroup(t *testing.T, group string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	var walk func(g string)
	walk = func(g string) {
		b, err := osexec.Command("systemd-analyze", "syscall-filter", g).Output()
		if err != nil {
			t.Fatalf("systemd-analyze syscall-filter %s: %v", g, err)
		}
		for i, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if i == 0 || l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if strings.HasPrefix(l, "@") {
				walk(l)
				continue
			}
			out[l] = true
		}
	}
	walk(group)
	return out
}

// TestUnitForbidden lists settings that must not appear: each would weaken
// a guarantee or break commands in a way the score cannot see.
func TestUnitForbidden(t *testing.T) {
	u := parseUnit(t, unitPath)
	for _, c := range []struct{ key, why string }{
		{"Environment", "the token must not travel in the environment, and children would inherit it"},
		{"EnvironmentFile", "the token must not travel in the environment, and children would inherit it"},
		{"PassEnvironment", "the relay's environment is explicit"},
		{"DynamicUser", "state, /etc/relay's group and the polkit rule need a stable relay user"},
		{"SupplementaryGroups", "every command would get the group; it belongs in an opt-in drop-in"},
		{"AmbientCapabilities", "relay needs no capability"},
	} {
		t.Run(c.key, func(t *testing.T) {
			v, ok := u.last("Service", c.key)
			if ok && v != "" {
				t.Errorf("got %s=%s, want it unset: %s", c.key, v, c.why)
			}
		})
	}
}

func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := osexec.LookPath(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing, and CI must run this test: install the systemd package", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
}

var overallRe = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+\.[0-9]+)`)

// exposure runs systemd-analyze security offline on path and returns the
// overall score, its output and the command's error (nil for exit 0).
func exposure(t *testing.T, path string, extra ...string) (float64, string, error) {
	t.Helper()
	args := append([]string{"security", "--offline=true", "--no-pager"}, extra...)
	cmd := osexec.Command("systemd-analyze", append(args, path)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_LOG_LEVEL=err")
	out, err := cmd.CombinedOutput()
	m := overallRe.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security %s printed no overall score (err %v):\n%s", path, err, out)
	}
	score, perr := strconv.ParseFloat(string(m[1]), 64)
	if perr != nil {
		t.Fatal(perr)
	}
	return score, string(out), err
}

// TestUnitExposureScore is the target, checked the way CI checks
// it: systemd-analyze's own score at most 2.5, and --threshold=25 exits 0.
func TestUnitExposureScore(t *testing.T) {
	needTool(t, "systemd-analyze")
	score, out, err := exposure(t, unitPath, "--threshold=25")
	if err != nil {
		t.Fatalf("systemd-analyze security --threshold=25: %v (score %.1f)\n%s", err, score, out)
	}
	if score > maxExposure {
		t.Errorf("got exposure %.1f, want at most %.1f", score, maxExposure)
	}
	t.Logf("relay.service exposure %.1f", score)
}

// TestThresholdFailsAWeakUnit proves the CI check can fail: a unit with no
// hardening scores far above 2.5 and --threshold=25 exits non-zero. Without
// this, a systemd-analyze that ignored --threshold would pass everything.
func TestThresholdFailsAWeakUnit(t *testing.T) {
	needTool(t, "systemd-analyze")
	weak := filepath.Join(t.TempDir(), "weak.service")
	if err := os.WriteFile(weak, []byte("[Service]\nExecStart=/usr/local/bin/relay run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	score, out, err := exposure(t, weak, "--threshold=25")
	var ee *osexec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("got err %v for a unit scoring %.1f, want a non-zero exit\n%s", err, score, out)
	}
	if score <= maxExposure {
		t.Errorf("got exposure %.1f for an unhardened unit, want above %.1f", score, maxExposure)
	}
}

var statedRe = regexp.MustCompile(`from ([0-9]\.[0-9]) to ([0-9]\.[0-9])`)

// TestDropInScores applies each drop-in to the unit and checks the score
// it states in its own comment, so the documented price stays true.
func TestDropInScores(t *testing.T) {
	needTool(t, "systemd-analyze")
	base, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	drops, _ := filepath.Glob(filepath.Join(systemdDir, "drop-ins", "*.conf"))
	if len(drops) == 0 {
		t.Fatal("no drop-ins in deploy/systemd/drop-ins")
	}
	for _, d := range drops {
		t.Run(filepath.Base(d), func(t *testing.T) {
			body, err := os.ReadFile(d)
			if err != nil {
				t.Fatal(err)
			}
			m := statedRe.FindSubmatch(body)
			if m == nil {
				t.Fatalf("%s states no score (\"from X.Y to X.Y\"); say what it costs", d)
			}
			from, stated := string(m[1]), string(m[2])
			if score, _, _ := exposure(t, unitPath); strconv.FormatFloat(score, 'f', 1, 64) != from {
				t.Errorf("%s says the unit scores %s, it scores %.1f", filepath.Base(d), from, score)
			}
			// A drop-in's [Service] lines come after the unit's.
			var extra []string
			for _, l := range strings.Split(string(body), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "[") {
					extra = append(extra, l)
				}
			}
			merged := strings.Replace(string(base), "\n[Install]", "\n"+strings.Join(extra, "\n")+"\n\n[Install]", 1)
			if merged == string(base) {
				t.Fatal("relay.service has no [Install] section to insert before")
			}
			p := filepath.Join(t.TempDir(), "relay.service")
			if err := os.WriteFile(p, []byte(merged), 0o644); err != nil {
				t.Fatal(err)
			}
			score, _, _ := exposure(t, p)
			if got := strconv.FormatFloat(score, 'f', 1, 64); got != stated {
				t.Errorf("got exposure %s with %s, want %s as its comment states", got, filepath.Base(d), stated)
			}
		})
	}
}

// TestUnitStatesItsScore: the number in relay.service's header is the
// measured one.
func TestUnitStatesItsScore(t *testing.T) {
	needTool(t, "systemd-analyze")
	body, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`relay\.service\s+->\s+([0-9]\.[0-9])`).FindSubmatch(body)
	if m == nil {
		t.Fatal("relay.service's header states no score")
	}
	score, _, _ := exposure(t, unitPath)
	if got := strconv.FormatFloat(score, 'f', 1, 64); got != string(m[1]) {
		t.Errorf("got exposure %s, want %s as the header states", got, m[1])
	}
}

// TestActionUnits: each action unit is a fixed oneshot that takes no input
// from whoever starts it, and is hardened.
func TestActionUnits(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(systemdDir, "relay-action*"))
	if len(paths) == 0 {
		t.Fatal("no relay-action-*.service in deploy/systemd")
	}
	nameRe := regexp.MustCompile(`^relay-action-[a-z0-9]+(-[a-z0-9]+)*\.service$`)
	for _, p := range paths {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			if !nameRe.MatchString(name) {
				t.Fatalf("got unit name %q, want relay-action-NAME.service (no templates: an instance name would let the caller choose what runs)", name)
			}
			u := parseUnit(t, p)
			for _, w := range []struct{ key, value string }{
				{"Type", "oneshot"},
				{"NoNewPrivileges", "yes"},
				{"ProtectSystem", "strict"},
				{"PrivateNetwork", "yes"},
				{"RestrictNamespaces", "yes"},
				{"SystemCallArchitectures", "native"},
			} {
				if got, _ := u.last("Service", w.key); got != w.value {
					t.Errorf("got %s=%q, want %q", w.key, got, w.value)
				}
			}
			if got, _ := u.last("Unit", "StartLimitBurst"); got == "" {
				t.Error("got no StartLimitBurst=, want a bound on how often relay (or a command running as relay) can start it")
			}
			for _, l := range u["Service"]["ExecStart"] {
				if strings.Contains(l, "%") || strings.Contains(l, "$") {
					t.Errorf("got ExecStart=%s, want no specifiers or variables: the action is fixed", l)
				}
			}
			if needs := u["Service"]["ExecStart"]; len(needs) != 1 {
				t.Errorf("got %d ExecStart= lines, want exactly one", len(needs))
			}
		})
	}
	// Both actions the homelab example uses exist.
	for _, n := range []string{"relay-action-restart-nginx.service", "relay-action-reboot.service"} {
		if !slices.ContainsFunc(paths, func(p string) bool { return filepath.Base(p) == n }) {
			t.Errorf("missing %s, which policy/examples/homelab.yaml starts", n)
		}
	}
}

// TestNoDropInBesideUnit: systemd-analyze --offline reads relay.service.d/
// next to the unit file, so a drop-in kept there would silently change the
// score CI measures. Optional drop-ins live in deploy/systemd/drop-ins.
func TestNoDropInBesideUnit(t *testing.T) {
	if _, err := os.Stat(unitPath + ".d"); err == nil {
		t.Errorf("%s.d exists; move optional drop-ins to %s/drop-ins", unitPath, systemdDir)
	}
}

// TestWitnessUnit: the witness's template unit scores as the relay's does,
// runs as relay (whose control socket takes the alert), keeps its stores
// 0700, and its timer is installable.
func TestWitnessUnit(t *testing.T) {
	needTool(t, "systemd-analyze")
	src, err := os.ReadFile(filepath.Join(systemdDir, "relay-witness@.service"))
	if err != nil {
		t.Fatal(err)
	}
	inst := filepath.Join(t.TempDir(), "relay-witness@web1.service")
	if err := os.WriteFile(inst, src, 0o644); err != nil {
		t.Fatal(err)
	}
	score, out, err := exposure(t, inst, "--threshold=25")
	if err != nil || score > maxExposure {
		t.Fatalf("got exposure %.1f (%v), want at most %.1f\n%s", score, err, maxExposure, out)
	}
	u := parseUnit(t, filepath.Join(systemdDir, "relay-witness@.service"))
	for _, w := range []struct{ key, value string }{
		{"Type", "oneshot"}, {"User", "relay"}, {"StateDirectoryMode", "0700"}, {"UMask", "0077"},
		{"NoNewPrivileges", "yes"}, {"ProtectSystem", "strict"}, {"CapabilityBoundingSet", ""},
	} {
		if got, _ := u.last("Service", w.key); got != w.value {
			t.Errorf("got %s=%q, want %q", w.key, got, w.value)
		}
	}
	timer := parseUnit(t, filepath.Join(systemdDir, "relay-witness@.timer"))
	if got, _ := timer.last("Install", "WantedBy"); got != "timers.target" {
		t.Errorf("timer: got WantedBy=%q, want timers.target", got)
	}
	t.Logf("relay-witness@.service exposure %.1f", score)
}
