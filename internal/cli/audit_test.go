package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/secrets"
)

func runAudit(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Main(context.Background(), append([]string{"audit"}, args...), env)
	return code, out.String(), errb.String()
}

func TestAuditKeyNameMatchesSecrets(t *testing.T) {
	if audit.KeyName != secrets.AuditKey {
		t.Fatalf("got audit.KeyName %q, want secrets.AuditKey %q", audit.KeyName, secrets.AuditKey)
	}
}

func TestAuditCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	code, out, errs := runAudit(t, "", "init", "--dir", dir, "--no-store")
	if code != ExitOK {
		t.Fatalf("init: got exit %d (%s), want 0", code, errs)
	}
	k0 := regexp.MustCompile(`(?m)^    ([0-9a-f]{64})$`).FindStringSubmatch(out)
	if k0 == nil || !strings.Contains(out, "OFF this host") {
		t.Fatalf("init printed %q, want K0 in hex and the off-host advice", out)
	}
	if code, _, _ := runAudit(t, "", "init", "--dir", dir, "--no-store"); code == ExitOK {
		t.Fatal("a second init succeeded, want a refusal")
	}

	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"uptime", "reboot", "uptime"} {
		if _, err := l.Append(audit.Record{Type: "request", Outcome: "ok", Command: c}); err != nil {
			t.Fatal(err)
		}
	}
	cp := l.Head().Checkpoint()
	l.Close()

	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"verify with key", "", []string{"verify", "--dir", dir, "--key", k0[1]}, ExitOK, "ok: 4 records"},
		{"verify key from stdin", k0[1] + "\n", []string{"verify", "--dir", dir, "--key", "-", "--checkpoint", cp}, ExitOK, "1 checkpoint(s) matched"},
		{"verify files", "", []string{"verify", "--key", k0[1], filepath.Join(dir, "audit-000001.jsonl")}, ExitOK, "ok: 4 records"},
		{"verify without key", "", []string{"verify", "--dir", dir}, ExitNotSetup, "NOT VERIFIED"},
		{"verify bad key", "", []string{"verify", "--dir", dir, "--key", "zz"}, ExitUsage, ""},
		{"show table", "", []string{"show", "--dir", dir, "--command", "reboot"}, ExitOK, "/reboot"},
		{"show last 2", "", []string{"show", "--dir", dir, "-n", "2", "--json"}, ExitOK, `"seq":4`},
		{"show bad since", "", []string{"show", "--dir", dir, "--since", "yesterday"}, ExitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runAudit(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("got exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, tt.code, tt.want)
			}
			if strings.Contains(errs, k0[1]) {
				t.Fatal("stderr echoes the key")
			}
		})
	}

	_, out, _ = runAudit(t, "", "show", "--dir", dir, "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d JSON lines, want 4", len(lines))
	}
	for _, ln := range lines {
		if !json.Valid([]byte(ln)) {
			t.Fatalf("got %q, want JSON", ln)
		}
	}

	file := filepath.Join(dir, "audit-000001.jsonl")
	b, _ := os.ReadFile(file)
	os.WriteFile(file, bytes.Replace(b, []byte("reboot"), []byte("uptime"), 1), 0o600)
	code, _, errs = runAudit(t, "", "verify", "--dir", dir, "--key", k0[1])
	if code != ExitVerify || !strings.Contains(errs, "seq 3") || !strings.Contains(errs, "bad mac") {
		t.Fatalf("got exit %d, stderr %q; want %d naming seq 3 and a bad mac", code, errs, ExitVerify)
	}
}

// TestAuditShowLastIsTheEndOfTheListing: show -n N, which reads the log
// backwards, prints byte for byte the last N lines of what show prints
// reading it forwards, as a table and as JSON, filtered or not, across
// rotated files and with a torn last line.
func TestAuditShowLastIsTheEndOfTheListing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	if code, _, errs := runAudit(t, "", "init", "--dir", dir, "--no-store"); code != ExitOK {
		t.Fatalf("init: got exit %d (%s), want 0", code, errs)
	}
	l, err := audit.Open(dir, audit.Options{RotateBytes: 1200})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		for _, c := range []string{"uptime", "reboot"} {
			if _, err := l.Append(audit.Record{Type: "request", Outcome: "ok", Command: c, Detail: `"command":"reboot" é`}); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.Close()
	files := audit.Files(dir)
	if len(files) < 3 {
		t.Fatalf("got %d files, want a rotated log", len(files))
	}
	f, err := os.OpenFile(files[len(files)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":99,"ts":"20`)
	f.Close()

	for _, args := range [][]string{nil, {"--json"}, {"--command", "reboot"}, {"--command", "reboot", "--json"}, {"--type", "rotate,init"}} {
		base := append([]string{"show", "--dir", dir}, args...)
		code, all, errs := runAudit(t, "", base...)
		if code != ExitOK {
			t.Fatalf("%v: got exit %d (%s)", base, code, errs)
		}
		lines := strings.SplitAfter(all, "\n")
		lines = lines[:len(lines)-1]
		head := 0
		if !slices.Contains(args, "--json") {
			head = 1 // the table's header line
		}
		for _, n := range []int{1, 2, 5, 20, len(lines) - head, len(lines) + 3} {
			want := strings.Join(lines[:head], "") + strings.Join(lines[max(head, len(lines)-n):], "")
			code, got, errs := runAudit(t, "", append(base, "-n", strconv.Itoa(n))...)
			if code != ExitOK || got != want {
				t.Fatalf("%v -n %d: got exit %d (%s)\n%s\nwant\n%s", base, n, code, errs, got, want)
			}
		}
	}
}
