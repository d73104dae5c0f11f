// Command fakebotapi runs the project's fake Telegram Bot API on a
// loopback address, for trying relay offline: no phone, no real bot, and
// nothing ever reaches Telegram. Each line typed on stdin is sent as the
// owner's message; everything the bot does is shown as text as the
// owner's phone would show it: new messages, edits (as edits of message
// N), drafts, documents, numbered buttons that :press presses, deletions
// and the command menu.
//
// It must never listen beyond loopback; it is a test tool, not a server.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// DefaultToken has the shape relay's token check demands (digits, a
// colon, 30 to 64 of [A-Za-z0-9_-]) and says what it is: a real token is
// never "FAKE".
const DefaultToken = "1234567890:FAKE_token_for_the_offline_fakebotapi_only"

// Defaults for the flags.
const (
	defaultListen = "127.0.0.1:8081"
	defaultOwner  = 4242
)

const usage = `usage: fakebotapi [-listen ADDR] [-token TOKEN] [-owner ID] [-without FEATURES]

Runs a fake Telegram Bot API on a loopback address for trying relay
offline: no phone, no real bot, nothing reaches Telegram. Point relay at
it and store its token:

    # relay.yaml
    telegram:
      api_url: http://127.0.0.1:8081
    auth:
      owner_id: 4242

    printf %s '` + DefaultToken + `' | relay token set --file

Lines typed on stdin are sent as the owner's messages (start with /login).
What the bot does is printed as the phone would show it: messages,
edits, drafts, documents (name, size, first lines), buttons (numbered),
deletions and the command menu. Lines starting with ':' are commands:

    :press N   press button N, as numbered in the output
    :stop [D]  press the stop button of draft D (default: the latest)
    :menu      show the command menu the owner sees
    :help      show these commands
    :quit      stop (so does Ctrl-C; at the end of input it keeps serving)
    ::text     send ":text" as a message

Flags:
  -listen ADDR      loopback address to listen on (default ` + defaultListen + `);
                    any other address is refused
  -token TOKEN      the bot token the fake accepts (default ` + DefaultToken + `)
  -owner ID         the owner's Telegram user ID (default 4242)
  -without LIST     answer as a server without these features, comma
                    separated: drafts, stop, style, disabled (relay must
                    fall back to edited messages and removed keyboards)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type config struct {
	listen  string
	token   string
	owner   int64
	without []fakebotapi.Feature
}

func parseArgs(args []string, stdout, stderr io.Writer) (config, int, bool) {
	fs := flag.NewFlagSet("fakebotapi", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := config{}
	fs.StringVar(&c.listen, "listen", defaultListen, "")
	fs.StringVar(&c.token, "token", DefaultToken, "")
	fs.Int64Var(&c.owner, "owner", defaultOwner, "")
	without := fs.String("without", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, usage)
			return c, 0, false
		}
		fmt.Fprintf(stderr, "fakebotapi: %v\nsee 'fakebotapi -h'\n", err)
		return c, 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fakebotapi: unexpected argument %q\nsee 'fakebotapi -h'\n", fs.Arg(0))
		return c, 2, false
	}
	if c.owner <= 0 {
		fmt.Fprintf(stderr, "fakebotapi: -owner %d is not a Telegram user ID (a positive number)\n", c.owner)
		return c, 2, false
	}
	if *without != "" {
		known := map[fakebotapi.Feature]bool{}
		for _, f := range fakebotapi.Features {
			known[f] = true
		}
		for _, name := range strings.Split(*without, ",") {
			f := fakebotapi.Feature(strings.TrimSpace(name))
			if !known[f] {
				fmt.Fprintf(stderr, "fakebotapi: -without: unknown feature %q (want drafts, stop, style or disabled)\n", name)
				return c, 2, false
			}
			c.without = append(c.without, f)
		}
	}
	return c, 0, true
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, code, ok := parseArgs(args, stdout, stderr)
	if !ok {
		return code
	}
	// Update IDs continue from the wall clock, so that a relay still
	// polling with the offset of an earlier run of the fake does not take
	// the new run's updates for old ones (Telegram's IDs only grow).
	s := fakebotapi.New(c.token, fakebotapi.Without(c.without...), fakebotapi.WithFirstUpdateID(time.Now().UnixMilli()))
	if err := s.StartOn(c.listen); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer s.Close()

	v := &viewer{s: s, out: &lockedWriter{w: stdout}, owner: fakebotapi.User{ID: c.owner, FirstName: "Owner"}}
	v.banner(c)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if !v.input(sc.Text()) {
				cancel()
				return
			}
		}
		// Without input (started in the background, stdin /dev/null) the
		// fake keeps serving until interrupted.
		v.out.printf("fakebotapi: no more input; serving until interrupted\n")
	}()
	var seq uint64
	for {
		evs, err := s.WaitEvents(ctx, seq)
		if err != nil {
			return 0 // interrupted, or :quit
		}
		for _, e := range evs {
			v.show(e)
			seq = e.Seq
		}
	}
}

// lockedWriter serialises the event loop's and the input loop's output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}

// viewer renders events and turns input lines into the owner's actions.
type viewer struct {
	s     *fakebotapi.Server
	out   *lockedWriter
	owner fakebotapi.User

	mu sync.Mutex
	// buttons are the numbered buttons shown so far, by number - 1.
	buttons []shownButton
	// lastStoppable is the latest draft shown with a stop button.
	lastStoppable int64
}

type shownButton struct {
	chatID int64
	msgID  int
	pos    int // from 1, row by row
	text   string
}

func (v *viewer) banner(c config) {
	url := v.s.URL()
	v.out.printf("fakebotapi: a fake Telegram Bot API at %s; nothing reaches Telegram\n", url)
	v.out.printf("  bot token  %s\n  owner id   %d\n", c.token, c.owner)
	if len(c.without) > 0 {
		names := make([]string, len(c.without))
		for i, f := range c.without {
			names[i] = string(f)
		}
		v.out.printf("  answering as a server without: %s\n", strings.Join(names, ", "))
	}
	v.out.printf("relay.yaml: telegram.api_url: %s and auth.owner_id: %d\n", url, c.owner)
	v.out.printf("token:      printf %%s '%s' | relay token set --file\n", c.token)
	v.out.printf("Type a message to send it as the owner; :help lists the commands.\n")
}

// input handles one line; it reports false for :quit.
func (v *viewer) input(line string) bool {
	if rest, ok := strings.CutPrefix(line, "::"); ok {
		v.s.SendMessage(v.owner, fakebotapi.Private(v.owner), ":"+rest)
		return true
	}
	cmd, ok := strings.CutPrefix(line, ":")
	if !ok {
		if strings.TrimSpace(line) != "" {
			v.s.SendMessage(v.owner, fakebotapi.Private(v.owner), line)
		}
		return true
	}
	name, arg, _ := strings.Cut(strings.TrimSpace(cmd), " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "press":
		v.press(arg)
	case "stop":
		v.stop(arg)
	case "menu":
		v.menu()
	case "help":
		v.out.printf("%s", commandHelp)
	case "quit", "q":
		return false
	default:
		v.out.printf("! unknown command :%s (:help lists them; ::%s sends it as a message)\n", name, name)
	}
	return true
}

const commandHelp = `:press N   press button N     :stop [D]  stop draft D (default: the latest)
:menu      the owner's menu    :quit      stop               ::text  send ":text"
`

func (v *viewer) press(arg string) {
	n, err := strconv.Atoi(arg)
	v.mu.Lock()
	if err != nil || n < 1 || n > len(v.buttons) {
		count := len(v.buttons)
		v.mu.Unlock()
		v.out.printf("! :press takes a button number, 1 to %d\n", count)
		return
	}
	b := v.buttons[n-1]
	v.mu.Unlock()
	// The number names what was shown; refuse if the message now shows
	// something else at that place.
	if cur, ok := v.buttonNow(b); !ok || cur != b.text {
		v.out.printf("! button %d (%s) is no longer on message #%d\n", n, b.text, b.msgID)
		return
	}
	if _, err := v.s.PressButtonAt(v.owner, b.chatID, b.msgID, b.pos); err != nil {
		v.out.printf("! %s\n", strings.TrimPrefix(err.Error(), "fakebotapi: "))
		return
	}
	v.out.printf("> pressed [%d] %s on message #%d\n", n, b.text, b.msgID)
}

// buttonNow is the text of the button now at b's place.
func (v *viewer) buttonNow(b shownButton) (string, bool) {
	for _, m := range v.s.Sent() {
		if m.ChatID != b.chatID || m.ID != b.msgID || m.Deleted {
			continue
		}
		i := 0
		for _, row := range m.Buttons {
			for _, btn := range row {
				if i++; i == b.pos {
					return btn.Text, true
				}
			}
		}
	}
	return "", false
}

func (v *viewer) stop(arg string) {
	v.mu.Lock()
	id := v.lastStoppable
	v.mu.Unlock()
	if arg != "" {
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			v.out.printf("! :stop takes a draft number\n")
			return
		}
		id = n
	}
	if id == 0 {
		v.out.printf("! no draft with a stop button has been shown\n")
		return
	}
	if _, err := v.s.StopDraft(v.owner.ID, id); err != nil {
		v.out.printf("! %s\n", strings.TrimPrefix(err.Error(), "fakebotapi: "))
	}
}

func (v *viewer) menu() {
	cmds := v.s.VisibleCommands(fakebotapi.Private(v.owner))
	if len(cmds) == 0 {
		v.out.printf("menu: none set for the owner\n")
		return
	}
	v.out.printf("menu the owner sees (%d):\n", len(cmds))
	for _, c := range cmds {
		v.out.printf("  /%s  %s\n", c.Command, c.Description)
	}
}

// show prints one event.
func (v *viewer) show(e fakebotapi.Event) {
	var b strings.Builder
	switch e.Kind {
	case fakebotapi.EventMessage:
		fmt.Fprintf(&b, "#%d bot%s:\n", e.Message.ID, flags(*e.Message))
		indent(&b, blocks(e.Message.Text, e.Message.Entities))
		v.keyboard(&b, e.Message.ChatID, e.Message.ID, e.Message.Buttons)
	case fakebotapi.EventEdit:
		fmt.Fprintf(&b, "#%d edited (edit %d of message #%d):\n", e.Message.ID, len(e.Message.Edits), e.Message.ID)
		indent(&b, blocks(e.Message.Text, e.Message.Entities))
		v.keyboard(&b, e.Message.ChatID, e.Message.ID, e.Message.Buttons)
	case fakebotapi.EventButtons:
		if len(e.Message.Buttons) == 0 {
			fmt.Fprintf(&b, "#%d buttons removed\n", e.Message.ID)
		} else {
			fmt.Fprintf(&b, "#%d buttons now:\n", e.Message.ID)
			v.keyboard(&b, e.Message.ChatID, e.Message.ID, e.Message.Buttons)
		}
	case fakebotapi.EventDelete:
		fmt.Fprintf(&b, "#%d deleted\n", e.Message.ID)
	case fakebotapi.EventDocument:
		v.document(&b, *e.Document)
	case fakebotapi.EventDraft:
		d := e.Draft
		stop := ""
		if d.CanStop {
			stop = fmt.Sprintf(" (:stop %d to stop it)", d.ID)
			v.mu.Lock()
			v.lastStoppable = d.ID
			v.mu.Unlock()
		}
		fmt.Fprintf(&b, "draft %d, update %d, gone 30 s after the last%s:\n", d.ID, d.Updates, stop)
		text := d.Text
		if text == "" {
			text = "Thinking…"
		}
		indent(&b, text)
	case fakebotapi.EventStop:
		fmt.Fprintf(&b, "draft %d stopped by the owner\n", e.Draft.ID)
	case fakebotapi.EventCommands:
		m := e.Menu
		if len(m.Commands) == 0 {
			fmt.Fprintf(&b, "menu cleared for %s\n", scopeName(m.Scope))
			break
		}
		fmt.Fprintf(&b, "menu set for %s (%d):", scopeName(m.Scope), len(m.Commands))
		for _, c := range m.Commands {
			fmt.Fprintf(&b, " /%s", c.Command)
		}
		b.WriteString("\n")
	case fakebotapi.EventAnswer:
		if e.Answer.Text != "" {
			fmt.Fprintf(&b, "button answer: %q\n", e.Answer.Text)
		}
	}
	if b.Len() > 0 {
		v.out.printf("%s", b.String())
	}
}

// flags notes what the phone shows about a message beyond its text.
func flags(m fakebotapi.Message) string {
	var f []string
	if m.Silent {
		f = append(f, "silent")
	}
	if m.Protected {
		f = append(f, "protected")
	}
	if m.LinkPreview {
		f = append(f, "with a link preview")
	}
	if len(f) == 0 {
		return ""
	}
	return " (" + strings.Join(f, ", ") + ")"
}

// blocks puts a code block (a pre entity) on lines of its own, as the
// phone shows it: the parsed text alone runs it into the next words.
func blocks(text string, ents []fakebotapi.Entity) string {
	breaks := map[int]bool{} // UTF-16 offsets that start a new line
	for _, e := range ents {
		if e.Type == "pre" || e.Type == "blockquote" || e.Type == "expandable_blockquote" {
			breaks[e.Offset], breaks[e.Offset+e.Length] = true, true
		}
	}
	if len(breaks) == 0 {
		return text
	}
	var b strings.Builder
	pos, last := 0, '\n'
	for _, r := range text {
		if breaks[pos] && last != '\n' && r != '\n' {
			b.WriteByte('\n')
		}
		b.WriteRune(r)
		pos += utf16.RuneLen(r)
		last = r
	}
	return b.String()
}

func indent(b *strings.Builder, text string) {
	for _, l := range strings.Split(text, "\n") {
		b.WriteString("  " + l + "\n")
	}
}

// keyboard prints rows of buttons, numbering those that can be pressed.
func (v *viewer) keyboard(b *strings.Builder, chatID int64, msgID int, rows [][]fakebotapi.Button) {
	pos := 0
	for _, row := range rows {
		b.WriteString("  ")
		for i, btn := range row {
			pos++
			if i > 0 {
				b.WriteString("  ")
			}
			label := btn.Text
			if btn.Style != "" {
				label += " (" + btn.Style + ")"
			}
			switch {
			case btn.Disabled:
				fmt.Fprintf(b, "[-] %s (disabled)", label)
			case btn.Data == "":
				fmt.Fprintf(b, "[link] %s", label)
			default:
				v.mu.Lock()
				v.buttons = append(v.buttons, shownButton{chatID: chatID, msgID: msgID, pos: pos, text: btn.Text})
				n := len(v.buttons)
				v.mu.Unlock()
				fmt.Fprintf(b, "[%d] %s", n, label)
			}
		}
		b.WriteString("\n")
	}
}

// previewLines is how many lines of a document are shown.
const previewLines = 5

func (v *viewer) document(b *strings.Builder, d fakebotapi.Document) {
	fmt.Fprintf(b, "#%d document %s, %d bytes, %s%s\n", d.MessageID, d.FileName, d.Size, d.MIMEType, protected(d.Protected))
	if d.Caption != "" {
		indent(b, d.Caption)
	}
	switch {
	case d.Data == nil:
		b.WriteString("  | (content not kept: larger than the fake's memory cap)\n")
	case !utf8.Valid(d.Data):
		b.WriteString("  | (binary)\n")
	default:
		lines := strings.Split(strings.TrimRight(string(d.Data), "\n"), "\n")
		for _, l := range lines[:min(len(lines), previewLines)] {
			b.WriteString("  | " + l + "\n")
		}
		if len(lines) > previewLines {
			fmt.Fprintf(b, "  | … %d more lines\n", len(lines)-previewLines)
		}
	}
	v.keyboard(b, d.ChatID, d.MessageID, d.Buttons)
}

func protected(p bool) string {
	if p {
		return " (protected)"
	}
	return ""
}

// scopeName says whom a command menu scope shows the menu to.
func scopeName(scope string) string {
	switch scope {
	case `{"type":"default"}`:
		return "everyone (default scope)"
	case `{"type":"all_private_chats"}`:
		return "all private chats"
	case `{"type":"all_group_chats"}`:
		return "all group chats"
	}
	if id, ok := strings.CutPrefix(scope, `{"chat_id":`); ok {
		if id, ok := strings.CutSuffix(id, `,"type":"chat"}`); ok {
			return "chat " + id
		}
	}
	return scope
}
