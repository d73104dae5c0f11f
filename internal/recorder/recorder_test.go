package recorder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/control"
)

const holdArg = "__recorder-hold"

// TestMain lets the test binary play another process that holds the log.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == holdArg {
		l, err := audit.Open(os.Args[2], audit.Options{})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		fmt.Println("holding")
		var b [1]byte
		os.Stdin.Read(b[:]) // until the test closes our stdin
		l.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newLog(t *testing.T) (dir, state string, k0 []byte) {
	t.Helper()
	base := t.TempDir()
	dir, state = filepath.Join(base, "audit"), filepath.Join(base, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	k0, err := audit.Init(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, state, k0
}

func verify(t *testing.T, dir string, k0 []byte) audit.Summary {
	t.Helper()
	sum, err := audit.VerifyDir(dir, k0, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return sum
}

// TestConcurrentWritersShareOneChain: many recorders appending at once,
// each as the log's writer for one record, leave one unbroken chain.
func TestConcurrentWritersShareOneChain(t *testing.T) {
	dir, state, k0 := newLog(t)
	const writers, each = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &Recorder{Dir: dir, StateDir: state, Wait: time.Minute}
			for i := 0; i < each; i++ {
				if _, err := r.Record(context.Background(), audit.Record{Type: "request", Outcome: "allowed", Call: strconv.Itoa(w*100 + i)}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if sum := verify(t, dir, k0); sum.Records != 1+writers*each {
		t.Errorf("got %d records, want %d", sum.Records, 1+writers*each)
	}
}

// TestThroughTheDaemon: while another process holds the log and serves
// the control socket, records go through it and land in its chain.
func TestThroughTheDaemon(t *testing.T) {
	dir, state, k0 := newLog(t)
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go control.ServeHandlers(ctx, state, 1<<20, control.Handlers{Audit: func(_ context.Context, r audit.Record) (audit.Head, error) { return l.Append(r) }})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(control.Path(state)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no control socket")
		}
	}
	r := &Recorder{Dir: dir, StateDir: state}
	h, err := r.Record(ctx, audit.Record{Type: "exec_end", Outcome: "ok", Call: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != 2 || h.MAC != l.Head().MAC {
		t.Errorf("got head %+v, want the daemon's %+v", h, l.Head())
	}
	l.Close()
	verify(t, dir, k0)
}

// TestHeldByAnotherProcess: a real second process holds the lock and
// serves no socket; the recorder waits for it, and gives up with ErrBusy
// after its wait, writing nothing.
func TestHeldByAnotherProcess(t *testing.T) {
	dir, state, k0 := newLog(t)
	cmd := exec.Command(os.Args[0], holdArg, dir)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "holding\n" {
		t.Fatalf("helper said %q, want it holding the log", line)
	}
	// A fake clock: each sleep advances it, so the wait ends without
	// the test waiting.
	var clock time.Time = time.Unix(1e9, 0)
	slept := 0
	r := &Recorder{Dir: dir, StateDir: state, Wait: time.Second,
		Now:   func() time.Time { return clock },
		Sleep: func(_ context.Context, d time.Duration) error { slept++; clock = clock.Add(d); return nil }}
	_, err := r.Record(context.Background(), audit.Record{Type: "request", Call: "c1"})
	if !errors.Is(err, ErrBusy) || slept == 0 {
		t.Errorf("got %v after %d sleeps, want ErrBusy after waiting", err, slept)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// Released: the next record is written.
	r.Now, r.Sleep = nil, nil
	if _, err := r.Record(context.Background(), audit.Record{Type: "request", Call: "c2"}); err != nil {
		t.Fatal(err)
	}
	if sum := verify(t, dir, k0); sum.Records != 2 {
		t.Errorf("got %d records, want init and the one written after the holder left", sum.Records)
	}
}

func TestMissingLogIsAnError(t *testing.T) {
	r := &Recorder{Dir: filepath.Join(t.TempDir(), "none"), StateDir: t.TempDir()}
	if _, err := r.Record(context.Background(), audit.Record{Type: "request", Call: "c"}); err == nil || errors.Is(err, ErrBusy) {
		t.Errorf("got %v, want the open error", err)
	}
}

// TestCheckpointByWhoeverHoldsTheLog: with no daemon the recorder opens
// the log and signs its head; while a daemon holds it, the daemon signs.
// Either way the witness gets the head as of its call: a record appended
// just before is covered.
func TestCheckpointByWhoeverHoldsTheLog(t *testing.T) {
	dir, state, _ := newLog(t)
	r := &Recorder{Dir: dir, StateDir: state}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := r.Record(ctx, audit.Record{Type: "request", Outcome: "allowed", Call: "c0"}); err != nil {
		t.Fatal(err)
	}
	cp, err := r.Checkpoint(ctx)
	if err != nil || cp.Seq != 2 {
		t.Fatalf("alone: got %v, %v; want seq 2", cp, err)
	}
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	signed := 0
	go control.ServeHandlers(ctx, state, 1<<20, control.Handlers{Checkpoint: func(context.Context) ([]byte, error) {
		signed++
		c, err := l.Checkpoint()
		return c.Note, err
	}})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(control.Path(state)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no control socket")
		}
	}
	if _, err := l.Append(audit.Record{Type: "start", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	cp, err = r.Checkpoint(ctx)
	if err != nil || cp.Seq != 3 || cp.HashHex() != l.Head().Hash || signed != 1 {
		t.Fatalf("through the daemon: got %v, %v (signed %d); want the daemon's head %+v", cp, err, signed, l.Head())
	}
}
