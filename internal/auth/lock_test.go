package auth

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestStateLockInProcess: one Authenticator per state file, enrolment
// refused while one lives, and everything free again after Close.
func TestStateLockInProcess(t *testing.T) {
	a, _, c := newAuth(t, nil)
	if _, err := New(c); !errors.Is(err, ErrStateInUse) {
		t.Fatalf("second relay on one state: got %v, want ErrStateInUse", err)
	}
	if err := CheckStateFree(c.StatePath); !errors.Is(err, ErrStateInUse) || !strings.Contains(err.Error(), "systemctl stop relay") {
		t.Fatalf("CheckStateFree while running: got %v, want ErrStateInUse with a hint", err)
	}
	a.Close()
	if err := CheckStateFree(c.StatePath); err != nil {
		t.Fatalf("CheckStateFree after Close: %v", err)
	}
	b, err := New(c)
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	b.Close()
	fi, err := os.Lstat(c.StatePath + ".lock")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: got %v, %v, want mode 0600", fi, err)
	}
}

// TestStateLockAcrossProcesses runs a real second process that holds the
// state, as a running relay does, and checks that enrolment here is
// refused with the holder's pid and stores nothing, then succeeds once
// that process has exited.
func TestStateLockAcrossProcesses(t *testing.T) {
	if os.Getenv("RELAY_AUTH_LOCK_HOLDER") != "" {
		holdStateLock()
		return
	}
	clk := &clock{t: t0}
	c := testConfig(t, clk)
	cmd := exec.Command(os.Args[0], "-test.run=^TestStateLockAcrossProcesses$")
	cmd.Env = append(os.Environ(), "RELAY_AUTH_LOCK_HOLDER="+c.StatePath)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "holding" {
		t.Fatalf("holder: got %q, %v", line, err)
	}

	e := confirmed(t, t0)
	store := &memStore{}
	_, err = e.Save(store, c.StatePath, 2)
	if !errors.Is(err, ErrStateInUse) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("save while another process holds the state: got %v, want ErrStateInUse naming pid %d", err, cmd.Process.Pid)
	}
	if len(store.m) != 0 {
		t.Fatal("a refused enrolment stored the secret")
	}
	if _, err := os.Stat(c.StatePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused enrolment wrote the state")
	}

	stdin.Close() // the holder exits, and the kernel drops its lock
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder: %v", err)
	}
	if _, err := e.Save(store, c.StatePath, 2); err != nil {
		t.Fatalf("save after the holder exited: %v", err)
	}
}

// holdStateLock is the child's side: start an Authenticator on the given
// state, say so, and keep it until stdin closes.
func holdStateLock() {
	a, err := New(configAt(os.Getenv("RELAY_AUTH_LOCK_HOLDER"), &clock{t: t0}))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("holding")
	bufio.NewReader(os.Stdin).ReadString('\n')
	a.Close()
	os.Exit(0)
}
