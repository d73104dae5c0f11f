package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/chatfmt"
	"github.com/relaychat/relay/internal/control"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/internal/telegram"
)

const notifyUsage = `Usage:
    relay notify [--config FILE] [--silent] TEXT|-
    relay notify [--config FILE] [--silent] --file PATH [CAPTION]

Sends a message, or a file as a document, to the owner's chat: for cron,
CI and Home Assistant automations. "-" reads the text from standard input.
A running relay delivers it over its control socket, so it goes through
the daemon's audit log; without a running relay, notify writes the audit
record itself. The token comes from the secret store, never the command
line.

Options:
    --config FILE   the config file (default: as relay run)
    --silent        deliver without a notification sound
    --file PATH     send PATH as a document
`

// maxNotifyText is the longest text sent as a message; longer text goes
// as a document so that nothing is cut.
const maxNotifyText = 3500

func init() {
	register(&command{name: "notify", short: "send a message or file to the owner", usage: notifyUsage, run: notifyCmd})
}

func notifyCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("notify")
	cfgFlag := fs.String("config", "", "")
	silent := fs.Bool("silent", false, "")
	file := fs.String("file", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var text string
	switch {
	case *file != "" && fs.NArg() <= 1:
		text = fs.Arg(0)
	case *file == "" && fs.NArg() == 1 && fs.Arg(0) == "-":
		b, err := io.ReadAll(io.LimitReader(env.Stdin, 1<<20+1))
		if err != nil {
			return fmt.Errorf("notify: read standard input: %w", err)
		}
		if len(b) > 1<<20 {
			return usageErr("notify: standard input is over 1 MiB; use --file")
		}
		text = string(b)
	case *file == "" && fs.NArg() == 1:
		text = fs.Arg(0)
	default:
		return usageErr("notify: want exactly one TEXT, \"-\", or --file PATH")
	}
	if *file == "" && strings.TrimSpace(text) == "" {
		return usageErr("notify: empty message")
	}
	_, cfg, err := configFromFlag(*cfgFlag, env)
	if err != nil {
		return err
	}
	n := control.Notification{Text: text, Silent: *silent}
	var body io.Reader
	switch {
	case *file != "":
		f, err := os.Open(*file)
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		if fi.Size() > cfg.Telegram.MaxDocumentBytes {
			return fmt.Errorf("notify: %s is %d bytes, over telegram.max_document_bytes (%d)", *file, fi.Size(), cfg.Telegram.MaxDocumentBytes)
		}
		n.FileName, n.Size, body = filepath.Base(*file), fi.Size(), f
	case len(text) > maxNotifyText || !utf8.ValidString(text):
		n.FileName, n.Size, body = "notify-"+time.Now().UTC().Format("20060102-150405")+".txt", int64(len(text)), strings.NewReader(text)
		n.Text = ""
	}

	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	err = control.Send(cctx, cfg.StateDir, n, body)
	if err == nil {
		return nil
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return fmt.Errorf("notify: %w", err)
	}
	// No daemon: do what it would, with the audit record first.
	if s, ok := body.(io.Seeker); ok {
		if _, err := s.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	return notifyDirect(cctx, env, cfg.Audit.Dir, cfg.Telegram.APIURL, cfg.Auth.OwnerID, secretStore(cfg, env), n, body)
}

func notifyDirect(ctx context.Context, env *Env, auditDir, apiURL string, owner int64, store *secrets.Store, n control.Notification, body io.Reader) error {
	token, _, err := lookup(env, store, secrets.BotToken)
	if err != nil {
		return notSetup(err, "no bot token", "run 'relay token set'")
	}
	defer clear(token)
	al, err := audit.Open(auditDir, audit.Options{})
	if err != nil {
		return withCode(ExitNotSetup, fmt.Errorf("notify: audit log unavailable, nothing sent: %w", err))
	}
	defer al.Close()
	al.ForbidSecret(token)
	r := audit.Record{Type: "notify", Outcome: "requested", ChatID: owner, Detail: "text (no daemon)"}
	if n.FileName != "" {
		r.Detail, r.OutputBytes = "file "+n.FileName+" (no daemon)", n.Size
	}
	if _, err := al.Append(r); err != nil {
		return fmt.Errorf("notify: audit log unavailable, nothing sent: %w", err)
	}
	tg, err := telegram.New(telegram.Options{Token: string(token), APIURL: apiURL})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	var opts []telegram.SendOpt
	if n.Silent {
		opts = append(opts, telegram.Silent())
	}
	if n.FileName != "" {
		ra, ok := body.(io.ReaderAt)
		if !ok {
			b, rerr := io.ReadAll(body)
			if rerr != nil {
				return fmt.Errorf("notify: %w", rerr)
			}
			ra = strings.NewReader(string(b))
		}
		open := func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(ra, 0, n.Size)), nil }
		err = tg.SendDocument(ctx, owner, n.FileName, open, chatfmt.Notify("", n.Text), opts...)
	} else {
		_, err = tg.SendText(ctx, owner, chatfmt.Notify("", n.Text), opts...)
	}
	d := audit.Record{Type: "delivery", Outcome: "sent", Detail: "notify", ChatID: owner}
	if err != nil {
		d.Outcome, d.Reason = "failed", err.Error()
	}
	if _, aerr := al.Append(d); aerr != nil && err == nil {
		err = fmt.Errorf("delivered, but the delivery record failed: %w", aerr)
	}
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}
