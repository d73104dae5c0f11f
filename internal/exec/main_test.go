package exec

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// The test binary doubles as a child program: with RELAY_EXEC_HELPER set
// (through Spec.Env, the only environment a child gets) it does one thing
// and exits, so the tests observe the child from the inside.
func TestMain(m *testing.M) {
	switch os.Getenv("RELAY_EXEC_HELPER") {
	case "":
		os.Exit(m.Run())
	case "pgrp":
		fmt.Println(syscall.Getpgrp() == os.Getpid())
	case "rss":
		rssChild()
	}
	os.Exit(0)
}
