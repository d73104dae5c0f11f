// Command relay is a self-hosted ChatOps command relay: a Telegram bot that
// runs allowlisted, sandboxed commands for exactly one owner.
//
// This file stays thin: it wires signals and hands over to internal/cli,
// which maps every error to a documented exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/relaychat/relay/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.StdEnv())
	stop()
	os.Exit(code)
}
