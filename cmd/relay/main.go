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
	"github.com/relaychat/relay/internal/sandbox"
)

func main() {
	// Before anything else: a sandboxed command re-executes relay as its
	// trampoline, which must never reach the CLI.
	if sandbox.IsTrampoline(os.Args) {
		sandbox.Trampoline(os.Args)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful shutdown, restore the
		// default action, so that a second signal forces exit at once.
		<-ctx.Done()
		stop()
	}()
	code := cli.Main(ctx, os.Args[1:], cli.StdEnv())
	stop()
	os.Exit(code)
}
