package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// laneCapacity bounds what one lane holds. Only the owner's chat is ever
// written to, and the owner types slowly; a lane this full means Telegram
// has refused the chat for minutes, and a reply dropped then is better
// than memory that grows without bound.
const laneCapacity = 256

// outbox is every send to Telegram: the update loop never sends, it posts
// here and goes on. Each chat has an ordered lane served by its own
// goroutine, so a send that stalls (a 429 with a long retry_after, a
// large upload) delays only what was posted behind it in that chat, never
// the handling of updates, and never another chat.
//
// A chat has a second lane for deletions of messages that carry a code:
// they must not wait behind a reply that Telegram is holding back.
type outbox struct {
	log zerolog.Logger
	// ctx is what every send runs under; abort cancels it, at the end of
	// the drain.
	ctx   context.Context
	abort context.CancelFunc

	mu     sync.Mutex
	lanes  map[laneKey]chan func(context.Context)
	closed bool
	wg     sync.WaitGroup
}

type laneKey struct {
	chat   int64
	urgent bool
}

// errOutboxFull means a send was dropped: its lane was full or the outbox
// was closing.
var errOutboxFull = errors.New("outbound queue full or closed; message dropped")

func newOutbox(log zerolog.Logger) *outbox {
	ctx, cancel := context.WithCancel(context.Background())
	return &outbox{log: log, ctx: ctx, abort: cancel, lanes: map[laneKey]chan func(context.Context){}}
}

// post queues f in chat's ordered lane and returns at once. It reports
// false, and f never runs, when the lane is full or the outbox closed.
func (o *outbox) post(chat int64, f func(context.Context)) bool {
	return o.enqueue(laneKey{chat: chat}, f)
}

// urgent queues f in chat's lane for deletions, which never waits behind
// the ordinary lane.
func (o *outbox) urgent(chat int64, f func(context.Context)) bool {
	return o.enqueue(laneKey{chat: chat, urgent: true}, f)
}

func (o *outbox) enqueue(k laneKey, f func(context.Context)) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		o.log.Warn().Int64("chat_id", k.chat).Msg("message not sent: relay is stopping")
		return false
	}
	lane := o.lanes[k]
	if lane == nil {
		lane = make(chan func(context.Context), laneCapacity)
		o.lanes[k] = lane
		o.wg.Add(1)
		go o.serve(lane)
	}
	select {
	case lane <- f:
		return true
	default:
		o.log.Error().Int64("chat_id", k.chat).Msg("outbound queue full: message dropped (telegram has been refusing this chat)")
		return false
	}
}

func (o *outbox) serve(lane chan func(context.Context)) {
	defer o.wg.Done()
	for f := range lane {
		f(o.ctx)
	}
}

// call runs f in chat's ordered lane and waits for it, or for ctx. The
// caller is never the update loop.
func (o *outbox) call(ctx context.Context, chat int64, f func(context.Context) error) error {
	done := make(chan error, 1)
	if !o.post(chat, func(octx context.Context) {
		// Either context ends the send: the caller giving up, or the
		// outbox aborting.
		cctx, cancel := context.WithCancel(octx)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		done <- f(cctx)
	}) {
		return errOutboxFull
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops accepting sends and lets the lanes finish what they hold
// for up to grace, then aborts the sends still running and waits for them
// to give up.
func (o *outbox) close(grace time.Duration) {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		for _, lane := range o.lanes {
			close(lane)
		}
	}
	o.mu.Unlock()
	done := make(chan struct{})
	go func() { o.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		o.log.Warn().Stringer("grace", grace).Msg("messages still queued at shutdown were not sent")
		o.abort()
		<-done
	}
	o.abort()
}
