package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/audit"
)

// initLog runs relay audit init --no-store and returns K0 and the public
// checkpoint key as printed.
func initLog(t *testing.T, dir string) (k0, pub string) {
	t.Helper()
	code, out, errs := runAudit(t, "", "init", "--dir", dir, "--no-store", "--origin", "test/relay-audit/0a0b0c0d")
	if code != ExitOK {
		t.Fatalf("init: got exit %d (%s)", code, errs)
	}
	m := regexp.MustCompile(`(?m)^    ([0-9a-f]{64})$`).FindStringSubmatch(out)
	p := regexp.MustCompile(`(?m)^    (test/relay-audit/0a0b0c0d\+[0-9a-f]{8}\+\S+)$`).FindStringSubmatch(out)
	if m == nil || p == nil || !strings.Contains(out, "public checkpoint key") {
		t.Fatalf("init printed %q, want K0 and the public checkpoint key", out)
	}
	return m[1], p[1]
}

// TestAuditVerifyPublicKey: with the public key and a signed checkpoint
// from the chat, verify proves the log up to it without K0; a checkpoint
// the key does not open, or one the log does not reach, fails.
func TestAuditVerifyPublicKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	k0, pub := initLog(t, dir)
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := l.Append(audit.Record{Type: "request", Outcome: "ok", Command: "uptime"}); err != nil {
			t.Fatal(err)
		}
	}
	msg := l.CheckpointMessage() // what the chat got
	chat := strings.NewReplacer("<pre>", "", "</pre>", "", "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(msg)
	l.Close()
	export := filepath.Join(t.TempDir(), "chat.txt")
	os.WriteFile(export, []byte("Relay bot, [2 Mar 2026 10:00]\r\n"+strings.ReplaceAll(chat, "\n", "\r\n")+"\r\n"), 0o600)
	pubFile := filepath.Join(t.TempDir(), "pub")
	os.WriteFile(pubFile, []byte(pub+"\n"), 0o600)

	otherDir := filepath.Join(t.TempDir(), "other")
	_, otherPub := initLog(t, otherDir)

	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"signed checkpoint, no K0", "", []string{"verify", "--dir", dir, "--public-key", pub, "--checkpoint", chat}, ExitOK, "1 signed checkpoint(s) matched"},
		{"from a chat export, key in a file", "", []string{"verify", "--dir", dir, "--public-key", pubFile, "--checkpoints", export}, ExitOK, "links and hashes ok"},
		{"from stdin", chat, []string{"verify", "--dir", dir, "--public-key", pub, "--checkpoints", "-"}, ExitOK, "signed checkpoint(s) matched"},
		{"with K0 too", "", []string{"verify", "--dir", dir, "--key", k0, "--public-key", pub, "--checkpoints", export}, ExitOK, "ok: 4 records"},
		{"another log's key", "", []string{"verify", "--dir", dir, "--public-key", otherPub, "--checkpoints", export}, ExitVerify, ""},
		{"signed checkpoint without a public key", "", []string{"verify", "--dir", dir, "--key", k0, "--checkpoints", export}, ExitOK, "1 signed checkpoint(s) not checked"},
		{"no key, no checkpoint", "", []string{"verify", "--dir", dir, "--public-key", pub}, ExitNotSetup, "hashes"},
		{"the private key given", "", []string{"verify", "--dir", dir, "--public-key", filepath.Join(dir, audit.CheckpointKeyFile), "--checkpoints", export}, ExitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runAudit(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(out+errs, tt.want) {
				t.Fatalf("got exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, tt.code, tt.want)
			}
			if strings.Contains(out+errs, "PRIVATE+KEY") {
				t.Fatal("the private checkpoint key was echoed")
			}
		})
	}

	// The log cut before the checkpoint: verify by the public key alone
	// catches it.
	f := filepath.Join(dir, "audit-000001.jsonl")
	b, _ := os.ReadFile(f)
	lines := bytes.SplitAfter(b, []byte("\n"))
	os.WriteFile(f, bytes.Join(lines[:3], nil), 0o600)
	code, _, errs := runAudit(t, "", "verify", "--public-key", pub, "--checkpoints", export, f)
	if code != ExitVerify || !strings.Contains(errs, "truncated after checkpoint") {
		t.Fatalf("got exit %d, %q; want %d and the truncation", code, errs, ExitVerify)
	}
}

// TestAuditArchiveAndReport drives archive and report through the CLI:
// archive refuses while the daemon holds the log, then moves old files,
// and verify passes on the live log and on live plus archive; report
// writes a 0600 page and exits 4 on a broken chain.
func TestAuditArchiveAndReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	k0, _ := initLog(t, dir)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := audit.Open(dir, audit.Options{RotateBytes: 2000, Now: func() time.Time { clock = clock.Add(time.Hour); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 80; i++ {
		if _, err := l.Append(audit.Record{Type: "request", Outcome: "ok", Command: "uptime"}); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := audit.LatestCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.RecordWitnessed(dir, cp.Note); err != nil {
		t.Fatal(err)
	}
	// The daemon runs: archive must not take the log from it.
	code, _, errs := runAudit(t, "", "archive", "--dir", dir, "--key", k0, "--before", "2026-01-03")
	if code != ExitFailure || !strings.Contains(errs, "daemon is running") || !strings.Contains(errs, "hint: stop it") {
		t.Fatalf("got exit %d, %q; want a refusal with the hint", code, errs)
	}
	l.Close()

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"archive", "--dir", dir, "--key", k0}, ExitUsage, "--before is required"},
		{[]string{"archive", "--dir", dir, "--key", k0, "--before", "soon"}, ExitUsage, "neither a date"},
		{[]string{"archive", "--dir", dir, "--before", "2026-01-03"}, ExitNotSetup, "K0 is needed"},
	} {
		if code, out, errs := runAudit(t, "", tt.args...); code != tt.code || !strings.Contains(out+errs, tt.want) {
			t.Fatalf("%v: got exit %d, %q; want %d and %q", tt.args, code, out+errs, tt.code, tt.want)
		}
	}
	code, out, errs := runAudit(t, "", "archive", "--dir", dir, "--key", k0, "--before", "2026-01-03")
	if code != ExitOK || !strings.Contains(out, "archived ") {
		t.Fatalf("archive: got exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = runAudit(t, "", "verify", "--dir", dir, "--key", k0)
	if code != ExitOK || !strings.Contains(out, "archived)") {
		t.Fatalf("verify the live log: got exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = runAudit(t, "", "verify", "--dir", dir, "--key", k0, "--archive", filepath.Join(dir, audit.ArchiveDirName))
	if code != ExitOK || strings.Contains(out, "archived)") || !strings.Contains(out, "key state matches") {
		t.Fatalf("verify live and archive: got exit %d, %q, %q; want the whole history", code, out, errs)
	}

	page := filepath.Join(t.TempDir(), "report.html")
	code, out, errs = runAudit(t, "", "report", "--dir", dir, "--key", k0, "--archive", filepath.Join(dir, audit.ArchiveDirName), "-o", page)
	if code != ExitOK || !strings.Contains(out, "wrote "+page) {
		t.Fatalf("report: got exit %d, %q, %q", code, out, errs)
	}
	if fi, err := os.Stat(page); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the page: %v, %v; want mode 0600", fi, err)
	}
	if b, _ := os.ReadFile(page); !bytes.Contains(b, []byte("relay audit report")) || !bytes.Contains(b, []byte("verify: ok: ")) {
		t.Fatal("the page does not say the log verified")
	}
	// Break the live log: report still writes the page, and exits 4.
	f := audit.Files(dir)[0]
	b, _ := os.ReadFile(f)
	os.WriteFile(f, bytes.Replace(b, []byte(`"uptime"`), []byte(`"uptimf"`), 1), 0o600)
	code, _, errs = runAudit(t, "", "report", "--dir", dir, "--key", k0, "-o", page)
	if b, _ := os.ReadFile(page); code != ExitVerify || !strings.Contains(errs, "BROKEN") || !bytes.Contains(b, []byte("BROKEN")) {
		t.Fatalf("got exit %d, %q; want %d, and the page saying BROKEN", code, errs, ExitVerify)
	}
	if code, _, _ := runAudit(t, "", "report", "--dir", dir); code != ExitUsage {
		t.Fatalf("report without -o: got exit %d, want %d", code, ExitUsage)
	}
}

// TestAuditProgress: verify shows progress on stderr when it is a
// terminal, and never when it is not.
func TestAuditProgress(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	k0, _ := initLog(t, dir)
	defer func(n int64) { progressMin = n }(progressMin)
	progressMin = 1

	var errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := Main(context.Background(), []string{"audit", "verify", "--dir", dir, "--key", k0}, env); code != ExitOK {
		t.Fatalf("got exit %d (%s)", code, errb.String())
	}
	if errb.Len() != 0 {
		t.Fatalf("verify wrote %q to a stderr that is not a terminal", errb.String())
	}

	master, slave := openPTY(t)
	env = &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: slave, Getenv: func(string) string { return "" }}
	if code := Main(context.Background(), []string{"audit", "verify", "--dir", dir, "--key", k0}, env); code != ExitOK {
		t.Fatalf("got exit %d", code)
	}
	slave.Close()
	got, _ := io.ReadAll(master)
	if !bytes.Contains(got, []byte("relay: verify: 100%")) || !bytes.HasSuffix(got, []byte("\r\x1b[K")) {
		t.Fatalf("the terminal got %q, want the progress line, erased at the end", got)
	}
}
