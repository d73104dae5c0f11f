package daemon

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/fakebotapi"
)

// BenchmarkPanicButton measures how long /lock, /kill and /logout take to
// have their effect, from the moment the fake Bot API hands the update to
// the daemon, under each load the issue names and all of them at once:
//
//	idle          nothing else going on
//	429           the chat's replies held back by a 429 with retry_after 25 s
//	upload        a 50 MB result document being uploaded (the fake holds it)
//	audit         /audit 50 on a log of RELAY_BENCH_AUDIT_RECORDS records (default 1,000,000)
//	jobs16        16 jobs running
//	flood         2,000 stranger updates queued just before
//	all           all of the above
//
// The effect is what the owner relies on: for /lock the session gone and
// every job's processes reaped, for /kill the job's processes reaped, for
// /logout the session gone (a command after it is refused). ns/op is the
// median from delivery; max-ms the worst; send-max-ms the worst from the
// owner's send, which includes waiting behind the flood. The target is
// 100 ms. Run with a fixed count, for example:
//
//	go test -run '^$' -bench PanicButton -benchtime 20x ./internal/daemon
func BenchmarkPanicButton(b *testing.B) {
	for _, action := range []string{"lock", "kill", "logout"} {
		for _, load := range []string{"idle", "429", "upload", "audit", "jobs16", "flood", "all"} {
			b.Run(action+"/"+load, func(b *testing.B) { benchPanic(b, action, load) })
		}
	}
}

const bigCmd = `  big:
    description: fifty megabytes
    argv: [/usr/bin/head, -c, "52428800", /dev/zero]
    timeout: 60s
    max_output: 64MiB
    sandbox: none
`

func benchPanic(b *testing.B, action, load string) {
	has := func(l string) bool { return load == l || load == "all" }
	o := hopts{commands: napCmd + bigCmd, drain: 100 * time.Millisecond}
	if has("audit") {
		tmpl := bigAuditLog(b)
		o.before = func(h *harness) { linkAuditLog(b, tmpl, filepath.Join(h.dir, "audit")) }
	}
	h := newHarness(b, o)
	if has("upload") {
		h.ensureSession()
		h.api.Delay("sendDocument", 5*time.Minute)
		h.send("/big")
		h.waitFor("the upload in progress", func() bool { return h.api.Calls("sendDocument") > 0 })
	}
	var fromDelivery, fromSend []time.Duration
	for b.Loop() {
		b.StopTimer()
		h.ensureSession()
		want := 1
		if has("jobs16") {
			want = 16
		}
		for len(h.d.runner.Jobs()) < want {
			n := len(h.d.runner.Jobs())
			h.handled(h.send("/nap"))
			h.waitFor("a nap running", func() bool { return len(h.d.runner.Jobs()) > n })
		}
		jobs := h.d.runner.Jobs()
		target := jobs[len(jobs)-1].ID()
		if has("429") {
			h.api.RateLimit("sendMessage", 1, 25*time.Second)
			h.handled(h.send("/status"))
		}
		if has("audit") {
			h.handled(h.send("/audit 50"))
		}
		if has("flood") {
			for i := range 2000 {
				h.api.SendMessage(stranger, fakebotapi.Private(stranger), "/help "+strconv.Itoa(i))
			}
		}
		var effect func() bool
		text := "/" + action
		switch action {
		case "lock":
			effect = func() bool { _, ok := h.d.auth.Session(ownerID); return !ok && len(h.d.runner.Jobs()) == 0 }
		case "kill":
			text += " " + target
			effect = func() bool { return h.d.runner.Get(target) == nil }
		case "logout":
			effect = func() bool { _, ok := h.d.auth.Session(ownerID); return !ok }
		}
		b.StartTimer()
		sent := time.Now()
		id := h.send(text)
		for !effect() {
			time.Sleep(20 * time.Microsecond)
		}
		done := time.Now()
		b.StopTimer()
		delivered, ok := h.api.UpdateDelivered(id)
		if !ok {
			b.Fatal("the effect came before the fake delivered the update")
		}
		fromDelivery = append(fromDelivery, done.Sub(delivered))
		fromSend = append(fromSend, done.Sub(sent))
		b.StartTimer()
	}
	b.StopTimer()
	h.api.Delay("sendDocument", 0)
	slices.Sort(fromDelivery)
	slices.Sort(fromSend)
	b.ReportMetric(float64(fromDelivery[len(fromDelivery)/2].Nanoseconds()), "ns/op")
	b.ReportMetric(ms(fromDelivery[len(fromDelivery)-1]), "max-ms")
	b.ReportMetric(ms(fromSend[len(fromSend)-1]), "send-max-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// send plays the owner typing text, without waiting for anything.
func (h *harness) send(text string) int64 {
	id, _ := h.api.SendMessage(owner, ownerDM, text, fakebotapi.At(h.clk.Now()))
	return id
}

// ensureSession logs in if there is no session, without waiting for the
// answer, which a load may be holding back.
func (h *harness) ensureSession() {
	h.t.Helper()
	if _, ok := h.d.auth.Session(ownerID); ok {
		return
	}
	h.clk.Add(30 * time.Second)
	h.handled(h.send("/login " + code(h.t, h.clk.Now())))
	if _, ok := h.d.auth.Session(ownerID); !ok {
		h.t.Fatal("login failed")
	}
}

var bigLog struct {
	once sync.Once
	dir  string
	err  error
}

// bigAuditLog builds, once per process, a log of many records whose bulk
// is in an older file, so that each benchmark can hard-link it instead of
// copying it. TestMain removes it.
func bigAuditLog(b *testing.B) string {
	bigLog.once.Do(func() {
		n := 1_000_000
		if s := os.Getenv("RELAY_BENCH_AUDIT_RECORDS"); s != "" {
			n, _ = strconv.Atoi(s)
		}
		dir, err := os.MkdirTemp("", "relay-bench-audit-")
		if err != nil {
			bigLog.err = err
			return
		}
		bigLog.dir = filepath.Join(dir, "audit")
		if _, err := audit.Init(bigLog.dir, keyStore{}); err != nil {
			bigLog.err = err
			return
		}
		l, err := audit.Open(bigLog.dir, audit.Options{FS: noSyncFS{}, RotateBytes: 1 << 40})
		if err != nil {
			bigLog.err = err
			return
		}
		for i := range n {
			exit := 0
			r := audit.Record{Type: "exec_end", Outcome: "ok", Command: "disk", Job: "j" + strconv.Itoa(i), ChatID: ownerID,
				DurationMS: 12, OutputBytes: 2048, OutputSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Exit: &exit}
			if i%2 == 0 {
				r = audit.Record{Type: "request", Outcome: "allowed", Command: "disk", UserID: ownerID, ChatID: ownerID,
					Argv: []string{"/usr/bin/df", "-h", "/var"}, Workdir: "/", Sandbox: "no network", Params: map[string]string{"path": "/var"}}
			}
			if _, err := l.Append(r); err != nil {
				bigLog.err = err
				return
			}
		}
		l.Close()
		// One more record in a file of its own: the daemon appends there,
		// and the bulk can be shared.
		l, err = audit.Open(bigLog.dir, audit.Options{FS: noSyncFS{}, RotateBytes: 1})
		if err == nil {
			_, err = l.Append(audit.Record{Type: "update", Outcome: "ok", Detail: "benchmark log"})
			l.Close()
		}
		bigLog.err = err
	})
	if bigLog.err != nil {
		b.Fatal(bigLog.err)
	}
	return bigLog.dir
}

// linkAuditLog makes dst the log in tmpl: its oldest file hard-linked
// (nothing ever writes it again), the rest copied.
func linkAuditLog(b *testing.B, tmpl, dst string) {
	if err := os.RemoveAll(dst); err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		b.Fatal(err)
	}
	files := audit.Files(tmpl)
	for _, name := range []string{audit.StateFile} {
		files = append(files, filepath.Join(tmpl, name))
	}
	for i, f := range files {
		to := filepath.Join(dst, filepath.Base(f))
		if i == 0 && len(audit.Files(tmpl)) > 1 {
			if err := os.Link(f, to); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if err := copyFile(f, to); err != nil {
			b.Fatal(err)
		}
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// noSyncFS builds the benchmark's log without an fsync per record.
type noSyncFS struct{}

type noSyncFile struct{ *os.File }

func (noSyncFile) Sync() error { return nil }

func (noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (audit.File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func (noSyncFS) SyncDir(string) error { return nil }

func TestMain(m *testing.M) {
	code := m.Run()
	if bigLog.dir != "" {
		os.RemoveAll(filepath.Dir(bigLog.dir))
	}
	os.Exit(code)
}
