package fleet

import (
	"context"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/exec"
	"github.com/relaychat/relay/internal/remote"
)

func med(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// bareSSH runs `true` on m as a plain ssh would: the hub's option set and
// connection reuse (a control socket of its own), a key without a forced
// command, through the same internal/exec runner.
type bareSSH struct {
	f    *Fleet
	c    *conn
	spec exec.Spec
}

func newBareSSH(t testing.TB, h *hub, m *member, key string) *bareSSH {
	t.Helper()
	host := *h.f.conns[m.name].host
	host.Identity = key
	c := &conn{host: &host, knownHosts: h.f.conns[m.name].knownHosts}
	c.build(&h.cfg.Fleet)
	c.controlPath = filepath.Join(h.f.dir, "c", "bare-"+m.name)
	log := filepath.Join(h.f.logDir, "bare.log")
	return &bareSSH{f: h.f, c: c, spec: exec.Spec{Argv: c.argv(&h.cfg.Fleet, "true", log, true), Dir: "/", Timeout: time.Minute, MaxOutput: 4096, SpoolDir: h.f.spool}}
}

func (b *bareSSH) run(t testing.TB) {
	job, err := b.f.runner.Start(context.Background(), "bare", 100, b.spec)
	if err != nil {
		t.Fatal(err)
	}
	res := job.Wait()
	res.Output.Close()
	if res.ExitCode != 0 {
		t.Fatalf("bare ssh true: %s", res.Status())
	}
}

func timeIt(fn func()) time.Duration {
	t0 := time.Now()
	fn()
	return time.Since(t0)
}

// BenchmarkFleetCallFigures prints the per-call figures, each alternated
// with its reference round after round, as medians and ratios:
//
//	go test -run '^$' -bench 'Fleet.*Figures' -benchtime 1x ./internal/fleet
//
// A member's /usr/bin/true through the hub (sandboxed, as the member's
// default profile has it, and with sandbox: none; audited on both sides,
// and with the hub not auditing, as a daemon holding its log open nearly
// is), against a bare ssh of true to the same sshd with the same options
// and connection reuse; and relay serve-ssh alone, as a process on the
// member without ssh, against /bin/sh -c /usr/bin/true.
func BenchmarkFleetCallFigures(b *testing.B) {
	needHarness(b)
	if b.N > 1 {
		b.Skip("the figures run once: use -benchtime 1x")
	}
	bareKey := filepath.Join(base, "bare_ed25519")
	if _, err := os.Stat(bareKey); err != nil {
		must(b, keygen(bareKey, "bare@test"))
	}
	m := newMember(b, "nas", memberOpts{extraKeys: []string{readPub(b, bareKey)}})
	h := newHub(b, "fleet: {parallel: 10, max_calls: 32}", m)
	bare := newBareSSH(b, h, m, bareKey)
	ctx := context.Background()
	// The daemon holds its log open; relay exec --host appends through
	// the recorder, one hold per record.
	// (a second hub for the latter: the first one's log is held).
	held := h.holdLog(b)
	h2 := newHub(b, "", m)
	call := func(cmd string, daemonLike bool) func() {
		return func() {
			f, o := h2.f, CallOptions{Audit: h2.audit}
			if daemonLike {
				f, o = h.f, CallOptions{Audit: held}
			}
			r := f.Call(ctx, "nas", cmd, nil, o)
			r.Close()
			if r.Kind != KindOK {
				b.Fatalf("/%s: %s %q", cmd, r.Kind, r.Reason)
			}
		}
	}
	// Warm up: the first call of each opens its connection.
	call("true", true)()
	call("true_bare", false)()
	bare.run(b)
	const rounds = 60
	var sandboxed, unsandboxed, recorded, raw []time.Duration
	for i := 0; i < rounds; i++ {
		raw = append(raw, timeIt(func() { bare.run(b) }))
		sandboxed = append(sandboxed, timeIt(call("true", true)))
		raw = append(raw, timeIt(func() { bare.run(b) }))
		unsandboxed = append(unsandboxed, timeIt(call("true_bare", true)))
		raw = append(raw, timeIt(func() { bare.run(b) }))
		recorded = append(recorded, timeIt(call("true_bare", false)))
	}
	// The member's side alone, as processes: serve-ssh for /usr/bin/true
	// (sandbox: none) against what sshd would run for a bare key.
	alone := func(argv []string, env []string) time.Duration {
		return timeIt(func() {
			cmd := osexec.Command(argv[0], argv[1:]...)
			cmd.Env = env
			cmd.Stdout = io.Discard
			if os.Geteuid() == 0 {
				u, g := uidgid()
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u), Gid: uint32(g)}}
			}
			if err := cmd.Run(); err != nil {
				b.Fatalf("%v: %v", argv, err)
			}
		})
	}
	req, _ := (&remote.Request{Op: remote.OpRun, Call: remote.NewCallID(), Command: "true_bare", MaxOutput: 1024}).Encode()
	serveArgv := []string{relayBin, "serve-ssh", "--config", m.cfgPath}
	serveEnv := []string{"PATH=/usr/bin:/bin", "SSH_ORIGINAL_COMMAND=" + req}
	var serveAlone, shAlone []time.Duration
	for i := 0; i < rounds; i++ {
		shAlone = append(shAlone, alone([]string{"/bin/sh", "-c", "/usr/bin/true"}, []string{"PATH=/usr/bin:/bin"}))
		serveAlone = append(serveAlone, alone(serveArgv, serveEnv))
	}
	rawMed := med(raw)
	var out strings.Builder
	fmt.Fprintf(&out, "\nper call, %d rounds alternating, medians:\n", rounds)
	fmt.Fprintf(&out, "  %-58s %8s  %s\n", "what", "median", "vs bare ssh")
	fmt.Fprintf(&out, "  %-58s %8s  %s\n", "bare ssh true (same options, connection reuse)", rawMed.Round(10*time.Microsecond), "1.00x")
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{
		{"true through the hub (log held, as the daemon), sandboxed", sandboxed},
		{"true through the hub (log held, as the daemon), sandbox: none", unsandboxed},
		{"true, sandbox: none, the hub as relay exec --host (recorder)", recorded},
	} {
		fmt.Fprintf(&out, "  %-58s %8s  %.2fx\n", row.name, med(row.ds).Round(10*time.Microsecond), float64(med(row.ds))/float64(rawMed))
	}
	fmt.Fprintf(&out, "\nthe member's side alone, as processes, %d rounds alternating, medians:\n", rounds)
	fmt.Fprintf(&out, "  %-58s %8s\n", "/bin/sh -c /usr/bin/true", med(shAlone).Round(10*time.Microsecond))
	fmt.Fprintf(&out, "  %-58s %8s  +%s\n", "relay serve-ssh for /usr/bin/true (sandbox: none)", med(serveAlone).Round(10*time.Microsecond), (med(serveAlone) - med(shAlone)).Round(10*time.Microsecond))
	b.Log(out.String())
}

// BenchmarkFleetFanOutFigures: 10 members on loopback at once against the
// slowest of the same 10 called one by one, alternating, for true and for
// a command that takes a second.
func BenchmarkFleetFanOutFigures(b *testing.B) {
	needHarness(b)
	if b.N > 1 {
		b.Skip("the figures run once: use -benchtime 1x")
	}
	ctx := context.Background()
	var ms []*member
	for i := 0; i < 10; i++ {
		ms = append(ms, newMember(b, fmt.Sprintf("m%d", i), memberOpts{}))
	}
	h10 := newHub(b, "fleet: {parallel: 10, max_calls: 32}", ms...)
	held := h10.holdLog(b)
	hosts := h10.f.Hosts()
	one := func(host, cmd string, args ...string) time.Duration {
		return timeIt(func() {
			r := h10.f.Call(ctx, host, cmd, args, CallOptions{Audit: held})
			r.Close()
			if r.Kind != KindOK {
				b.Fatalf("%s /%s: %s %q", host, cmd, r.Kind, r.Reason)
			}
		})
	}
	fan := func(cmd string, args ...string) time.Duration {
		return timeIt(func() {
			s := h10.f.FanOut(ctx, hosts, cmd, args, FanOutOptions{CallOptions: CallOptions{Audit: held}})
			s.Close()
			if ok, _, _ := s.Counts(); ok != len(hosts) {
				b.Fatalf("fan-out /%s: %d of %d ok", cmd, ok, len(hosts))
			}
		})
	}
	for _, hn := range hosts {
		one(hn, "true") // connections up
	}
	var out2 strings.Builder
	fmt.Fprintf(&out2, "\nfan-out to %d members on loopback, medians:\n", len(hosts))
	for _, c := range []struct {
		cmd    string
		args   []string
		rounds int
	}{{"true", nil, 15}, {"slow", []string{"1"}, 3}} {
		var fans, slowest []time.Duration
		var busy []float64
		for r := 0; r < c.rounds; r++ {
			var worst time.Duration
			for _, hn := range hosts {
				worst = max(worst, one(hn, c.cmd, c.args...))
			}
			slowest = append(slowest, worst)
			u0, t0 := cpuTicks()
			fans = append(fans, fan(c.cmd, c.args...))
			u1, t1 := cpuTicks()
			busy = append(busy, float64(u1-u0)/float64(max(t1-t0, 1)))
		}
		name := "/" + c.cmd + " " + strings.Join(c.args, " ")
		slices.Sort(busy)
		fmt.Fprintf(&out2, "  %-12s fan-out %8s, slowest single %8s: %.2fx (the machine's CPUs %.0f%% busy during the fan-out)\n", name, med(fans).Round(100*time.Microsecond), med(slowest).Round(100*time.Microsecond), float64(med(fans))/float64(med(slowest)), 100*busy[len(busy)/2])
	}
	b.Log(out2.String())
}

// holdLog opens the hub's log for the benchmark's life, as the daemon
// does, and returns an Audit func that appends to it.
func (h *hub) holdLog(t testing.TB) func(audit.Record) error {
	l, err := audit.Open(h.cfg.Audit.Dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return func(r audit.Record) error { _, err := l.Append(r); return err }
}

// cpuTicks reads the machine's busy and total CPU time from /proc/stat,
// to tell a fan-out limited by its parallelism from one limited by the
// cores every member shares on loopback.
func cpuTicks() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle and iowait
			busy += n
		}
	}
	return busy, total
}
