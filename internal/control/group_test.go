package control

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Ids no account on a test machine uses.
const (
	testGID    = 64210 // notify.group
	memberUID  = 64201 // in the group as a supplementary group
	primaryUID = 64203 // the group is its primary group
	otherUID   = 64202 // in no group of interest
)

// groupFixture makes, as root, a 0755 base outside the test's 0700 temp
// directories, a copy of the test binary there that other uids may run,
// and the notify directory: owned by the relay (this process), group
// testGID, mode 2750.
func groupFixture(t *testing.T) (g Group, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run peers as other users")
	}
	base, err := os.MkdirTemp("", "relay-control-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755))
	self, err := os.Executable()
	must(t, err)
	bin = filepath.Join(base, "control.test")
	data, err := os.ReadFile(self)
	must(t, err)
	must(t, os.WriteFile(bin, data, 0o755))
	dir := filepath.Join(base, "notify")
	must(t, os.Mkdir(dir, 0o750))
	must(t, os.Chown(dir, os.Geteuid(), testGID))
	must(t, os.Chmod(dir, 0o750|os.ModeSetgid))
	return Group{Name: "homeassistant", GID: testGID, Dir: dir}, bin
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func serveGroup(t *testing.T, g Group) (*sync.Mutex, *[]Notification) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var mu sync.Mutex
	var got []Notification
	errc := make(chan error, 1)
	go func() {
		errc <- ServeGroup(ctx, g, 1<<20, func(_ context.Context, n Notification) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, n)
			return nil
		})
	}()
	for {
		// Listening, not merely bound: a connection is answered.
		if c, err := net.Dial("unix", g.GroupPath()); err == nil {
			c.Close()
			return &mu, &got
		}
		select {
		case err := <-errc:
			t.Fatalf("ServeGroup: %v", err)
		default:
			syscall.Nanosleep(&syscall.Timespec{Nsec: 5e6}, nil) // waiting for the socket, not for a result
		}
	}
}

// TestGroupPeers runs real processes as other users against the group
// socket: a member (by a supplementary group, or as its primary group)
// is served and its notification carries its uid, pid and the group as
// sender; a user outside the group cannot reach the socket, and root,
// who can reach it, is refused by the relay's own check because root is
// not in the group.
func TestGroupPeers(t *testing.T) {
	g, bin := groupFixture(t)
	mu, got := serveGroup(t, g)
	fi, err := os.Stat(g.GroupPath())
	must(t, err)
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || int(st.Gid) != testGID {
		t.Errorf("got socket mode %v group %d, want 0660 and the group (the directory is set-group-ID)", fi.Mode().Perm(), st.Gid)
	}
	run := func(cred *syscall.Credential, clone uintptr) (string, int, error) {
		cmd := exec.Command(bin, helperToArg, g.GroupPath())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Cloneflags: clone}
		out, err := cmd.CombinedOutput()
		pid := 0
		if cmd.Process != nil {
			pid = cmd.Process.Pid
		}
		return strings.TrimSpace(string(out)), pid, err
	}
	for _, c := range []struct {
		name    string
		cred    *syscall.Credential
		clone   uintptr
		want    string
		served  bool
		peerUID int
	}{
		{"a member by a supplementary group", &syscall.Credential{Uid: memberUID, Gid: memberUID, Groups: []uint32{testGID}}, 0, "sent", true, memberUID},
		{"a member by its primary group", &syscall.Credential{Uid: primaryUID, Gid: testGID, Groups: []uint32{}}, 0, "sent", true, primaryUID},
		{"a member in a pid namespace of its own (a container)", &syscall.Credential{Uid: memberUID, Gid: memberUID, Groups: []uint32{testGID}}, syscall.CLONE_NEWPID, "sent", true, memberUID},
		{"a user outside the group", &syscall.Credential{Uid: otherUID, Gid: otherUID, Groups: []uint32{}}, 0,
			"refused: the relay's socket " + g.GroupPath() + " does not accept uid 64202", false, 0},
		{"root outside the group", &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}, 0,
			"refused: the relay refused: permission denied: uid 0 is not in group homeassistant (notify.group)", false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			before := len(*got)
			mu.Unlock()
			out, pid, err := run(c.cred, c.clone)
			if out != c.want || (err == nil) != c.served {
				t.Fatalf("got %q (%v), want %q", out, err, c.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if !c.served {
				if len(*got) != before {
					t.Errorf("the handler got %d notifications, want none", len(*got)-before)
				}
				return
			}
			if len(*got) != before+1 {
				t.Fatalf("the handler got %d notifications, want 1", len(*got)-before)
			}
			n := (*got)[before]
			if n.Text != "door open" || n.Peer.UID != c.peerUID || n.Peer.Group != "homeassistant" || n.Peer.Sender() != "homeassistant" {
				t.Errorf("got %+v, want the text from uid %d via group homeassistant", n, c.peerUID)
			}
			if c.clone == 0 && (n.Peer.PID != pid || n.Peer.Program != "control.test") {
				t.Errorf("got pid %d program %q, want pid %d program control.test", n.Peer.PID, n.Peer.Program, pid)
			}
			if !strings.Contains(n.Peer.String(), "via group homeassistant") {
				t.Errorf("got %q, want the audit detail to name the group", n.Peer.String())
			}
		})
	}
}

// TestCheckGroup: the group socket is served only from a directory that
// lets in the relay and the group and nobody else, and never when the
// relay itself has the group.
func TestCheckGroup(t *testing.T) {
	g, _ := groupFixture(t)
	if err := CheckGroup(g); err != nil {
		t.Fatalf("the fixture: %v", err)
	}
	for _, c := range []struct {
		name  string
		setup func(g *Group)
		want  string
	}{
		{"missing", func(g *Group) { g.Dir += "-missing" }, "no such file or directory (create it: install -d -o 0 -g 64210 -m 2750 "},
		{"open to others", func(g *Group) { must(t, os.Chmod(g.Dir, 0o755)) }, "others may enter it"},
		{"writable by the group", func(g *Group) { must(t, os.Chmod(g.Dir, 0o770)) }, "the group may write it"},
		{"closed to the group", func(g *Group) { must(t, os.Chmod(g.Dir, 0o700)) }, "the group cannot enter it"},
		{"another group", func(g *Group) { must(t, os.Chown(g.Dir, 0, testGID+1)) }, "has group 64211, not notify.group homeassistant (64210)"},
		{"another owner", func(g *Group) { must(t, os.Chown(g.Dir, otherUID, testGID)) }, "is owned by uid 64202, not the relay's uid 0"},
		{"a symlink", func(g *Group) {
			link := g.Dir + "-link"
			must(t, os.Symlink(g.Dir, link))
			g.Dir = link
		}, "is not a directory"},
		{"the root group", func(g *Group) { g.GID = 0 }, "is not a group of its own"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, _ := groupFixture(t)
			c.setup(&g)
			err := CheckGroup(g)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
			if err == nil {
				return
			}
			// ServeGroup refuses the same way, without listening.
			if err := ServeGroup(context.Background(), g, 10, nil); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ServeGroup: got %v, want %q", err, c.want)
			}
		})
	}
}

// TestCheckGroupRefusesTheRelaysOwnGroup: a relay that has the group
// itself (its commands would carry it) does not serve it. The check runs
// in a real process that has the group as a supplementary group.
func TestCheckGroupRefusesTheRelaysOwnGroup(t *testing.T) {
	g, bin := groupFixture(t)
	cmd := exec.Command(bin, helperCheckArg, g.Name, strconv.Itoa(g.GID), g.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{testGID}}}
	out, err := cmd.CombinedOutput()
	if want := "the relay itself is in this group"; err != nil || !strings.Contains(string(out), want) {
		t.Errorf("got %q (%v), want %q", out, err, want)
	}
}

// TestSendToErrors: what the client tells apart, so relay notify can say
// what is wrong instead of blaming the bot token.
func TestSendToErrors(t *testing.T) {
	dir := t.TempDir()
	err := SendTo(context.Background(), filepath.Join(dir, "none.sock"), Notification{Text: "x"}, nil)
	if !errors.Is(err, ErrNoDaemon) {
		t.Errorf("no socket: got %v, want ErrNoDaemon", err)
	}
	if os.Geteuid() == 0 {
		return // root passes every permission check
	}
	closed := filepath.Join(dir, "closed")
	must(t, os.Mkdir(closed, 0o700))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, closed, 10, func(context.Context, Notification) error { return nil })
	waitSocket(t, closed)
	must(t, os.Chmod(closed, 0))
	defer os.Chmod(closed, 0o700)
	var ae *AccessError
	if err := Send(ctx, closed, Notification{Text: "x"}, io.Reader(nil)); !errors.As(err, &ae) || ae.UID != os.Getuid() {
		t.Errorf("a closed directory: got %v, want an *AccessError naming uid %d", err, os.Getuid())
	}
}
