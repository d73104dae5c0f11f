package e2e

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// BenchmarkRoundTripSandboxed: the bot's round trip for a trivial command
// through the fake Bot API (the update becoming visible to the relay, until
// its reply arrives), sandboxed against unsandboxed, in one relay,
// alternating A B A B; it reports the median of the pairs' ratios.
//
//	go test -run '^$' -bench RoundTripSandboxed -benchtime 200x ./e2e
func BenchmarkRoundTripSandboxed(b *testing.B) {
	r := startRelay(b, options{commands: `
  boxed:
    argv: [/bin/echo, "{word}"]
    params: [{name: word, type: string, pattern: "^[a-z0-9]+$", max_len: 32}]
  bare:
    argv: [/bin/echo, "{word}"]
    params: [{name: word, type: string, pattern: "^[a-z0-9]+$", max_len: 32}]
    sandbox: none
`})
	r.login()
	trip := func(cmd, word string) time.Duration {
		id, _ := r.api.SendMessage(owner, ownerDM, "/"+cmd+" "+word)
		seen := r.seen
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m, err := r.api.WaitMessage(ctx, func(m fakebotapi.Message) bool {
			return m.ChatID == ownerID && m.ID > seen && strings.Contains(m.Text, word)
		})
		if err != nil {
			b.Fatal(err)
		}
		r.seen = m.ID
		visible, ok := r.api.UpdateDelivered(id)
		if !ok {
			b.Fatal("update never delivered")
		}
		return m.Date.Sub(visible)
	}
	var boxed, bare []time.Duration
	var ratios []float64
	for i := 0; b.Loop(); i++ {
		w := "w" + strconv.Itoa(i)
		x, y := trip("boxed", w+"a"), trip("bare", w+"b")
		boxed, bare = append(boxed, x), append(bare, y)
		ratios = append(ratios, float64(x)/float64(y))
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(median(boxed).Microseconds())/1000, "sandboxed-ms")
	b.ReportMetric(float64(median(bare).Microseconds())/1000, "unsandboxed-ms")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
}
