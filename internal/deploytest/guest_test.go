package deploytest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	osexec "os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/relaychat/relay/internal/fakebotapi"
)

func TestMain(m *testing.M) {
	if p := os.Getenv(guestEnv); p != "" {
		os.Exit(guest(p))
	}
	code := m.Run()
	if setUp != "" { // made by loadExample
		os.RemoveAll(setUp)
	}
	os.Exit(code)
}

// guest runs inside the machine as root, under systemd. It never fails
// early on a step's exit status: the host judges the report.
func guest(planPath string) int {
	rep := &report{Facts: map[string]string{}}
	defer func() {
		b, _ := json.MarshalIndent(rep, "", "  ")
		os.WriteFile("/results/report.json", b, 0o644)
	}()
	if err := guestRun(planPath, rep); err != nil {
		rep.Err = err.Error()
	}
	return 0
}

// guestEnvBase is the environment of every step: no D-Bus address, no
// session, what a root shell on a server has.
var guestEnvBase = []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"}

// sudoShim stands in for sudo where it is not installed: the guest is
// root already, and the recipe's lines run as written.
const sudoShim = "command -v sudo >/dev/null 2>&1 || sudo() { \"$@\"; }\n"

func guestRun(planPath string, rep *report) error {
	b, err := os.ReadFile(planPath)
	if err != nil {
		return err
	}
	var p plan
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()

	_, busErr := os.Stat("/run/dbus/system_bus_socket")
	rep.Facts["system bus"] = fmt.Sprint(busErr == nil)
	rep.Facts["session bus"] = os.Getenv("DBUS_SESSION_BUS_ADDRESS")

	// The recipe's build line ran on the host: its output is put where
	// the build would have left it.
	if err := copyFile("/deploytest/relay", "/src/relay", 0o755); err != nil {
		return err
	}
	run := func(name, line string, stdin io.Reader) step {
		s := shell(ctx, name, line, p.Token, stdin)
		rep.Steps = append(rep.Steps, s)
		return s
	}

	run("dry-run", "deploy/install.sh --dry-run --with-action reboot ./relay", nil)
	rep.Facts["relay user after dry run"] = getent("relay")

	api := fakebotapi.New(p.Token)
	if err := api.Start(); err != nil {
		return err
	}
	defer api.Close()

	var k0 string
	for i, line := range p.Recipe {
		name := fmt.Sprintf("recipe %d", i+1)
		switch {
		case line == p.Build:
			rep.Steps = append(rep.Steps, step{Name: name, Cmd: line, Out: "built on the host with exactly this line"})
			continue
		case strings.Contains(line, "totp enroll"):
			rep.Steps = append(rep.Steps, enroll(ctx, name, line, p.Token))
			continue
		case strings.Contains(line, "systemctl enable"):
			// The only change to the recipe: the Bot API is the fake's,
			// never Telegram.
			if err := appendFile("/etc/relay/relay.yaml", "\ntelegram:\n  api_url: "+api.URL()+"\n"); err != nil {
				return err
			}
		}
		s := run(name, line, nil)
		if m := regexp.MustCompile(`(?m)^\s+([0-9a-f]{64})\s*$`).FindStringSubmatch(s.Out); m != nil && strings.Contains(line, "audit init") {
			k0 = m[1]
			s.Out = strings.ReplaceAll(s.Out, k0, "<K0>")
			rep.Steps[len(rep.Steps)-1] = s
		}
	}
	rep.Facts["active"] = strings.TrimSpace(run("is-active", "systemctl is-active relay.service", nil).Out)

	if err := chat(ctx, api, p, rep); err != nil {
		rep.Facts["chat error"] = err.Error()
	}

	run("install again", "deploy/install.sh ./relay", nil)
	for _, v := range p.Variant {
		rep.Steps = append(rep.Steps, startVariant(ctx, v))
	}

	run("stop", "systemctl stop relay.service", nil)
	run("journal", "journalctl -u relay.service --no-pager -o cat", nil)
	run("audit verify", "runuser -u relay -- relay audit verify --config /etc/relay/relay.yaml --key -", strings.NewReader(k0))
	run("uninstall", "deploy/install.sh --uninstall", nil)
	run("uninstall again", "deploy/install.sh --uninstall", nil)
	rep.Facts["relay user after uninstall"] = getent("relay")
	rep.Facts["relay-cmd user after uninstall"] = getent("relay-cmd")
	for _, f := range []string{"/usr/local/bin/relay", "/etc/systemd/system/relay.service", "/etc/relay", "/var/lib/relay"} {
		_, err := os.Lstat(f)
		rep.Facts["exists "+f] = fmt.Sprint(err == nil)
	}
	run("audit log after uninstall", "stat -c '%U:%G %a %n' /var/log/relay /var/log/relay/*", nil)

	// The package, on the same host made fresh again.
	run("fresh host", "rm -rf /var/log/relay", nil)
	run("dpkg -i", "dpkg -i "+p.Deb, nil)
	run("relay version", "relay version", nil)
	run("set owner", fmt.Sprintf("sed -i 's/^  owner_id: 0 /  owner_id: %d /' /etc/relay/relay.yaml", p.Owner), nil)
	run("deb token", `printf %s "$TOKEN" | systemd-creds encrypt --name=bot-token - /etc/relay/bot-token.cred`, nil)
	rep.Steps = append(rep.Steps, enroll(ctx, "deb totp", "runuser -u relay -- relay totp enroll --config /etc/relay/relay.yaml --file", p.Token))
	run("deb audit init", "runuser -u relay -- relay audit init --config /etc/relay/relay.yaml --no-store", nil)
	run("deb doctor", "runuser -u relay -- relay doctor --config /etc/relay/relay.yaml --offline", nil)
	run("dpkg -r", "dpkg -r relay", nil)
	rep.Facts["deb binary after remove"] = fmt.Sprint(exists("/usr/local/bin/relay"))
	rep.Facts["deb config after remove"] = fmt.Sprint(exists("/etc/relay/relay.yaml"))
	rep.Facts["deb user after remove"] = getent("relay")
	run("dpkg --purge", "dpkg --purge relay", nil)
	rep.Facts["deb config after purge"] = fmt.Sprint(exists("/etc/relay"))
	rep.Facts["deb state after purge"] = fmt.Sprint(exists("/var/lib/relay"))
	rep.Facts["deb user after purge"] = getent("relay")
	run("deb audit log after purge", "stat -c '%U:%G %n' /var/log/relay/*", nil)
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// shell runs line with bash as the recipe's reader would, with $TOKEN set.
func shell(ctx context.Context, name, line, token string, stdin io.Reader) step {
	start := time.Now()
	cmd := osexec.CommandContext(ctx, "/bin/bash", "-c", sudoShim+line)
	cmd.Env = append(guestEnvBase, "TOKEN="+token)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return step{Name: name, Cmd: line, Code: exitCode(err), Out: redact(string(out), token), Took: time.Since(start).Round(time.Millisecond).String()}
}

func exitCode(err error) int {
	var ee *osexec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// redact keeps the token out of the report, which a failing test prints.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "<TOKEN>")
}

// enroll runs the recipe's totp enroll line and answers its prompt with the
// code an authenticator app would show for the secret it printed.
func enroll(ctx context.Context, name, line, token string) step {
	start := time.Now()
	cmd := osexec.CommandContext(ctx, "/bin/bash", "-c", sudoShim+line)
	cmd.Env = append(guestEnvBase, "TOKEN="+token)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var errb strings.Builder
	cmd.Stderr = &errb
	s := step{Name: name, Cmd: line, Code: -1}
	if err := cmd.Start(); err != nil {
		s.Out = err.Error()
		return s
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		l := sc.Text()
		if i := strings.Index(l, "otpauth://"); i >= 0 {
			out.WriteString("<otpauth URI>\n")
			u, err := url.Parse(strings.TrimSpace(l[i:]))
			if err == nil && u.Query().Get("secret") != "" {
				secret := u.Query().Get("secret")
				guestSecret = secret
				c, err := totp.GenerateCodeCustom(secret, time.Now(), totpOpts)
				if err == nil {
					fmt.Fprintln(stdin, c)
				}
			}
			continue
		}
		if strings.Contains(l, "█") {
			continue // the QR code: the URI's secret again, and unreadable in a log
		}
		out.WriteString(l + "\n")
	}
	stdin.Close()
	err := cmd.Wait()
	s.Code, s.Out, s.Took = exitCode(err), out.String()+errb.String(), time.Since(start).Round(time.Millisecond).String()
	return s
}

// guestSecret is the TOTP secret the recipe's enrolment printed, kept out
// of the report.
var guestSecret string

var totpOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// chat plays the owner: /login with the next code (the enrolment used the
// current one, and no code counts twice), then /disk, which runs df in the
// sandbox under the unit.
func chat(ctx context.Context, api *fakebotapi.Server, p plan, rep *report) error {
	owner := fakebotapi.User{ID: p.Owner, FirstName: "Owner"}
	dm := fakebotapi.Chat{ID: p.Owner, Type: "private"}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := api.WaitPolling(wctx); err != nil {
		return fmt.Errorf("relay never polled the fake: %w", err)
	}
	code, err := totp.GenerateCodeCustom(guestSecret, time.Now().Add(30*time.Second), totpOpts)
	if err != nil {
		return err
	}
	seen := 0
	expect := func(what, want string) error {
		m, err := api.WaitMessage(wctx, func(m fakebotapi.Message) bool {
			return m.ChatID == p.Owner && m.ID > seen && strings.Contains(m.Text, want)
		})
		if err != nil {
			var all []string
			for _, m := range api.Sent() {
				all = append(all, m.Text)
			}
			return fmt.Errorf("%s: no message containing %q: %w; sent: %q", what, want, err, all)
		}
		seen = m.ID
		rep.Facts["reply to "+what] = m.Text
		return nil
	}
	api.SendMessage(owner, dm, "/login "+code)
	if err := expect("/login", "logged in"); err != nil {
		return err
	}
	api.SendMessage(owner, dm, "/disk")
	return expect("/disk", "Filesystem")
}

// startVariant installs relay.service with v's changes as its own oneshot
// unit and starts it: the same user, credentials and every restriction,
// with v.Exec in place of the daemon.
func startVariant(ctx context.Context, v variant) step {
	name := "relay-variant-" + v.Name + ".service"
	s := step{Name: "variant " + v.Name, Cmd: v.Exec, Code: -1}
	base, err := os.ReadFile("/etc/systemd/system/relay.service")
	if err != nil {
		s.Out = err.Error()
		return s
	}
	set := map[string][]string{
		"Type": {"oneshot"}, "ExecStart": {v.Exec}, "WatchdogSec": {""}, "Restart": {"no"}, "ExecReload": {""},
		"StandardOutput": {"file:/results/" + v.Name + ".out"}, "StandardError": {"inherit"},
	}
	for k, vs := range v.Set {
		set[k] = vs
	}
	body := editUnit(string(base), set)
	if err := os.WriteFile("/etc/systemd/system/"+name, []byte(body), 0o644); err != nil {
		s.Out = err.Error()
		return s
	}
	shell(ctx, "reload", "systemctl daemon-reload", "", nil)
	start := time.Now()
	r := shell(ctx, "start", "systemctl start "+name, "", nil)
	out, _ := os.ReadFile("/results/" + v.Name + ".out")
	s.Code, s.Took = r.Code, time.Since(start).Round(time.Millisecond).String()
	s.Out = string(out) + r.Out
	return s
}

// editUnit drops every line of each key in set from the [Service] section
// and adds the given lines ("" adds none) at its end.
func editUnit(unit string, set map[string][]string) string {
	var out []string
	for _, l := range strings.Split(unit, "\n") {
		k, _, ok := strings.Cut(l, "=")
		if _, replace := set[strings.TrimSpace(k)]; ok && replace && !strings.HasPrefix(l, "#") {
			continue
		}
		if l == "[Install]" {
			for k, vs := range set {
				for _, v := range vs {
					if v != "" {
						out = append(out, k+"="+v)
					}
				}
			}
			out = append(out, "")
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func getent(user string) string {
	out, _ := osexec.Command("getent", "passwd", user).Output()
	return strings.TrimSpace(string(out))
}

func appendFile(p, text string) error {
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// The host side.

// TestServerRecipe follows the documented server recipe, line by line, on
// a machine with a real systemd and no D-Bus or keyring: each step after
// the installer runs as the relay user (the recipe's own runuser), the
// token goes in on stdin and out only as the unit's credential, and the
// owner then logs in and runs a command through relay.service against a
// fake Bot API.
func TestServerRecipe(t *testing.T) {
	rep := machineReport(t)
	if rep.Facts["system bus"] != "false" || rep.Facts["session bus"] != "" {
		t.Errorf("the machine has D-Bus (system bus %s, session %q); the recipe must work without", rep.Facts["system bus"], rep.Facts["session bus"])
	}
	recipe, _, err := serverRecipe("../../docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	for i := range recipe {
		s, ok := rep.step(fmt.Sprintf("recipe %d", i+1))
		if !ok {
			t.Fatalf("recipe line %d did not run\n%s", i+1, rep.transcript())
		}
		if s.Code != 0 {
			t.Errorf("recipe line %d exited %d: %s\n%s", i+1, s.Code, s.Cmd, s.Out)
		}
		if strings.Contains(s.Out, fakeToken) {
			t.Errorf("recipe line %d printed the token", i+1)
		}
	}
	if got := rep.Facts["active"]; got != "active" {
		t.Errorf("relay.service is %q after the recipe, want active\n%s", got, rep.transcript())
	}
	if e := rep.Facts["chat error"]; e != "" {
		t.Errorf("chat: %s\n%s", e, rep.transcript())
	}
	if got := rep.Facts["reply to /disk"]; !strings.Contains(got, "Filesystem") {
		t.Errorf("got /disk reply %q, want df's table", got)
	}
	if s, _ := rep.step("audit verify"); s.Code != 0 || !strings.Contains(s.Out, "ok") {
		t.Errorf("audit verify with K0 after the run: exit %d\n%s", s.Code, s.Out)
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", rep.transcript())
	}
}

// TestInstallOnAHost: install.sh on a real systemd host, not a DESTDIR: a
// dry run changes nothing and names every step; the second run has
// nothing to do; --uninstall removes the service, its files and its
// accounts, and hands the kept audit log to root.
func TestInstallOnAHost(t *testing.T) {
	rep := machineReport(t)
	dry, _ := rep.step("dry-run")
	for _, want := range []string{
		"would create system user relay", "would create system user relay-cmd",
		"would install /usr/local/bin/relay", "would install /etc/systemd/system/relay-action-reboot.service",
		"would install /etc/polkit-1/rules.d/50-relay.rules", "would install /etc/relay/relay.yaml",
		"would systemctl daemon-reload",
	} {
		if !strings.Contains(dry.Out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, dry.Out)
		}
	}
	if u := rep.Facts["relay user after dry run"]; u != "" {
		t.Errorf("the dry run created the relay user: %s", u)
	}
	if s, _ := rep.step("install again"); s.Code != 0 || strings.TrimSpace(s.Out) != "nothing to do" {
		t.Errorf("a second install: exit %d, %q; want \"nothing to do\"", s.Code, s.Out)
	}
	un, _ := rep.step("uninstall")
	if un.Code != 0 {
		t.Errorf("uninstall exited %d:\n%s", un.Code, un.Out)
	}
	for _, want := range []string{"systemctl disable --now relay.service", "systemctl daemon-reload",
		"delete system user relay", "delete system user relay-cmd", "kept the audit log in /var/log/relay"} {
		if !strings.Contains(un.Out, want) {
			t.Errorf("uninstall output lacks %q:\n%s", want, un.Out)
		}
	}
	if again, _ := rep.step("uninstall again"); !strings.Contains(again.Out, "nothing to do") {
		t.Errorf("a second uninstall: %q, want \"nothing to do\"", again.Out)
	}
	for _, u := range []string{"relay", "relay-cmd"} {
		if got := rep.Facts[u+" user after uninstall"]; got != "" {
			t.Errorf("user %s survived the uninstall: %s", u, got)
		}
	}
	for _, f := range []string{"/usr/local/bin/relay", "/etc/systemd/system/relay.service", "/etc/relay", "/var/lib/relay"} {
		if rep.Facts["exists "+f] != "false" {
			t.Errorf("%s survived the uninstall", f)
		}
	}
	log, _ := rep.step("audit log after uninstall")
	if log.Code != 0 || !strings.Contains(log.Out, "audit-") {
		t.Errorf("the audit log did not survive the uninstall:\n%s", log.Out)
	}
	for _, l := range strings.Split(strings.TrimSpace(log.Out), "\n") {
		if !strings.HasPrefix(l, "root:root ") {
			t.Errorf("kept audit file not handed to root: %s", l)
		}
	}
}

// TestUnitRunsTheSandbox: under relay.service as shipped (User=relay, its
// seccomp filter, namespace restrictions, mounts and empty capability
// set) the sandbox builds every command's world, and the unit with any
// one of its sandbox relaxations undone refuses every command, so each is
// needed. The delegated cgroup subtree is writable by relay, and would
// not be with ProtectControlGroups=yes or without Delegate=yes.
func TestUnitRunsTheSandbox(t *testing.T) {
	rep := machineReport(t)
	res := map[string]step{}
	for _, v := range variants() {
		s, ok := rep.step("variant " + v.Name)
		if !ok {
			t.Fatalf("variant %s did not run", v.Name)
		}
		res[v.Name] = s
		t.Logf("%s: exit %d\n%s", v.Name, s.Code, s.Out)
	}
	if s := res["shipped"]; s.Code != 0 || !strings.Contains(s.Out, "namespaces") || strings.Contains(s.Out, "FAIL") {
		t.Errorf("relay sandbox check under the shipped unit: exit %d, want 0 and every profile enforceable\n%s", s.Code, s.Out)
	}
	for _, c := range []struct{ name, why string }{
		{"old-namespaces", "namespaces"},
		{"no-mount-calls", "operation not permitted"},
		{"no-seccomp-call", "seccomp"},
	} {
		if s := res[c.name]; s.Code == 0 || !strings.Contains(strings.ToLower(s.Out), c.why) {
			t.Errorf("variant %s: exit %d, want the sandbox refused for %q\n%s", c.name, s.Code, c.why, s.Out)
		}
	}
	// PrivateUsers= and ProcSubset= are hardening, not needs: the sandbox
	// works with or without them.
	for _, n := range []string{"no-private-users", "no-proc-subset"} {
		if s := res[n]; s.Code != 0 {
			t.Errorf("variant %s: exit %d\n%s", n, s.Code, s.Out)
		}
	}
	// The journal drop-in's group still reads the journal in the unit's
	// user namespace, and the test can tell.
	if s := res["journal"]; s.Code != 0 || strings.Contains(s.Out, "insufficient permissions") {
		t.Errorf("journalctl with SupplementaryGroups=systemd-journal: exit %d\n%s", s.Code, s.Out)
	}
	if s := res["journal-without-group"]; !strings.Contains(s.Out, "insufficient permissions") {
		t.Errorf("journalctl without the group read the journal; the journal check cannot fail\n%s", s.Out)
	}
	switch s := res["cgroup-shipped"]; {
	case strings.Contains(s.Out, "no cgroup2 mount"):
		t.Log("the machine has no cgroup v2 hierarchy (its host has none to give): delegation not checked")
	case s.Code != 0 || !strings.Contains(s.Out, "delegated: "):
		t.Errorf("the shipped unit's relay cannot make a child cgroup: exit %d\n%s", s.Code, s.Out)
	default:
		for _, c := range []struct{ name, why string }{
			{"cgroup-protected", "Read-only file system"},
			{"cgroup-undelegated", "Permission denied"},
		} {
			if s := res[c.name]; s.Code == 0 || !strings.Contains(s.Out, c.why) {
				t.Errorf("variant %s: exit %d, want mkdir to fail with %q\n%s", c.name, s.Code, c.why, s.Out)
			}
		}
	}
	// Only the live daemon shows this: /disk ran under the unit.
	if got := rep.Facts["reply to /disk"]; !strings.Contains(got, "Filesystem") {
		t.Errorf("a sandboxed command through relay.service: got %q, want df's table", got)
	}
}

// TestDebInstallRemove: the .deb scripts/build-deb makes installs on a
// real systemd host (the machine), relay runs and its doctor passes once
// the owner did the set-up steps, dpkg -r removes the files and keeps the
// config, state and accounts, and dpkg --purge removes those too and
// keeps the audit log, handed to root.
func TestDebInstallRemove(t *testing.T) {
	rep := machineReport(t)
	for _, n := range []string{"dpkg -i", "relay version", "deb token", "deb totp", "deb audit init", "deb doctor", "dpkg -r", "dpkg --purge"} {
		s, ok := rep.step(n)
		if !ok || s.Code != 0 {
			t.Errorf("%s: exit %d\n%s", n, s.Code, s.Out)
		}
	}
	if s, _ := rep.step("relay version"); !strings.HasPrefix(s.Out, "relay ") {
		t.Errorf("relay version after dpkg -i: %q", s.Out)
	}
	if s, _ := rep.step("dpkg -i"); !strings.Contains(s.Out, "set auth.owner_id") || !strings.Contains(s.Out, "systemctl enable --now relay.service") {
		t.Errorf("dpkg -i did not say what comes next:\n%s", s.Out)
	}
	for k, want := range map[string]string{
		"deb binary after remove": "false", "deb config after remove": "true",
		"deb config after purge": "false", "deb state after purge": "false", "deb user after purge": "",
	} {
		if got := rep.Facts[k]; got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	if rep.Facts["deb user after remove"] == "" {
		t.Error("dpkg -r removed the relay user; only a purge does")
	}
	log, _ := rep.step("deb audit log after purge")
	if log.Code != 0 || !strings.Contains(log.Out, "root:root /var/log/relay/audit-") {
		t.Errorf("the audit log after a purge:\n%s", log.Out)
	}
}
