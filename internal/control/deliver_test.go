package control

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/chatfmt"
)

// fakeOwner is the two ends of a Delivery: what was recorded and what
// was sent.
type fakeOwner struct {
	records []audit.Record
	failAt  int // the record (1-based) whose append fails; 0 never
	sent    []string
}

func (f *fakeOwner) delivery() Delivery {
	return Delivery{
		Owner: 7, Via: "(test)", Sender: "backup",
		Record: func(r audit.Record) error {
			if len(f.records)+1 == f.failAt {
				return errors.New("disk full")
			}
			f.records = append(f.records, r)
			return nil
		},
		Text: func(_ context.Context, html string) error { f.sent = append(f.sent, html); return nil },
		Document: func(_ context.Context, name string, open func() (io.ReadCloser, error), caption string) error {
			rc, _ := open()
			b, _ := io.ReadAll(rc)
			f.sent = append(f.sent, name+":"+string(b)+":"+caption)
			return nil
		},
	}
}

// TestDeliverySendsOnlyWhatIsRecorded: the one notify flow of the daemon
// and relay notify sends nothing before the request is durable, marks
// what it sends as a notification, and never hides a delivery whose
// record failed (the daemon used to drop that error).
func TestDeliverySendsOnlyWhatIsRecorded(t *testing.T) {
	ctx := context.Background()
	t.Run("request not recorded", func(t *testing.T) {
		f := &fakeOwner{failAt: 1}
		err := f.delivery().Deliver(ctx, Notification{Text: "hi"}, nil)
		if !errors.Is(err, ErrNotRecorded) || len(f.sent) != 0 {
			t.Errorf("got %v and %d sent, want ErrNotRecorded and nothing sent", err, len(f.sent))
		}
	})
	t.Run("delivery not recorded", func(t *testing.T) {
		f := &fakeOwner{failAt: 2}
		err := f.delivery().Deliver(ctx, Notification{Text: "hi"}, nil)
		if !errors.Is(err, ErrDeliveryNotRecorded) || len(f.sent) != 1 {
			t.Errorf("got %v and %d sent, want ErrDeliveryNotRecorded after the send", err, len(f.sent))
		}
	})
	t.Run("refused before anything", func(t *testing.T) {
		f := &fakeOwner{}
		err := f.delivery().Deliver(ctx, Notification{Text: strings.Repeat("x", MaxText+1)}, nil)
		if err == nil || len(f.records) != 0 || len(f.sent) != 0 {
			t.Errorf("got %v, %d records, %d sent; want a refusal and nothing else", err, len(f.records), len(f.sent))
		}
	})
	t.Run("marked and audited", func(t *testing.T) {
		f := &fakeOwner{}
		if err := f.delivery().Deliver(ctx, Notification{Text: "<b>done</b>"}, nil); err != nil {
			t.Fatal(err)
		}
		if len(f.sent) != 1 || !strings.Contains(f.sent[0], chatfmt.NotifyHeader) || strings.Contains(f.sent[0], "<b>done") {
			t.Errorf("sent %q, want it marked as a notification and escaped", f.sent)
		}
		if len(f.records) != 2 || f.records[0].Type != audit.KindNotify || f.records[0].Detail != "text (test)" ||
			f.records[1].Type != audit.KindDelivery || f.records[1].Outcome != audit.OutcomeSent {
			t.Errorf("recorded %+v, want the request then the delivery", f.records)
		}
	})
	t.Run("file not received", func(t *testing.T) {
		f := &fakeOwner{}
		err := f.delivery().Deliver(ctx, Notification{FileName: "a.log", Size: 3}, func() (io.ReaderAt, error) { return nil, errors.New("reset") })
		if !errors.Is(err, ErrNotReceived) || len(f.sent) != 0 || len(f.records) != 2 || f.records[1].Outcome != audit.OutcomeFailed {
			t.Errorf("got %v, %d sent, records %+v; want ErrNotReceived, nothing sent, the failure recorded", err, len(f.sent), f.records)
		}
	})
	t.Run("file", func(t *testing.T) {
		f := &fakeOwner{}
		err := f.delivery().Deliver(ctx, Notification{FileName: "a.log", Size: 3}, func() (io.ReaderAt, error) { return strings.NewReader("abc"), nil })
		if err != nil || len(f.sent) != 1 || !strings.HasPrefix(f.sent[0], "a.log:abc:") || f.records[0].OutputBytes != 3 {
			t.Errorf("got %v, sent %q, records %+v", err, f.sent, f.records)
		}
	})
}
