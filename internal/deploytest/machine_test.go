package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The machine: a throw-away container booted by systemd-nspawn, with the
// host's /usr (behind an overlay, so that installing into /usr/local
// changes nothing on the host), a copy of the host's /etc and a real
// systemd 252 as PID 1. No D-Bus and no keyring run in it (dbus is
// masked), which is every headless server. Inside, the test binary itself
// (guest_test.go) runs as a oneshot service: it follows the server recipe
// of docs/reference.md line by line, runs relay.service for real against
// a fake Bot API, logs in, runs a sandboxed command, and starts variants
// of the unit, then writes report.json and powers the container off.
//
// The container is more restrictive than a host where it matters here:
// nspawn makes /proc/sys and /sys read-only and masks parts of /proc on top
// of what the unit does, so a fresh /proc that the sandbox can mount in
// the container it can mount on a host too.

// guestEnv names the plan file when the test binary runs inside the
// machine.
const guestEnv = "RELAY_DEPLOYTEST_GUEST"

// plan is what the host asks the guest to do.
type plan struct {
	Recipe  []string  `json:"recipe"`  // the server recipe's lines, as documented
	Build   string    `json:"build"`   // the recipe's build line, done by the host
	Token   string    `json:"token"`   // the bot token fed to the recipe as $TOKEN
	Owner   int64     `json:"owner"`   // the owner ID the recipe names
	Variant []variant `json:"variant"` // units to start after the recipe
	Deb     string    `json:"deb"`     // the package to install and remove last
}

// variant is relay.service with some settings replaced, started as a
// oneshot that runs Exec instead of the daemon.
type variant struct {
	Name string `json:"name"`
	// Set replaces every line of a key with the given lines ("" drops
	// the key).
	Set  map[string][]string `json:"set"`
	Exec string              `json:"exec"`
}

// step is one thing the guest did, and what came of it.
type step struct {
	Name string `json:"name"`
	Cmd  string `json:"cmd"`
	Code int    `json:"code"` // exit status, -1 when it could not start
	Out  string `json:"out"`
	Took string `json:"took"`
}

// report is what the guest found.
type report struct {
	Steps []step            `json:"steps"`
	Facts map[string]string `json:"facts"`
	Err   string            `json:"err,omitempty"` // why the guest stopped early
}

func (r *report) step(name string) (step, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return step{}, false
}

// machineTimeout bounds one boot: the guest's own deadlines are shorter.
const machineTimeout = 4 * time.Minute

var (
	bootOnce   sync.Once
	bootReport *report
	bootErr    error
	bootSkip   string
	bootLog    string
)

// machineReport boots the machine once for the whole package and returns
// what the guest reported. It skips where the host cannot run it.
func machineReport(t *testing.T) *report {
	t.Helper()
	bootOnce.Do(func() { bootReport, bootLog, bootSkip, bootErr = boot() })
	if bootSkip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must run this test: %s", bootSkip)
		}
		t.Skip(bootSkip)
	}
	if bootErr != nil {
		t.Fatalf("machine: %v\nconsole:\n%s", bootErr, bootLog)
	}
	return bootReport
}

func boot() (rep *report, console, skip string, err error) {
	switch {
	case os.Geteuid() != 0:
		return nil, "", "systemd-nspawn needs root", nil
	}
	for _, tool := range []string{"systemd-nspawn", "cp"} {
		if _, err := osexec.LookPath(tool); err != nil {
			return nil, "", tool + " is not installed (Debian: systemd-container)", nil
		}
	}
	if _, err := os.Stat("/usr/lib/systemd/systemd"); err != nil {
		return nil, "", "no systemd to boot (Debian: systemd)", nil
	}
	work, err := os.MkdirTemp("", "relay-machine-")
	if err != nil {
		return nil, "", "", err
	}
	defer os.RemoveAll(work)
	repo, err := filepath.Abs("../..")
	if err != nil {
		return nil, "", "", err
	}

	recipe, build, err := serverRecipe(filepath.Join(repo, "docs/reference.md"))
	if err != nil {
		return nil, "", "", err
	}
	share := filepath.Join(work, "share") // /deploytest in the guest, read-only
	if err := os.MkdirAll(share, 0o755); err != nil {
		return nil, "", "", err
	}
	// The recipe's build line, run here: the guest has no toolchain cache.
	cmd := osexec.Command("sh", "-c", strings.Replace(build, "-o relay", "-o "+filepath.Join(share, "relay"), 1))
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, "", "", fmt.Errorf("%s: %v\n%s", build, err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", "", err
	}
	if err := copyFile(self, filepath.Join(share, "deploytest.test"), 0o755); err != nil {
		return nil, "", "", err
	}
	// The package, built by the repository's script from the same binary.
	debOut, err := osexec.Command(filepath.Join(repo, "scripts/build-deb"), "--binary", filepath.Join(share, "relay"), "--out", share).CombinedOutput()
	if err != nil {
		return nil, "", "", fmt.Errorf("scripts/build-deb: %v\n%s", err, debOut)
	}
	deb := "/deploytest/" + filepath.Base(strings.TrimSpace(string(debOut)))
	if err := os.WriteFile(filepath.Join(share, "cgroup-probe"), []byte(cgroupProbe), 0o755); err != nil {
		return nil, "", "", err
	}
	p := plan{Recipe: recipe, Build: build, Token: fakeToken, Owner: recipeOwner, Variant: variants(), Deb: deb}
	b, _ := json.MarshalIndent(p, "", "  ")
	if err := os.WriteFile(filepath.Join(share, "plan.json"), b, 0o644); err != nil {
		return nil, "", "", err
	}

	root := filepath.Join(work, "root")
	if err := makeRoot(root); err != nil {
		return nil, "", "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), machineTimeout)
	defer cancel()
	name := fmt.Sprintf("relay-deploytest-%d", os.Getpid())
	nspawn := osexec.CommandContext(ctx, "systemd-nspawn",
		"--directory="+root, "--machine="+name,
		"--register=no", "--keep-unit", "--link-journal=no", "--console=pipe", "--quiet",
		"--overlay=/usr::/usr",
		"--overlay=/var/lib/dpkg::/var/lib/dpkg",
		// nspawn's own seccomp filter refuses the landlock calls (EPERM),
		// which a host does not: let them through to the unit's filter.
		"--system-call-filter=landlock_create_ruleset landlock_add_rule landlock_restrict_self",
		"--overlay="+repo+"::/src",
		"--bind-ro="+share+":/deploytest",
		"--boot", "systemd.unit=deploytest.target")
	var out bytes.Buffer
	nspawn.Stdout, nspawn.Stderr = &out, &out
	nspawn.WaitDelay = 10 * time.Second
	if fd, cleanup, ok := machineCgroup(name); ok {
		// The guest gets the unified hierarchy whatever the host runs,
		// as a host with systemd 252 has by default, and nspawn's cgroups
		// go beneath one of the test's own, removed afterwards.
		defer cleanup()
		nspawn.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
		nspawn.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	}
	runErr := nspawn.Run()
	// nspawn leaves its propagation directory behind on a host whose
	// /run is not systemd's.
	os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", name))
	console = out.String()
	if guestLog, err := os.ReadFile(filepath.Join(root, "results/guest.log")); err == nil {
		console += "\n--- guest log\n" + string(guestLog)
	}
	rb, err := os.ReadFile(filepath.Join(root, "results/report.json"))
	if err != nil {
		return nil, console, "", fmt.Errorf("no report (nspawn: %v): %w", runErr, err)
	}
	rep = &report{}
	if err := json.Unmarshal(rb, rep); err != nil {
		return nil, console, "", err
	}
	if rep.Err != "" {
		return rep, console, "", errors.New("guest: " + rep.Err + "\n" + rep.transcript())
	}
	return rep, console, "", nil
}

func (r *report) transcript() string {
	var b strings.Builder
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "== %s (exit %d, %s): %s\n%s\n", s.Name, s.Code, s.Took, s.Cmd, s.Out)
	}
	return b.String()
}

// makeRoot builds the container's root: the host's /usr arrives by
// overlay, the merged-/usr links point into it, /etc is a copy (so that
// useradd and systemctl enable change the copy), and the rest is empty.
func makeRoot(root string) error {
	for _, d := range []string{"", "usr", "var", "var/lib/dpkg", "run", "proc", "sys", "dev", "root", "home", "results", "src", "deploytest", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(root, d), 0o1777); err != nil {
			return err
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		target, err := os.Readlink("/" + l)
		if err != nil {
			continue // absent, or a real directory (no merged /usr): unsupported below
		}
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			return err
		}
	}
	if fi, err := os.Lstat("/bin"); err == nil && fi.IsDir() {
		return errors.New("this host has no merged /usr; the machine test needs one")
	}
	if out, err := osexec.Command("cp", "-a", "/etc/.", filepath.Join(root, "etc")).CombinedOutput(); err != nil {
		return fmt.Errorf("copy /etc: %v\n%s", err, out)
	}
	etc := func(p string) string { return filepath.Join(root, "etc", p) }
	// A machine ID of its own (systemd makes one at boot), and an
	// os-release nspawn can see before /usr is mounted.
	if err := os.WriteFile(etc("machine-id"), nil, 0o444); err != nil {
		return err
	}
	os.Remove(etc("os-release"))
	if err := copyFile("/usr/lib/os-release", etc("os-release"), 0o644); err != nil {
		return err
	}
	// No D-Bus, no logind: every headless server the recipe promises to
	// work on. No sysctl service either: the kernel is the host's.
	for _, u := range []string{"dbus.socket", "dbus.service", "systemd-logind.service", "systemd-sysctl.service",
		"polkit.service", "systemd-timesyncd.service", "cron.service", "ssh.service", "getty.target", "console-getty.service"} {
		p := etc("systemd/system/" + u)
		os.RemoveAll(p)
		if err := os.Symlink("/dev/null", p); err != nil {
			return err
		}
	}
	// Nothing relay-shaped from the host's /etc.
	for _, p := range []string{"relay", "systemd/system/relay.service", "polkit-1/rules.d/50-relay.rules"} {
		os.RemoveAll(etc(p))
	}
	units := map[string]string{
		"deploytest.target": "[Unit]\nDescription=relay deploytest\nWants=deploytest.service\n",
		"deploytest.service": `[Unit]
Description=relay deploytest guest
After=basic.target
SuccessAction=exit
FailureAction=exit

[Service]
Type=oneshot
Environment=` + guestEnv + `=/deploytest/plan.json
ExecStart=/deploytest/deploytest.test
WorkingDirectory=/src
StandardOutput=file:/results/guest.log
StandardError=inherit
TimeoutStartSec=200
`,
	}
	for n, body := range units {
		if err := os.WriteFile(etc("systemd/system/"+n), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// machineCgroup makes a cgroup v2 directory beneath this process's own for
// nspawn to start in, and returns a descriptor for CLONE_INTO_CGROUP and
// a function that removes it and whatever nspawn made inside. ok is false
// where there is no cgroup v2 hierarchy to use.
func machineCgroup(name string) (fd int, cleanup func(), ok bool) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return -1, nil, false
	}
	mnt := ""
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		for i := 6; i+1 < len(f); i++ {
			if f[i] == "-" {
				if f[i+1] == "cgroup2" {
					mnt = f[4]
				}
				break
			}
		}
		if mnt != "" {
			break
		}
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if mnt == "" || err != nil {
		return -1, nil, false
	}
	own := ""
	for _, l := range strings.Split(string(cg), "\n") {
		if p, found := strings.CutPrefix(l, "0::"); found {
			own = p
		}
	}
	dir := filepath.Join(mnt, own, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return -1, nil, false
	}
	fd, err = syscall.Open(dir, syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(dir)
		return -1, nil, false
	}
	return fd, func() {
		syscall.Close(fd)
		// Deepest first: a cgroup is removed with rmdir once empty.
		var dirs []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			syscall.Rmdir(dirs[i])
		}
	}, true
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// serverRecipe returns the lines of the server recipe in the reference,
// the block TestServerRecipeIdentical holds README.md to, and its build
// line.
func serverRecipe(path string) (lines []string, build string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	s := string(b)
	i := strings.Index(s, "## Installing on a server")
	if i < 0 {
		return nil, "", errors.New("docs/reference.md has no server recipe")
	}
	j := strings.Index(s[i:], "```sh\n")
	if j < 0 {
		return nil, "", errors.New("the server recipe has no sh block")
	}
	block := s[i+j+len("```sh\n"):]
	block = block[:strings.Index(block, "```")]
	lines = append(lines, strings.Split(strings.TrimSpace(block), "\n")...)
	if len(lines) == 0 || !strings.Contains(lines[0], "go build") {
		return nil, "", fmt.Errorf("the recipe's first line is %q, want the build", lines[0])
	}
	return lines, lines[0], nil
}

const (
	// fakeToken is cmd/fakebotapi's default token, which relay accepts.
	fakeToken = "1234567890:FAKE_token_for_the_offline_fakebotapi_only"
	// recipeOwner is the owner ID the documented recipe passes.
	recipeOwner = 123456789
)

// cgroupProbe creates and removes a child of the unit's own cgroup, as
// the relay does for each job. It runs as the unit's ExecStart=, so as
// relay and under every restriction of the unit.
const cgroupProbe = `#!/bin/sh
set -e
cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
mnt=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -n 1)
[ -n "$mnt" ] || { echo "no cgroup2 mount:"; grep cgroup /proc/self/mountinfo; cat /proc/self/cgroup; exit 1; }
mkdir "$mnt$cg/job-probe"
rmdir "$mnt$cg/job-probe"
echo "delegated: $mnt$cg"
`

const sandboxCheck = "/usr/local/bin/relay sandbox check --config /etc/relay/relay.yaml"

// oldFilter is the unit's SystemCallFilter= before every command got
// namespaces of its own.
const oldFilter = "@system-service landlock_create_ruleset landlock_add_rule landlock_restrict_self"

func variants() []variant {
	return []variant{
		{Name: "shipped", Exec: sandboxCheck},
		{Name: "old-namespaces", Exec: sandboxCheck, Set: map[string][]string{"RestrictNamespaces": {"user net"}}},
		{Name: "no-mount-calls", Exec: sandboxCheck, Set: map[string][]string{"SystemCallFilter": {oldFilter + " seccomp"}}},
		{Name: "no-seccomp-call", Exec: sandboxCheck, Set: map[string][]string{"SystemCallFilter": {oldFilter, "mount umount2 pivot_root open_tree move_mount mount_setattr"}}},
		{Name: "no-private-users", Exec: sandboxCheck, Set: map[string][]string{"PrivateUsers": {"no"}}},
		{Name: "no-proc-subset", Exec: sandboxCheck, Set: map[string][]string{"ProcSubset": {""}}},
		{Name: "journal", Exec: "/usr/bin/journalctl --no-pager -q -n 1 -u deploytest.service", Set: map[string][]string{"SupplementaryGroups": {"systemd-journal"}}},
		{Name: "journal-without-group", Exec: "/usr/bin/journalctl --no-pager -q -n 1 -u deploytest.service"},
		{Name: "cgroup-shipped", Exec: "/deploytest/cgroup-probe"},
		{Name: "cgroup-protected", Exec: "/deploytest/cgroup-probe", Set: map[string][]string{"ProtectControlGroups": {"yes"}}},
		{Name: "cgroup-undelegated", Exec: "/deploytest/cgroup-probe", Set: map[string][]string{"Delegate": {""}, "DelegateSubgroup": {""}}},
	}
}
