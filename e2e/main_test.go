// Package e2e drives the real relay binary against the project's own fake
// Telegram Bot API on 127.0.0.1, playing the owner (and strangers) from the
// chat side. Nothing here touches the internet.
package e2e

import (
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"
)

// relayBin is the relay binary built once for the whole package.
var relayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relay-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The command user runs the binary as the sandbox's trampoline when
	// the tests run as root.
	os.Chmod(dir, 0o755)
	relayBin = filepath.Join(dir, "relay")
	build := osexec.Command("go", "build", "-o", relayBin, "../cmd/relay")
	// Built as released: static, which starts each sandbox trampoline faster.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building relay:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
