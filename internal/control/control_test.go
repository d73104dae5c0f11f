package control

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNotifyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []Notification
	var body string
	ready := make(chan error, 1)
	go func() {
		ready <- Serve(ctx, dir, 1<<20, func(_ context.Context, n Notification) error {
			mu.Lock()
			defer mu.Unlock()
			if n.File != nil {
				b, _ := io.ReadAll(n.File)
				body = string(b)
			}
			got = append(got, n)
			return nil
		})
	}()
	waitSocket(t, dir)

	fi, err := os.Stat(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("got socket mode %v, want 0600", fi.Mode().Perm())
	}
	if err := Send(ctx, dir, Notification{Text: "backup done", Silent: true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := Send(ctx, dir, Notification{FileName: "log.txt", Size: 5}, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Text != "backup done" || !got[0].Silent || got[1].FileName != "log.txt" || body != "hello" {
		t.Errorf("got %+v body %q, want the text then the file", got, body)
	}
}

func TestOversizedFileRefused(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	called := false
	go Serve(ctx, dir, 10, func(context.Context, Notification) error { called = true; return nil })
	waitSocket(t, dir)
	err := Send(ctx, dir, Notification{FileName: "big", Size: 11}, strings.NewReader(strings.Repeat("x", 11)))
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("got %v, want a too-large refusal", err)
	}
	if called {
		t.Error("handler called for an oversized file")
	}
}

func TestNoDaemon(t *testing.T) {
	err := Send(context.Background(), t.TempDir(), Notification{Text: "x"}, nil)
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("got %v, want ErrNoDaemon", err)
	}
}

func waitSocket(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(Path(dir)); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("control socket never appeared")
}
