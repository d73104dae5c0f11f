package control

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/chatfmt"
)

// Delivery is the one notify flow, for the daemon (a notification from a
// socket) and for relay notify without a daemon alike: check the
// notification, record the request durably, then send it, marked as a
// notification (chatfmt.Notify), then record the delivery. Nothing is
// sent unless the request record is durable, and a delivery whose
// record fails is reported, not hidden.
type Delivery struct {
	Owner int64
	// Via says where it came from, for the request record's detail:
	// "from uid 1000 pid 42 (\"backup\")", "(no daemon)".
	Via string
	// Sender is the label chatfmt.Notify shows; "" for none.
	Sender string
	// Record appends an audit record; an error means it is not durable.
	Record func(audit.Record) error
	// Text sends an HTML message to the owner.
	Text func(ctx context.Context, html string) error
	// Document sends a file to the owner, with an HTML caption.
	Document func(ctx context.Context, name string, open func() (io.ReadCloser, error), caption string) error
}

// Errors of Deliver, for the caller to say in its own words.
var (
	// ErrNotRecorded: the request could not be recorded; nothing was sent.
	ErrNotRecorded = errors.New("audit log unavailable, nothing sent")
	// ErrNotReceived: the file could not be received; nothing was sent.
	ErrNotReceived = errors.New("could not receive the file")
	// ErrDeliveryNotRecorded: sent, but its delivery record failed.
	ErrDeliveryNotRecorded = errors.New("delivered, but the delivery record failed")
)

// Deliver sends n to the owner. For a file notification, receive is
// called once the request is recorded and returns the file's content,
// read from offset 0 for each attempt (a 429 means sending again).
func (d Delivery) Deliver(ctx context.Context, n Notification, receive func() (io.ReaderAt, error)) error {
	if err := n.Check(); err != nil {
		return err
	}
	r := audit.Record{Type: audit.KindNotify, Outcome: audit.OutcomeRequested, ChatID: d.Owner, Detail: "text " + d.Via}
	if n.FileName != "" {
		r.Detail, r.OutputBytes = "file "+n.FileName+" "+d.Via, n.Size
	}
	if err := d.Record(r); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	html := chatfmt.Notify(d.Sender, n.Text)
	var err error
	if n.FileName != "" {
		var body io.ReaderAt
		if receive != nil {
			body, err = receive()
		}
		if body == nil || err != nil {
			if err == nil {
				err = errors.New("no file")
			}
			d.failed(err)
			return fmt.Errorf("%w: %w", ErrNotReceived, err)
		}
		open := func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(body, 0, n.Size)), nil }
		err = d.Document(ctx, n.FileName, open, html)
	} else {
		err = d.Text(ctx, html)
	}
	rec := audit.Record{Type: audit.KindDelivery, Outcome: audit.OutcomeSent, Detail: "notify", ChatID: d.Owner}
	if err != nil {
		rec.Outcome, rec.Reason = audit.OutcomeFailed, err.Error()
	}
	if aerr := d.Record(rec); aerr != nil && err == nil {
		return fmt.Errorf("%w: %w", ErrDeliveryNotRecorded, aerr)
	}
	return err
}

func (d Delivery) failed(cause error) {
	_ = d.Record(audit.Record{Type: audit.KindDelivery, Outcome: audit.OutcomeFailed, Detail: "notify", ChatID: d.Owner, Reason: cause.Error()})
}
