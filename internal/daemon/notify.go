package daemon

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/chatfmt"
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
	r := audit.Record{Type: audit.KindNotify, Outcome: audit.OutcomeRequested, ChatID: d.owner, Detail: "text from " + n.Peer.String()}
	if n.File != nil {
		r.Detail = "file " + n.FileName + " from " + n.Peer.String()
		r.OutputBytes = n.Size
	}
	if err := d.record(r); err != nil {
		return errors.New("audit log unavailable; nothing sent")
	}
	var opts []telegram.SendOpt
	if n.Silent {
		opts = append(opts, telegram.Silent())
	}
	var err error
	// Through the owner's lane, in order with every other message.
	send := func(f func(ctx context.Context) error) error { return d.out.call(ctx, d.owner, f) }
	if n.File != nil {
		// The connection can be read once, but a 429 means sending again:
		// spool the file to a private, already-unlinked temp file.
		f, serr := spoolFile(launch.SpoolDir(d.config()), n.File)
		if serr != nil {
			d.recordDelivery("notify", "", serr)
			return errors.New("could not receive the file")
		}
		defer f.Close()
		open := func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(f, 0, n.Size)), nil
		}
		err = send(func(ctx context.Context) error {
			return d.tg.SendDocument(ctx, d.owner, n.FileName, open, chatfmt.Notify(n.Peer.Sender(), n.Text), opts...)
		})
	} else {
		err = send(func(ctx context.Context) error {
			_, err := d.tg.SendText(ctx, d.owner, chatfmt.Notify(n.Peer.Sender(), n.Text), opts...)
			return err
		})
	}
	d.recordDelivery("notify", "", err)
	if err != nil {
		return errors.New("telegram did not accept the message; see the relay log")
	}
	return nil
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
