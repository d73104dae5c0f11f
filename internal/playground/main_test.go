package playground

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/relaychat/relay/internal/sandbox"
)

// relocatedEnv names the directory of the test binary's copy, and the
// process that made it: only that one removes it (fuzz workers, started
// from the copy, must not).
const relocatedEnv = "RELAY_PLAYGROUND_TEST_COPY"

// TestMain makes the test binary a relay as far as the sandbox is
// concerned: it is the trampoline its commands re-execute. As root,
// commands run as the test's command user, who must be able to execute
// the binary, and go test's build directory is private to root: the
// tests then run from a copy in a directory that user can traverse.
func TestMain(m *testing.M) {
	if sandbox.IsTrampoline(os.Args) {
		sandbox.Trampoline(os.Args)
	}
	if os.Geteuid() == 0 && os.Getenv(relocatedEnv) == "" {
		if err := relocate(); err != nil {
			fmt.Fprintln(os.Stderr, "playground tests: run from a copy the command user can execute:", err)
			os.Exit(2)
		}
	}
	code := m.Run()
	if d, pid, ok := strings.Cut(os.Getenv(relocatedEnv), ":"); ok && pid == strconv.Itoa(os.Getpid()) {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// relocate re-executes the test binary from a copy in a 0755 directory;
// it returns only on failure.
func relocate() error {
	base := os.Getenv("RELAY_TEST_BASE")
	if base == "" {
		base = "/srv"
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(base, "relay-playground-test-")
	if err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	copyPath := filepath.Join(dir, filepath.Base(self))
	dst, err := os.OpenFile(copyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	os.Setenv(relocatedEnv, dir+":"+strconv.Itoa(os.Getpid()))
	return syscall.Exec(copyPath, os.Args, os.Environ())
}

// testCommandUser is who commands run as when the tests run as root:
// ids no account on a test machine uses (as in the sandbox's tests).
const testCommandUser = "64123:64123"

// commandUserLine is the config line naming the command user, as root.
func commandUserLine() string {
	if os.Geteuid() != 0 {
		return ""
	}
	return fmt.Sprintf("command_user: %q\n", testCommandUser)
}
