// Command fakebotapi runs the project's fake Telegram Bot API on loopback
// for trying relay by hand: each line typed on stdin is sent as the owner's
// message, and every message the bot sends is printed.
//
// It must never listen beyond 127.0.0.1; it is a test tool, not a server.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/relaychat/relay/internal/fakebotapi"
)

const usage = `usage: fakebotapi [-token TOKEN] [-owner ID]

Runs a fake Telegram Bot API on 127.0.0.1 and prints its URL; point
relay's telegram.api_url at it. Lines typed on stdin are sent as the
owner's messages; the bot's messages are printed as they arrive.

  -token TOKEN   the bot token the fake accepts (default 123456789:FAKE)
  -owner ID      the owner's Telegram user ID (default 4242)
`

func main() {
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	token := flag.String("token", "123456789:FAKE", "")
	ownerID := flag.Int64("owner", 4242, "")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *token, *ownerID); err != nil {
		fmt.Fprintln(os.Stderr, "fakebotapi:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, token string, ownerID int64) error {
	s := fakebotapi.New(token)
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Close()
	fmt.Println("fakebotapi: listening at", s.URL())
	owner := fakebotapi.User{ID: ownerID, FirstName: "Owner"}

	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			s.SendMessage(owner, fakebotapi.Private(owner), sc.Text())
		}
	}()

	seen := map[string]bool{}
	for {
		m, err := s.WaitMessage(ctx, func(m fakebotapi.Message) bool { return !seen[key(m)] })
		if err != nil {
			return nil // interrupted
		}
		seen[key(m)] = true
		fmt.Printf("bot → %d #%d:\n%s\n", m.ChatID, m.ID, m.Text)
	}
}

func key(m fakebotapi.Message) string {
	return strconv.FormatInt(m.ChatID, 10) + "/" + strconv.Itoa(m.ID)
}
