package fleet

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/recorder"
	"github.com/relaychat/relay/policy"
)

// The harness runs real OpenSSH: one sshd per member on 127.0.0.1, each
// with its own host key, authorized_keys (the hub's key, restricted to
// the real relay binary's serve-ssh), member config and audit log, and
// the real ssh client on the hub side. Members log in as one account: a
// throwaway system account with /bin/sh when the tests run as root (a
// forced command runs through the account's shell, and root's may source
// a noisy rc file), else the running user.

var (
	relayBin string // the relay binary, in a directory every account can traverse
	base     string // the tests' files; 0755
	account  *user.User
	sshdPath = "/usr/sbin/sshd"
	sshPath  = "/usr/bin/ssh"
	skipWhy  string // set when the machine cannot run the harness
	hubKey   string // the hub's identity, shared by every test
)

func TestMain(m *testing.M) {
	code := func() int {
		if err := setup(); err != nil {
			skipWhy = err.Error()
			fmt.Fprintln(os.Stderr, "fleet tests with real sshd skip:", skipWhy)
		}
		defer teardown()
		return m.Run()
	}()
	os.Exit(code)
}

var createdAccount string

func setup() error {
	for _, p := range []string{sshdPath, sshPath, "/usr/bin/ssh-keygen"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s not installed (apt-get install openssh-server openssh-client)", p)
		}
	}
	// Outside /tmp: a sandboxed command may not declare a path there (it
	// gets a private /tmp), and the member account must traverse it.
	parent := os.Getenv("RELAY_TEST_BASE")
	if parent == "" {
		if os.Geteuid() == 0 {
			parent = "/srv"
		} else if parent, _ = os.UserCacheDir(); parent == "" {
			return fmt.Errorf("no directory for test files: set RELAY_TEST_BASE")
		}
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	var err error
	if base, err = os.MkdirTemp(parent, "rfleet-"); err != nil {
		return err
	}
	if err := os.Chmod(base, 0o755); err != nil {
		return err
	}
	relayBin = filepath.Join(base, "relay")
	if pre := os.Getenv("RELAY_TEST_RELAY_BIN"); pre != "" {
		// A binary built elsewhere (a user without the toolchain's cache).
		b, err := os.ReadFile(pre)
		if err != nil {
			return err
		}
		if err := os.WriteFile(relayBin, b, 0o755); err != nil {
			return err
		}
	} else {
		build := exec.Command("go", "build", "-o", relayBin, "../../cmd/relay")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build relay: %v\n%s", err, out)
		}
	}
	if os.Geteuid() == 0 {
		name := fmt.Sprintf("rlyft%d", os.Getpid()%100000)
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", base, "--shell", "/bin/sh", "--password", "*", name).CombinedOutput()
		if err != nil {
			return fmt.Errorf("useradd: %v %s", err, out)
		}
		createdAccount = name
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return err
		}
	}
	if createdAccount != "" {
		account, err = user.Lookup(createdAccount)
	} else {
		account, err = user.Current()
	}
	if err != nil {
		return err
	}
	hubKey = filepath.Join(base, "hub_ed25519")
	return keygen(hubKey, "hub@test")
}

func teardown() {
	if createdAccount != "" {
		exec.Command("userdel", createdAccount).Run()
	}
	if base != "" {
		os.RemoveAll(base)
	}
}

func needHarness(t testing.TB) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
}

func keygen(path, comment string) error {
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen: %v %s", err, out)
	}
	return nil
}

func readPub(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func uidgid() (int, int) {
	u, _ := strconv.Atoi(account.Uid)
	g, _ := strconv.Atoi(account.Gid)
	return u, g
}

// chownTree gives the member account its state and audit directories.
func chownTree(t testing.TB, dir string) {
	t.Helper()
	u, g := uidgid()
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u, g)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// member is one sshd with its relay member.
type member struct {
	t        testing.TB
	name     string
	dir      string
	port     int
	hostKey  string // private key path
	cfgPath  string
	auditDir string
	k0       []byte
	keys     string // authorized_keys
	sshd     *exec.Cmd
	log      *bytes.Buffer
	logMu    *sync.Mutex
	marker   string // a command that runs creates it
}

// memberCommands is every member's allowlist: each command that runs
// touches the marker file first, so "nothing ran" is checked on disk.
const memberCommands = `
  hello:
    description: print a word
    argv: [/bin/sh, -c, 'printf "%s\n" "$1"', sh, "{word}"]
    params:
      - {name: word, type: string, pattern: "^[a-z]{1,16}$", max_len: 16}
  echo:
    description: print one argument as one argv element
    argv: [/usr/bin/printf, "[%s]\n", "{text}"]
    params:
      - {name: text, type: string, pattern: "^.{0,256}$", max_len: 256}
  mark:
    argv: [/usr/bin/touch, "{{MARKER}}"]
    sandbox: {write: ["{{MARKERDIR}}"]}
  big:
    argv: [/usr/bin/head, -c, "{bytes}", /dev/urandom]
    params:
      - {name: bytes, type: int, min: 1, max: 100000000}
    max_output: 64MiB
  slow:
    argv: [/bin/sleep, "{seconds}"]
    params:
      - {name: seconds, type: int, min: 1, max: 600}
    timeout: 10m
  "true":
    argv: [/usr/bin/true]
  true_bare:
    argv: [/usr/bin/true]
    sandbox: none
  fails:
    argv: [/bin/sh, -c, "echo oops; exit 3"]
  local:
    argv: [/usr/bin/true]
    hub: false
`

type memberOpts struct {
	// keyLine replaces the hub key's authorized_keys line; "%s" is the key.
	keyLine string
	// extraKeys are further authorized_keys lines.
	extraKeys []string
	// commands replaces memberCommands.
	commands string
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newMember(t testing.TB, name string, o memberOpts) *member {
	t.Helper()
	needHarness(t)
	dir, err := os.MkdirTemp(base, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := &member{t: t, name: name, dir: dir, hostKey: filepath.Join(dir, "hostkey"), cfgPath: filepath.Join(dir, "relay.yaml"),
		auditDir: filepath.Join(dir, "state", "audit"), keys: filepath.Join(dir, "authorized_keys"), log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	markDir := filepath.Join(dir, "marks")
	must(t, os.Mkdir(markDir, 0o755))
	chownTree(t, markDir)
	m.marker = filepath.Join(markDir, "RAN")
	must(t, keygen(m.hostKey, "root@"+name))
	cmds := o.commands
	if cmds == "" {
		cmds = memberCommands
	}
	cmds = strings.ReplaceAll(strings.ReplaceAll(cmds, "{{MARKERDIR}}", markDir), "{{MARKER}}", m.marker)
	state := filepath.Join(dir, "state")
	cfg := fmt.Sprintf("member: {}\nstate_dir: %s\naudit: {dir: %s}\nlimits: {max_concurrent: 8, max_output: 1GiB}\ncommands:\n%s", state, m.auditDir, cmds)
	must(t, os.WriteFile(m.cfgPath, []byte(cfg), 0o644))
	if _, err := policy.Load(m.cfgPath); err != nil {
		t.Fatalf("member config: %v", err)
	}
	must(t, os.MkdirAll(state, 0o700))
	if m.k0, err = audit.Init(m.auditDir, nil); err != nil {
		t.Fatal(err)
	}
	chownTree(t, state)
	line := o.keyLine
	if line == "" {
		line = `restrict,command="` + relayBin + ` serve-ssh --config ` + m.cfgPath + ` --peer hub-test" %s`
	}
	keys := fmt.Sprintf(line, readPub(t, hubKey)) + "\n"
	for _, k := range o.extraKeys {
		keys += k + "\n"
	}
	must(t, os.WriteFile(m.keys, []byte(keys), 0o644))
	m.port = freePort(t)
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *member) sshdConfig() string {
	return fmt.Sprintf(`ListenAddress 127.0.0.1:%d
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
`, m.port, m.hostKey, m.keys, account.Username)
}

// start runs sshd and waits until it accepts connections.
func (m *member) start() {
	t := m.t
	t.Helper()
	conf := filepath.Join(m.dir, "sshd_config")
	must(t, os.WriteFile(conf, []byte(m.sshdConfig()), 0o600))
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", conf)
	var mu sync.Mutex
	m.logMu = &mu
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, m.log}, lockedWriter{&mu, m.log}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	must(t, cmd.Start())
	m.sshd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd for %s never listened: %v\n%s", m.name, err, m.sshdLog())
		}
		time.Sleep(5 * time.Millisecond) // waiting for a real process to listen
	}
}

// stop takes the member down as a power cut would: sshd and every
// connection it serves (each in a session of its own, so not in sshd's
// process group).
func (m *member) stop() {
	if m.sshd == nil {
		return
	}
	for _, pid := range descendants(m.sshd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	syscall.Kill(-m.sshd.Process.Pid, syscall.SIGKILL)
	m.sshd.Wait()
	m.sshd = nil
}

// descendants lists every process below pid, from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split
		// after its closing parenthesis.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 1 {
				pp, _ := strconv.Atoi(f[1])
				parent[p] = pp
			}
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}

func (m *member) sshdLog() string {
	m.logMu.Lock()
	defer m.logMu.Unlock()
	return m.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// records reads the member's audit log, verified with its K0.
func (m *member) records(t testing.TB) []audit.Entry {
	t.Helper()
	if _, err := audit.VerifyDir(m.auditDir, m.k0, nil); err != nil {
		t.Fatalf("%s's audit log: %v", m.name, err)
	}
	return entries(t, audit.Files(m.auditDir))
}

func entries(t testing.TB, files []string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 64<<10), audit.MaxRecordBytes+1)
		for sc.Scan() {
			e, err := audit.ParseRecord(append(sc.Bytes(), '\n'))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		fh.Close()
	}
	return out
}

func (m *member) ran() bool {
	_, err := os.Stat(m.marker)
	return err == nil
}

// hubEntry is the hosts: entry that reaches m.
func (m *member) hubEntry() string {
	return fmt.Sprintf("  %s:\n    address: %s@127.0.0.1\n    port: %d\n    host_key: %q\n    identity: %s\n", m.name, account.Username, m.port, readPub(m.t, m.hostKey), hubKey)
}

// hub is the hub's config, audit log and fleet.
type hub struct {
	dir     string
	cfgPath string
	cfg     *policy.Config
	f       *Fleet
	k0      []byte
	rec     *recorder.Recorder
}

func newHub(t testing.TB, extra string, members ...*member) *hub {
	t.Helper()
	var hosts strings.Builder
	for _, m := range members {
		hosts.WriteString(m.hubEntry())
	}
	return newHubWith(t, extra, hosts.String())
}

// newHubWith is a hub whose hosts: entries are written out.
func newHubWith(t testing.TB, extra, hosts string) *hub {
	t.Helper()
	dir, err := os.MkdirTemp(base, "h") // short: ssh's control socket lives under it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &hub{dir: dir, cfgPath: filepath.Join(dir, "relay.yaml")}
	src := fmt.Sprintf("auth: {owner_id: 1}\nstate_dir: %s\naudit: {dir: %s}\n%s\nhosts:\n%scommands:\n  up: {argv: [/usr/bin/true]}\n",
		filepath.Join(dir, "state"), filepath.Join(dir, "audit"), extra, hosts)
	must(t, os.WriteFile(h.cfgPath, []byte(src), 0o600))
	if h.cfg, err = policy.Load(h.cfgPath); err != nil {
		t.Fatal(err)
	}
	if h.k0, err = audit.Init(h.cfg.Audit.Dir, nil); err != nil {
		t.Fatal(err)
	}
	if h.f, err = New(h.cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.f.Close)
	h.rec = &recorder.Recorder{Dir: h.cfg.Audit.Dir, StateDir: h.cfg.StateDir}
	return h
}

// audit is the CallOptions.Audit that writes to the hub's log.
func (h *hub) audit(r audit.Record) error {
	_, err := h.rec.Record(context.Background(), r)
	return err
}

func (h *hub) call(t testing.TB, host, command string, args ...string) *Result {
	t.Helper()
	r := h.f.Call(context.Background(), host, command, args, CallOptions{Audit: h.audit})
	t.Cleanup(r.Close)
	return r
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func output(r *Result) string {
	if r.Output == nil {
		return ""
	}
	return string(r.Output.Bytes(1 << 20))
}

func rewriteKeys(t testing.TB, m *member, lines ...string) {
	t.Helper()
	must(t, os.WriteFile(m.keys, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
}
