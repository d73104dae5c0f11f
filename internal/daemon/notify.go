package daemon

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/relaychat/relay/internal/control"
	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/internal/telegram"
)

// notify delivers a `relay notify` message to the owner, from the
// relay's own socket or the notify group's. It is audited before it is
// sent, like everything else, and marked with its sender: the group's
// name for the group socket (the one name the relay vouches for), never
// a program name such a peer chose.
func (d *Daemon) notify(ctx context.Context, n control.Notification) error {
	var opts []telegram.SendOpt
	if n.Silent {
		opts = append(opts, telegram.Silent())
	}
	// Through the owner's lane, in order with every other message.
	send := func(ctx context.Context, f func(ctx context.Context) error) error { return d.out.call(ctx, d.owner, f) }
	var spooled *os.File
	defer func() {
		if spooled != nil {
			spooled.Close()
		}
	}()
	err := control.Delivery{
		Owner: d.owner, Via: "from " + n.Peer.String(), Sender: n.Peer.Sender(), Record: d.record,
		Text: func(ctx context.Context, html string) error {
			return send(ctx, func(ctx context.Context) error {
				_, err := d.tg.SendText(ctx, d.owner, html, opts...)
				return err
			})
		},
		Document: func(ctx context.Context, name string, open func() (io.ReadCloser, error), caption string) error {
			return send(ctx, func(ctx context.Context) error { return d.tg.SendDocument(ctx, d.owner, name, open, caption, opts...) })
		},
	}.Deliver(ctx, n, func() (io.ReaderAt, error) {
		// The connection can be read once, but a 429 means sending again:
		// spool the file to a private, already-unlinked temp file.
		if n.File == nil {
			return nil, errors.New("no file")
		}
		f, err := spoolFile(launch.SpoolDir(d.config()), n.File)
		spooled = f
		return f, err
	})
	// The peer is told what happened, never the cause (it is in the log
	// and the audit record).
	switch {
	case err == nil:
		return nil
	case errors.Is(err, control.ErrNotRecorded):
		return errors.New("audit log unavailable; nothing sent")
	case errors.Is(err, control.ErrNotReceived):
		return errors.New("could not receive the file")
	case errors.Is(err, control.ErrDeliveryNotRecorded):
		d.o.Log.Error().Err(err).Msg("notify delivered but not recorded")
		return errors.New("delivered, but the delivery record failed; see the relay log")
	}
	d.o.Log.Warn().Err(err).Msg("notify not delivered")
	return errors.New("telegram did not accept the message; see the relay log")
}

func spoolFile(dir string, r io.Reader) (*os.File, error) {
	f, err := os.CreateTemp(dir, "notify-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
