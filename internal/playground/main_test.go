package playground

import (
	"fmt"
	"os"
	"testing"

	"github.com/relaychat/relay/internal/sandbox"
)

// TestMain makes the test binary a relay as far as the sandbox is
// concerned: it is the trampoline its commands re-execute (as
// /proc/self/exe, which the command user can start even from go test's
// private build directory).
func TestMain(m *testing.M) {
	if sandbox.IsTrampoline(os.Args) {
		sandbox.Trampoline(os.Args)
	}
	os.Exit(m.Run())
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
