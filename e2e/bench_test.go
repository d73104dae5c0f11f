package e2e

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// The relay's speed and memory targets, measured through the fake Bot API
// with the real binary. Run with:
//
//	go test -run '^$' -bench . -benchtime 200x ./e2e
//
// Each benchmark reports its target metric next to its baseline from the
// same run; nothing here asserts timing.

// BenchmarkCommandOverhead: from the update becoming visible to the relay
// (returned by getUpdates) until the reply arrives, against a bare
// fork/exec of the same command, measured alternately in one loop.
func BenchmarkCommandOverhead(b *testing.B) {
	b.Run("sandboxed", func(b *testing.B) { benchOverhead(b, echoCmd) })
	b.Run("unsandboxed", func(b *testing.B) { benchOverhead(b, echoCmd+"    sandbox: none\n") })
}

func benchOverhead(b *testing.B, commands string) {
	r := startRelay(b, options{commands: commands})
	r.login()
	var relay, bare []time.Duration
	for i := 0; b.Loop(); i++ {
		word := "w" + strconv.Itoa(i)
		t0 := time.Now()
		if err := osexec.Command("/bin/echo", word).Run(); err != nil {
			b.Fatal(err)
		}
		bare = append(bare, time.Since(t0))

		id, _ := r.api.SendMessage(owner, ownerDM, "/echo "+word)
		seen := r.seen
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		m, err := r.api.WaitMessage(ctx, func(m fakebotapi.Message) bool {
			return m.ChatID == ownerID && m.ID > seen && strings.Contains(m.Text, word)
		})
		arrived := m.Date // when the fake received the reply
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		r.seen = m.ID
		visible, ok := r.api.UpdateDelivered(id)
		if !ok {
			b.Fatal("update never delivered")
		}
		relay = append(relay, arrived.Sub(visible))
	}
	mr, mb := median(relay), median(bare)
	b.ReportMetric(float64(mr.Microseconds())/1000, "relay-ms/op")
	b.ReportMetric(float64(mb.Microseconds())/1000, "bare-exec-ms/op")
	b.ReportMetric(float64((mr-mb).Microseconds())/1000, "overhead-ms/op")
}

// BenchmarkStartup: process start until the first getUpdates arrives.
func BenchmarkStartup(b *testing.B) {
	var ds []time.Duration
	for b.Loop() {
		r := startRelay(b, options{commands: echoCmd})
		polls := r.api.PollTimes()
		if len(polls) == 0 {
			b.Fatal("no poll recorded")
		}
		ds = append(ds, polls[0].Sub(r.started))
		r.stop(syscall.SIGTERM)
	}
	b.ReportMetric(float64(median(ds).Microseconds())/1000, "startup-ms")
}

// BenchmarkMemory: idle RSS, and peak RSS while delivering a 1 GiB output
// as a document capped at 50 MB. It delivers once whatever b.N is: one
// delivery gives the figures, and the -benchtime 200x the README gives the
// other e2e benchmarks would make it 200 GiB.
func BenchmarkMemory(b *testing.B) {
	{
		r := startRelay(b, options{commands: `  gig:
    description: one gibibyte of output
    argv: [/usr/bin/head, -c, "1073741824", /dev/zero]
    timeout: 120s
    workdir: /
    max_output: 1GiB
`})
		r.login()
		idle := procKiB(b, r.cmd.Process.Pid, "VmRSS")
		r.say("/gig")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		doc, err := r.api.WaitDocument(ctx, func(d fakebotapi.Document) bool { return d.ChatID == ownerID })
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		peak := procKiB(b, r.cmd.Process.Pid, "VmHWM")
		b.ReportMetric(float64(idle)/1024, "idle-rss-MiB")
		b.ReportMetric(float64(peak)/1024, "peak-rss-MiB")
		b.ReportMetric(float64(doc.Size)/1e6, "document-MB")
		r.stop(syscall.SIGTERM)
	}
}

func procKiB(b *testing.B, pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
