package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
)

// TestFleetFromTheChat drives a hub, the real relay run, through the fake
// Bot API against members behind one real sshd on 127.0.0.1: each member
// is its own authorized key (one hub identity per host) whose forced
// command is the real relay serve-ssh with that member's config, audit
// log and sandbox. One sshd serves every subtest.
func TestFleetFromTheChat(t *testing.T) {
	need(t, "ssh", "ssh-keygen")
	if _, err := os.Stat(sshdPath); err != nil {
		need(t, "sshd")
	}
	fx := newSSHFixture(t)
	nas := fx.member(t, "nas", memberCommands)
	web := fx.member(t, "web", memberCommands)
	strict := fx.member(t, "strict", strictCommands)
	fx.start(t)

	r := startRelay(t, options{commands: echoCmd, extra: fx.hubConfig(t, nas, web, strict) + "groups:\n  two: [nas, web]\n"})
	r.login()

	t.Run("a command on one member", func(t *testing.T) {
		r.say("/on nas hello world")
		m := r.expect("/on nas hello world · 1 host · 1 ok")
		if !strings.Contains(m.Text, "✅ nas · exit 0") || !strings.Contains(m.Text, "world") {
			t.Errorf("got %q, want nas's output inline", m.Text)
		}
	})

	t.Run("a fan-out, with a stricter member refusing", func(t *testing.T) {
		r.say("/on all hello hi")
		m := r.expect("/on all hello hi · 3 hosts · 2 ok · 1 not run")
		for _, want := range []string{"✅ nas · exit 0", "✅ web · exit 0", "⛔ strict · ", "does not match"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("the summary lacks %q:\n%s", want, m.Text)
			}
		}
		r.say("/on strict local")
		if m := r.expect("/on strict local · 1 host"); !strings.Contains(m.Text, "hub: false") {
			t.Errorf("got %q, want the member's hub: false refusal", m.Text)
		}
		for _, e := range strict.entries(t) {
			if e.Type == "exec_start" {
				t.Errorf("the strict member ran %s", e.Command)
			}
		}
	})

	t.Run("the member's confirm, applied by the hub", func(t *testing.T) {
		r.say("/on two danger")
		p := r.expect("Run /on two?")
		if len(nas.entries(t)) == 0 {
			t.Fatal("no member log")
		}
		for _, m := range []*sshMember{nas, web} {
			if m.has(t, "exec_start", "danger") {
				t.Fatalf("%s ran /danger before the Run button", m.name)
			}
		}
		qid, err := r.api.PressButtonAt(owner, ownerID, p.ID, 1)
		must(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := r.api.WaitCallbackAnswer(ctx, qid); err != nil {
			t.Fatal(err)
		}
		r.expect("/on two danger · 2 hosts · 2 ok")
	})

	t.Run("the member's reauth, a code in the hub's chat", func(t *testing.T) {
		r.say("/on nas reboot")
		r.expect("needs a fresh TOTP code first")
		msg := r.say("/on nas reboot " + code(t, time.Now().Add(30*time.Second)))
		m := r.expect("/on nas reboot · 1 host · 1 ok")
		if !strings.Contains(m.Text, "rebooted") {
			t.Errorf("got %q", m.Text)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.api.WaitDeleted(ctx, ownerID, msg); err != nil {
			t.Errorf("the message carrying the code was not deleted: %v", err)
		}
		for _, text := range []string{r.auditText(), string(nas.auditText(t))} {
			if strings.Contains(text, code(t, time.Now().Add(30*time.Second))) {
				t.Error("the step-up code is in an audit log")
			}
		}
	})

	t.Run("relay exec --host while the hub's daemon holds its log", func(t *testing.T) {
		cmd := osexec.Command(relayBin, "exec", "--config", r.cfgPath, "--host", "web", "hello", "shell")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + r.dir, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent"}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil || out.String() != "shell\n" {
			t.Fatalf("relay exec --host web: %v %q %s", err, out.String(), errb.String())
		}
		if !strings.Contains(r.auditText(), `"args":["shell"]`) {
			t.Error("the call is not in the hub's log: it went around the daemon")
		}
	})

	// Last: a login after /lock needs a code newer than the step-up's.
	t.Run("/lock kills the member's job", func(t *testing.T) {
		r.say("/on nas slow 293")
		var call string
		waitUntil(t, "the member to start the command", func() bool {
			call = nas.call(t, "exec_start", "slow")
			return call != ""
		})
		waitUntil(t, "the member's command to run", func() bool { return sleeping("293") })
		r.say("/ps")
		if m := r.expect("running"); !strings.Contains(m.Text, "/on nas slow") {
			t.Errorf("/ps shows %q, want the fan-out", m.Text)
		}
		r.say("/lock")
		r.expectAll("locked: session ended, 1 jobs killed", "/on nas slow 293 · 1 host")
		waitUntil(t, "the member to record the job's end", func() bool { return nas.call(t, "exec_end", "slow") == call })
		for _, e := range nas.entries(t) {
			if e.Type == "exec_end" && e.Call == call && e.Outcome == "ok" {
				t.Errorf("the member's job ended %q, want it killed", e.Outcome)
			}
		}
		waitUntil(t, "the member's sleep gone", func() bool { return !sleeping("293") })
	})

	t.Run("the hub's log cross-checks with the member's", func(t *testing.T) {
		text := r.auditText()
		if strings.Count(text, `"type":"remote_request"`) < 6 || !strings.Contains(text, `"type":"remote_end"`) {
			t.Errorf("the hub's log lacks its remote calls")
		}
		r.verifyAudit()
		cmd := osexec.Command(relayBin, "audit", "verify", "--config", r.cfgPath, "--key", hex.EncodeToString(r.k0),
			"--host", "nas", "--member-key", hex.EncodeToString(nas.k0), nas.auditDir)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + r.dir, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent"}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "found in the member's log as recorded") {
			t.Errorf("relay audit verify --host nas: %v\n%s%s", err, out.String(), errb.String())
		}
	})
}

// sshdPath is Debian's sshd, which root's PATH may not name.
const sshdPath = "/usr/sbin/sshd"

// memberCommands is what nas and web offer: each touches nothing but its
// output, so a run is visible in the member's log.
const memberCommands = `  hello:
    description: print a word
    argv: [/usr/bin/printf, "%s\n", "{word}"]
    params:
      - {name: word, type: string, pattern: "^[a-z]{1,16}$", max_len: 16}
  slow:
    argv: [/bin/sleep, "{seconds}"]
    params:
      - {name: seconds, type: int, min: 1, max: 600}
    timeout: 10m
  danger:
    argv: [/bin/echo, confirmed]
    confirm: true
  reboot:
    argv: [/bin/echo, rebooted]
    reauth: true
`

// strictCommands is a member stricter than what the hub sends.
const strictCommands = `  hello:
    argv: [/usr/bin/printf, "%s\n", "{word}"]
    params:
      - {name: word, type: string, pattern: "^[a-z]{5,8}$", max_len: 8}
  local:
    argv: [/usr/bin/true]
    hub: false
`

// sshFixture is one sshd on 127.0.0.1 whose one account serves every
// member, a key each.
type sshFixture struct {
	dir     string
	account *user.User
	hostKey string
	keys    string // authorized_keys
	port    int
	members []*sshMember
	sshd    *osexec.Cmd
	log     *syncBuffer
}

type sshMember struct {
	name, dir, cfgPath, auditDir string
	identity                     string // the hub's key for this member
	k0                           []byte
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	fx := &sshFixture{dir: fixtureDir(t), log: &syncBuffer{}}
	if os.Geteuid() == 0 {
		// A throwaway system account with /bin/sh: the forced command runs
		// through the account's shell.
		name := fmt.Sprintf("rlye2e%d", os.Getpid()%100000)
		if out, err := osexec.Command("useradd", "--system", "--no-create-home", "--home-dir", fx.dir, "--shell", "/bin/sh", "--password", "*", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v %s", err, out)
		}
		t.Cleanup(func() { osexec.Command("userdel", name).Run() })
		must(t, os.MkdirAll("/run/sshd", 0o755))
		var err error
		fx.account, err = user.Lookup(name)
		must(t, err)
	} else {
		var err error
		fx.account, err = user.Current()
		must(t, err)
	}
	fx.hostKey = filepath.Join(fx.dir, "hostkey")
	keygen(t, fx.hostKey, "root@members")
	fx.keys = filepath.Join(fx.dir, "authorized_keys")
	return fx
}

func keygen(t *testing.T, path, comment string) {
	t.Helper()
	if out, err := osexec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
}

func readPub(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path + ".pub")
	must(t, err)
	return strings.TrimSpace(string(b))
}

// member adds a member: its config, state and audit log (the account's),
// and the hub key whose forced command serves it.
func (fx *sshFixture) member(t *testing.T, name, commands string) *sshMember {
	t.Helper()
	m := &sshMember{name: name, dir: filepath.Join(fx.dir, name), identity: filepath.Join(fx.dir, "hub-"+name)}
	must(t, os.Mkdir(m.dir, 0o755))
	state := filepath.Join(m.dir, "state")
	m.auditDir = filepath.Join(state, "audit")
	m.cfgPath = filepath.Join(m.dir, "relay.yaml")
	must(t, os.WriteFile(m.cfgPath, []byte(fmt.Sprintf("member: {}\nstate_dir: %s\naudit: {dir: %s}\nlimits: {max_concurrent: 8}\ncommands:\n%s", state, m.auditDir, commands)), 0o644))
	must(t, os.MkdirAll(state, 0o700))
	var err error
	m.k0, err = audit.Init(m.auditDir, nil)
	must(t, err)
	uid, _ := strconv.Atoi(fx.account.Uid)
	gid, _ := strconv.Atoi(fx.account.Gid)
	must(t, filepath.Walk(state, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}))
	keygen(t, m.identity, "hub@"+name)
	fx.members = append(fx.members, m)
	return m
}

// start writes the keys and runs sshd until the test ends.
func (fx *sshFixture) start(t *testing.T) {
	t.Helper()
	var keys strings.Builder
	for _, m := range fx.members {
		fmt.Fprintf(&keys, "restrict,command=\"%s serve-ssh --config %s --peer hub-e2e\" %s\n", relayBin, m.cfgPath, readPub(t, m.identity))
	}
	must(t, os.WriteFile(fx.keys, []byte(keys.String()), 0o644))
	fx.port = freePort(t)
	conf := filepath.Join(fx.dir, "sshd_config")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
AuthorizedKeysFile %s
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers %s
ExposeAuthInfo yes
PidFile none
LogLevel ERROR
UseDNS no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 100
`, fx.port, fx.hostKey, fx.keys, fx.account.Username)), 0o600))
	cmd := osexec.Command(sshdPath, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = fx.log, fx.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, cmd.Start())
	fx.sshd = cmd
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", fx.log.String())
		}
	})
	waitUntil(t, "sshd listening", func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", fx.port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// hubConfig is the hub's hosts: section for members.
func (fx *sshFixture) hubConfig(t *testing.T, members ...*sshMember) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("hosts:\n")
	for _, m := range members {
		fmt.Fprintf(&b, "  %s:\n    address: %s@127.0.0.1\n    port: %d\n    host_key: %q\n    identity: %s\n",
			m.name, fx.account.Username, fx.port, readPub(t, fx.hostKey), m.identity)
	}
	return b.String()
}

func (m *sshMember) auditText(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, f := range audit.Files(m.auditDir) {
		data, err := os.ReadFile(f)
		must(t, err)
		b.Write(data)
	}
	return b.Bytes()
}

// entries are the member's records, its chain verified with its K0.
func (m *sshMember) entries(t *testing.T) []audit.Entry {
	t.Helper()
	if _, err := audit.VerifyDir(m.auditDir, m.k0, nil); err != nil {
		t.Fatalf("%s's audit log: %v", m.name, err)
	}
	var out []audit.Entry
	for _, line := range bytes.SplitAfter(m.auditText(t), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		e, err := audit.ParseRecord(line)
		must(t, err)
		out = append(out, e)
	}
	return out
}

// call is the call ID of the member's last record of typ for command.
func (m *sshMember) call(t *testing.T, typ, command string) string {
	id := ""
	for _, e := range m.entries(t) {
		if string(e.Type) == typ && e.Command == command {
			id = e.Call
		}
	}
	return id
}

func (m *sshMember) has(t *testing.T, typ, command string) bool { return m.call(t, typ, command) != "" }

// sleeping reports whether a sleep of that many seconds runs anywhere.
func sleeping(seconds string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Equal(b, []byte("/bin/sleep\x00"+seconds+"\x00")) {
			return true
		}
	}
	return false
}
