package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/control"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/internal/telegram"
	"github.com/relaychat/relay/policy"
)

const notifyUsage = `Usage:
    relay notify [--config FILE] [--silent] TEXT|-
    relay notify [--config FILE] [--silent] --file PATH [CAPTION]
    relay notify --socket PATH [--silent] TEXT|-

Sends a message, or a file as a document, to the owner's chat: for cron,
CI and Home Assistant automations. "-" reads the text from standard input.
A running relay delivers it over its control socket, so it goes through
the daemon's audit log; without a running relay, notify writes the audit
record itself. The token comes from the secret store, never the command
line.

Another local service (Home Assistant, running as its own user or in a
container) sends through the group socket instead, as a member of the
group the config names in notify.group: --socket PATH (by default
/run/relay-notify/notify.sock) needs no config and no token, and the
message shows the group as its sender.

Options:
    --config FILE   the config file (default: as relay run)
    --socket PATH   send through the group socket at PATH (notify.group)
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
	socket := fs.String("socket", "", "")
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
	if *socket != "" && *cfgFlag != "" {
		return usageErr("notify: --socket sends without a config; give one of --socket and --config")
	}
	var cfg *policy.Config
	maxDoc := int64(50 << 20) // the daemon bounds it again
	if *socket == "" {
		var err error
		if _, cfg, err = configFromFlag(*cfgFlag, env); err != nil {
			if errors.Is(err, iofs.ErrPermission) {
				return withHint(err, "a service that notifies as a member of notify.group needs no config: relay notify --socket "+filepath.Join(policy.DefaultNotifyDir, control.GroupSocketName)+" TEXT")
			}
			return err
		}
		maxDoc = cfg.Telegram.MaxDocumentBytes
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
		if fi.Size() > maxDoc {
			return fmt.Errorf("notify: %s is %d bytes, over telegram.max_document_bytes (%d)", *file, fi.Size(), maxDoc)
		}
		n.FileName, n.Size, body = filepath.Base(*file), fi.Size(), f
	case len(text) > maxNotifyText || !utf8.ValidString(text):
		n.FileName, n.Size, body = "notify-"+time.Now().UTC().Format("20060102-150405")+".txt", int64(len(text)), strings.NewReader(text)
		n.Text = ""
	}

	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if *socket != "" {
		return notifyFailed(control.SendTo(cctx, *socket, n, body), *socket, nil)
	}
	err := control.Send(cctx, cfg.StateDir, n, body)
	if err == nil {
		return nil
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return notifyFailed(err, control.Path(cfg.StateDir), cfg)
	}
	// No daemon: do what it would, with the audit record first.
	if s, ok := body.(io.Seeker); ok {
		if _, err := s.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	return notifyDirect(cctx, env, cfg.Audit.Dir, cfg.Telegram.APIURL, cfg.Auth.OwnerID, secretStore(cfg, env), n, body)
}

// notifyFailed says what kept a notification from the relay, and how to
// fix it. It never suggests the direct path: a user who cannot reach the
// socket must not be sent looking for the bot token.
func notifyFailed(err error, socket string, cfg *policy.Config) error {
	if err == nil {
		return nil
	}
	groupSocket := filepath.Join(policy.DefaultNotifyDir, control.GroupSocketName)
	if cfg != nil && cfg.Notify.Group != "" {
		groupSocket = filepath.Join(cfg.Notify.Dir, control.GroupSocketName)
	}
	var ae *control.AccessError
	var re *control.RefusedError
	switch {
	case errors.As(err, &ae) && cfg != nil:
		// The relay's own socket: its user and root only.
		msg := fmt.Errorf("notify: %w (only the relay's user and root may use it)", ae)
		if cfg.Notify.Group != "" {
			return withHint(msg, fmt.Sprintf("add uid %d to group %s (notify.group) and send with --socket %s", ae.UID, cfg.Notify.Group, groupSocket))
		}
		return withHint(msg, fmt.Sprintf("to let uid %d notify, set notify.group in the relay's config, add the user to that group, and send with --socket %s", ae.UID, groupSocket))
	case errors.As(err, &ae):
		hint := "add the user to the group notify.group names (usermod -aG GROUP USER), then restart the sending service, which reads its groups when it starts"
		if name := dirGroup(filepath.Dir(socket)); name != "" {
			hint = fmt.Sprintf("usermod -aG %s USER adds it to group %s, which notify.group names; then restart the sending service, which reads its groups when it starts", name, name)
		}
		return withHint(fmt.Errorf("notify: %w; add it to notify.group", ae), hint)
	case errors.As(err, &re) && strings.Contains(re.Reason, "notify.group"):
		name := dirGroup(filepath.Dir(socket))
		if name == "" {
			name = "GROUP"
		}
		return withHint(fmt.Errorf("notify: %w", re), fmt.Sprintf("usermod -aG %s USER adds the user to the group; then restart the sending service, which reads its groups when it starts", name))
	case errors.Is(err, control.ErrNoDaemon) && cfg == nil:
		return withHint(fmt.Errorf("notify: no relay is listening on %s", socket),
			"is the relay running, with notify.group in its config? Its log says why it does not serve the group socket")
	}
	return fmt.Errorf("notify: %w", err)
}

// dirGroup is the name of the group owning dir, or "".
func dirGroup(dir string) string {
	fi, err := os.Stat(dir)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if g, err := user.LookupGroupId(strconv.Itoa(int(st.Gid))); err == nil {
		return g.Name
	}
	return strconv.Itoa(int(st.Gid))
}

func notifyDirect(ctx context.Context, env *Env, auditDir, apiURL string, owner int64, store *secrets.Store, n control.Notification, body io.Reader) error {
	if err := n.Check(); err != nil {
		return withCode(ExitUsage, fmt.Errorf("notify: %w", err))
	}
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
	tg, err := telegram.New(telegram.Options{Token: string(token), APIURL: apiURL})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	var opts []telegram.SendOpt
	if n.Silent {
		opts = append(opts, telegram.Silent())
	}
	err = control.Delivery{
		Owner: owner, Via: "(no daemon)",
		Record: func(r audit.Record) error { _, err := al.Append(r); return err },
		Text: func(ctx context.Context, html string) error {
			_, err := tg.SendText(ctx, owner, html, opts...)
			return err
		},
		Document: func(ctx context.Context, name string, open func() (io.ReadCloser, error), caption string) error {
			return tg.SendDocument(ctx, owner, name, open, caption, opts...)
		},
	}.Deliver(ctx, n, func() (io.ReaderAt, error) {
		if ra, ok := body.(io.ReaderAt); ok {
			return ra, nil
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, err
		}
		return strings.NewReader(string(b)), nil
	})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}
