package control

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	helperArg      = "__control-test-send"
	helperToArg    = "__control-test-send-to"
	helperCheckArg = "__control-test-check-group"
)

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == helperToArg {
		// A local service sending through the group socket.
		err := SendTo(context.Background(), os.Args[2], Notification{Text: "door open"}, nil)
		if err != nil {
			fmt.Println("refused:", err)
			os.Exit(1)
		}
		fmt.Println("sent")
		os.Exit(0)
	}
	if len(os.Args) == 5 && os.Args[1] == helperCheckArg {
		// A relay process that has the group itself.
		gid, _ := strconv.Atoi(os.Args[3])
		fmt.Println(CheckGroup(Group{Name: os.Args[2], GID: gid, Dir: os.Args[4]}))
		os.Exit(0)
	}
	if len(os.Args) == 3 && os.Args[1] == helperArg {
		// A client process: what a command run by the relay would be.
		err := Send(context.Background(), os.Args[2], Notification{Text: "hello from pid " + fmt.Sprint(os.Getpid())}, nil)
		if err != nil {
			fmt.Println("refused:", err)
			os.Exit(1)
		}
		fmt.Println("sent")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestPeerInsideAJobRefused: a client with the relay's own uid is refused
// when it lives in a pid namespace below the relay's, as every sandboxed
// command and anything it starts does; the same client outside is served,
// and its uid, pid and program reach the handler.
func TestPeerInsideAJobRefused(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []Notification
	go Serve(ctx, dir, 1<<20, func(_ context.Context, n Notification) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, n)
		return nil
	})
	waitSocket(t, dir)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(sys *syscall.SysProcAttr) (string, int, error) {
		cmd := exec.Command(self, helperArg, dir)
		cmd.SysProcAttr = sys
		out, err := cmd.CombinedOutput()
		pid := 0
		if cmd.Process != nil {
			pid = cmd.Process.Pid
		}
		return string(out), pid, err
	}

	out, pid, err := run(nil)
	if err != nil || strings.TrimSpace(out) != "sent" {
		t.Fatalf("a client in the relay's namespace: got %q (%v), want sent", out, err)
	}
	mu.Lock()
	if len(got) != 1 || got[0].Peer.PID != pid || got[0].Peer.UID != os.Getuid() || got[0].Peer.Program == "" {
		t.Errorf("got %+v, want one notification from pid %d, uid %d, with its program", got, pid, os.Getuid())
	}
	mu.Unlock()

	sys := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if os.Geteuid() != 0 {
		sys.Cloneflags |= syscall.CLONE_NEWUSER
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}}
	}
	out, _, err = run(sys)
	if err == nil || !strings.Contains(out, "pid namespace below the relay's") {
		t.Errorf("a client in a job's pid namespace: got %q (%v), want refused", out, err)
	}
	mu.Lock()
	if len(got) != 1 {
		t.Errorf("the handler got %d notifications, want only the first", len(got))
	}
	mu.Unlock()
}

func TestTextTooLongRefused(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	called := false
	go Serve(ctx, dir, 10, func(context.Context, Notification) error { called = true; return nil })
	waitSocket(t, dir)
	err := Send(ctx, dir, Notification{Text: strings.Repeat("x", MaxText+1)}, nil)
	if err == nil || !strings.Contains(err.Error(), "too long") || called {
		t.Errorf("got %v (handler called %v), want a too-long refusal", err, called)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newLimiter(func() time.Time { return now })
	for i := range rateBurst {
		if !l.allow(1000) {
			t.Fatalf("notification %d of the burst refused", i+1)
		}
	}
	if l.allow(1000) {
		t.Fatal("a notification beyond the burst was allowed")
	}
	if !l.allow(1001) {
		t.Error("another uid was limited by the first one's burst")
	}
	now = now.Add(rateInterval)
	if !l.allow(1000) || l.allow(1000) {
		t.Errorf("after one interval: want exactly one more notification")
	}
}

// TestCheckpointLookalikeRefused: no notification may carry what looks like
// an audit checkpoint, however it is dressed.
func TestCheckpointLookalikeRefused(t *testing.T) {
	for _, text := range []string{"audit checkpoint seq=12 mac=0123456789abcdef", "fine\naudit checkpoint seq=1 mac=ab"} {
		if err := (Notification{Text: text}).Check(); err == nil {
			t.Errorf("Check(%q): got nil, want a refusal", text)
		}
	}
	if err := (Notification{Text: "backup done"}).Check(); err != nil {
		t.Errorf("an ordinary text refused: %v", err)
	}
}
