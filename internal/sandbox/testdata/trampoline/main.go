// Command trampoline is the smallest binary that runs the sandbox
// trampoline, for BenchmarkStartExit: it shows the trampoline's own start-up
// cost apart from the test binary's (or the relay's) package initialisation.
package main

import (
	"os"

	"github.com/relaychat/relay/internal/sandbox"
)

func main() {
	if sandbox.IsTrampoline(os.Args) {
		sandbox.Trampoline(os.Args)
	}
	os.Exit(2)
}
