package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/cli"
	"github.com/relaychat/relay/internal/fakebotapi"
	"github.com/relaychat/relay/internal/telegram"
)

// hang guards against a test that would block forever; it never decides
// a result.
const hang = 30 * time.Second

// screen is the tool's stdout, with a way to wait for a text to appear.
type screen struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newScreen() *screen { return &screen{changed: make(chan struct{})} }

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return n, err
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output holds want, and returns the output.
func (s *screen) waitFor(t *testing.T, want string) string {
	t.Helper()
	deadline := time.After(hang)
	for {
		s.mu.Lock()
		out, ch := s.b.String(), s.changed
		s.mu.Unlock()
		if strings.Contains(out, want) {
			return out
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("output never showed %q; it is:\n%s", want, out)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tool runs the command in-process with a pipe for stdin.
type tool struct {
	in   *io.PipeWriter
	out  *screen
	errs *bytes.Buffer
	done chan int
	url  string
}

func startTool(t *testing.T, args ...string) *tool {
	t.Helper()
	addr := freeAddr(t)
	r, w := io.Pipe()
	tl := &tool{in: w, out: newScreen(), errs: &bytes.Buffer{}, done: make(chan int, 1), url: "http://" + addr}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { tl.done <- run(ctx, append([]string{"-listen", addr}, args...), r, tl.out, tl.errs) }()
	t.Cleanup(func() {
		cancel()
		w.Close()
		<-tl.done
	})
	tl.out.waitFor(t, "Type a message")
	return tl
}

func (tl *tool) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(tl.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// botClient is relay's own transport, pointed at the tool.
func botClient(t *testing.T, url string) *telegram.Client {
	t.Helper()
	c, err := telegram.New(telegram.Options{Token: DefaultToken, APIURL: url, PollTimeout: time.Second})
	if err != nil {
		t.Fatalf("relay's transport refuses the default token or url: %v", err)
	}
	return c
}

// nextUpdate polls until one update arrives, and returns it once Poll has
// returned (a client polls one at a time).
func nextUpdate(t *testing.T, c *telegram.Client) telegram.Update {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	var got []telegram.Update
	err := c.Poll(ctx, func(_ context.Context, u telegram.Update) {
		got = append(got, u)
		cancel()
	})
	if err != nil || len(got) == 0 {
		t.Fatalf("no update arrived (Poll: %v)", err)
	}
	return got[0]
}

// TestSession plays an owner at the terminal against relay's transport
// acting as the bot: every kind of change is shown, and buttons and the
// stop button can be pressed from stdin.
func TestSession(t *testing.T) {
	tl := startTool(t)
	bot := botClient(t, tl.url)
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()

	tl.typeLine(t, "/login 123456")
	if u := nextUpdate(t, bot); u.Kind != telegram.KindMessage || u.Text != "/login 123456" || u.UserID != defaultOwner || u.ChatType != "private" {
		t.Fatalf("got %+v, want the owner's /login", u)
	}
	tl.typeLine(t, "::not a command")
	if u := nextUpdate(t, bot); u.Text != ":not a command" {
		t.Errorf("got %q, want the escaped line sent as text", u.Text)
	}

	id, err := bot.SendText(ctx, defaultOwner, "<b>Run /reboot?</b>", telegram.Buttons([]telegram.Button{
		{Text: "Run", Data: "r:1", Style: telegram.StyleDanger}, {Text: "Cancel", Data: "x:1"}}))
	if err != nil {
		t.Fatal(err)
	}
	tl.out.waitFor(t, "#"+strconv.Itoa(id)+" bot:\n  Run /reboot?\n  [1] Run (danger)  [2] Cancel\n")
	tl.typeLine(t, ":press 1")
	if u := nextUpdate(t, bot); u.Kind != telegram.KindCallbackQuery || u.CallbackData != "r:1" || u.MessageID != id {
		t.Fatalf("got %+v, want the press of Run", u)
	}
	tl.out.waitFor(t, "> pressed [1] Run on message #"+strconv.Itoa(id))
	if err := bot.MarkPressed(ctx, defaultOwner, id, "✓ Run", ""); err != nil {
		t.Fatal(err)
	}
	tl.out.waitFor(t, "#"+strconv.Itoa(id)+" buttons now:\n  [-] ✓ Run (disabled)\n")
	tl.typeLine(t, ":press 2")
	tl.out.waitFor(t, "! button 2 (Cancel) is no longer on message #"+strconv.Itoa(id))

	if err := bot.EditText(ctx, defaultOwner, id, "<b>Run /reboot?</b> done"); err != nil {
		t.Fatal(err)
	}
	tl.out.waitFor(t, "#"+strconv.Itoa(id)+" edited (edit 1 of message #"+strconv.Itoa(id)+"):\n  Run /reboot? done\n")

	if err := bot.SendDraft(ctx, telegram.Draft{ChatID: defaultOwner, ID: 9, HTML: "/backup <i>12 s</i>\n<pre>copying</pre>", CanStop: true}); err != nil {
		t.Fatal(err)
	}
	tl.out.waitFor(t, "draft 9, update 1, gone 30 s after the last (:stop 9 to stop it):\n  /backup 12 s\n  copying\n")
	tl.typeLine(t, ":stop")
	if u := nextUpdate(t, bot); u.Kind != telegram.KindGenerationStopped || u.DraftID != 9 || u.UserID != defaultOwner {
		t.Fatalf("got %+v, want the owner stopping draft 9", u)
	}
	tl.out.waitFor(t, "draft 9 stopped by the owner")

	doc := "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\n"
	if err := bot.SendDocument(ctx, defaultOwner, "disk.txt", func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(doc)), nil
	}, "<b>/disk</b> exit 0"); err != nil {
		t.Fatal(err)
	}
	tl.out.waitFor(t, "document disk.txt, 49 bytes, application/octet-stream\n  /disk exit 0\n  | line 1\n  | line 2\n  | line 3\n  | line 4\n  | line 5\n  | … 2 more lines\n")

	if err := bot.DeleteMessage(ctx, defaultOwner, id); err != nil {
		t.Fatal(err)
	}
	tl.out.waitFor(t, "#"+strconv.Itoa(id)+" deleted\n")

	if _, err := bot.SetOwnerCommands(ctx, defaultOwner, []telegram.Command{{Name: "disk", Description: "disk usage"}, {Name: "login", Description: "log in"}}); err != nil {
		t.Fatal(err)
	}
	tl.out.waitFor(t, "menu cleared for everyone (default scope)\nmenu set for chat 4242 (2): /disk /login\n")
	tl.typeLine(t, ":menu")
	tl.out.waitFor(t, "menu the owner sees (2):\n  /disk  disk usage\n  /login  log in\n")

	tl.typeLine(t, ":press 99")
	tl.out.waitFor(t, "! :press takes a button number, 1 to 2")
	tl.typeLine(t, ":frobnicate")
	tl.out.waitFor(t, "! unknown command :frobnicate")
	tl.typeLine(t, ":quit")
	select {
	case code := <-tl.done:
		tl.done <- code // for the cleanup
		if code != 0 {
			t.Errorf("exit %d after :quit, want 0", code)
		}
	case <-time.After(hang):
		t.Fatal(":quit did not stop the tool")
	}
}

// TestWithout: the tool can play a server that predates drafts.
func TestWithout(t *testing.T) {
	tl := startTool(t, "-without", "drafts,disabled")
	tl.out.waitFor(t, "answering as a server without: drafts, disabled")
	bot := botClient(t, tl.url)
	err := bot.SendDraft(context.Background(), telegram.Draft{ChatID: defaultOwner, ID: 1, HTML: "x"})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("got %v, want the 404 of a server without drafts", err)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{[]string{"-h"}, 0, "usage: fakebotapi", ""},
		{[]string{"-listen", "0.0.0.0:8081"}, 1, "", "not a loopback address"},
		{[]string{"-listen", "192.168.1.5:8081"}, 1, "", "not a loopback address"},
		{[]string{"-without", "drafts,teleport"}, 2, "", `unknown feature "teleport"`},
		{[]string{"-owner", "-5"}, 2, "", "not a Telegram user ID"},
		{[]string{"-nope"}, 2, "", "see 'fakebotapi -h'"},
		{[]string{"extra"}, 2, "", `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errs bytes.Buffer
			code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errs)
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errs.String(), tt.err) {
				t.Errorf("got exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errs.String(), tt.code, tt.out, tt.err)
			}
		})
	}
}

// TestDefaultTokenAcceptedByRelay stores the fake's default token with
// relay's own `relay token set`, the step the usage text tells a
// newcomer to take. The old default, 123456789:FAKE, is refused by the
// same check: the test can fail.
func TestDefaultTokenAcceptedByRelay(t *testing.T) {
	for _, tt := range []struct {
		token string
		code  int
	}{
		{DefaultToken, 0},
		{"123456789:FAKE", cli.ExitUsage},
	} {
		t.Run(tt.token, func(t *testing.T) {
			dir := t.TempDir()
			var out, errs bytes.Buffer
			env := &cli.Env{
				Stdin:  strings.NewReader(tt.token),
				Stdout: &out,
				Stderr: &errs,
				Getenv: func(k string) string { return map[string]string{"XDG_STATE_HOME": dir}[k] },
			}
			code := cli.Main(context.Background(), []string{"token", "set", "--file"}, env)
			if code != tt.code {
				t.Fatalf("relay token set: exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errs.String())
			}
			if code != 0 {
				return
			}
			path, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "stored the bot token in ")
			path, _, _ = strings.Cut(path, " (mode 0600)")
			got, err := os.ReadFile(path)
			if !ok || !strings.HasPrefix(path, dir) || err != nil || strings.TrimSpace(string(got)) != tt.token {
				t.Errorf("stored %q %v, want the default token", got, err)
			}
		})
	}
	if _, err := telegram.New(telegram.Options{Token: DefaultToken}); err != nil {
		t.Errorf("relay's transport refuses the default token: %v", err)
	}
}

func TestBlocks(t *testing.T) {
	pre := func(off, n int) []fakebotapi.Entity {
		return []fakebotapi.Entity{{Type: "pre", Offset: off, Length: n}}
	}
	tests := []struct {
		text string
		ents []fakebotapi.Entity
		want string
	}{
		{"Run?\n/bin/echo hiworkdir /", pre(5, 12), "Run?\n/bin/echo hi\nworkdir /"},
		{"a😀bcd", pre(3, 1), "a😀\nb\ncd"}, // offsets count UTF-16 units
		{"code\nafter", pre(0, 4), "code\nafter"},
		{"plain", nil, "plain"},
	}
	for _, tt := range tests {
		if got := blocks(tt.text, tt.ents); got != tt.want {
			t.Errorf("blocks(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
