package fleet

import (
	"context"
	"sync"
	"time"
)

// FanOutOptions adjust a fan-out.
type FanOutOptions struct {
	CallOptions
	// Parallel bounds the hosts reached at once; 0 means fleet.parallel.
	Parallel int
	// Done is called as each host's call ends, for live progress; calls
	// from different hosts may overlap.
	Done func(*Result)
}

// Summary is one fan-out's outcome, as plain data: each host's result in
// the order the hosts were given, and the counts a summary line shows.
type Summary struct {
	Command  string
	Args     []string
	Results  []*Result
	Duration time.Duration
}

// Counts returns how many hosts ran the command to exit 0, ran it and
// failed or were killed, and did not run it.
func (s *Summary) Counts() (ok, failed, notRun int) {
	for _, r := range s.Results {
		switch {
		case r.Kind == KindOK:
			ok++
		case r.Ran():
			failed++
		default:
			notRun++
		}
	}
	return ok, failed, notRun
}

// Close releases every host's output.
func (s *Summary) Close() {
	for _, r := range s.Results {
		r.Close()
	}
}

// FanOut runs command with args on every host of hosts (as Resolve
// returns them), at most Parallel at once, each within its own timeout,
// and returns when all have ended. A host that fails never stops the
// others, and none is retried.
func (f *Fleet) FanOut(ctx context.Context, hosts []string, command string, args []string, o FanOutOptions) *Summary {
	start := f.now()
	par := o.Parallel
	if par <= 0 {
		par = f.cfg.Fleet.Parallel
	}
	s := &Summary{Command: command, Args: args, Results: make([]*Result, len(hosts))}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				s.Results[i] = &Result{Host: h, Command: command, Args: args, Kind: KindCanceled, Reason: "cancelled before the call was made"}
				return
			}
			defer func() { <-sem }()
			r := f.Call(ctx, h, command, args, o.CallOptions)
			s.Results[i] = r
			if o.Done != nil {
				o.Done(r)
			}
		}()
	}
	wg.Wait()
	s.Duration = f.now().Sub(start)
	return s
}
