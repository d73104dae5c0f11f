package secrets

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFuzzSeedCorpus(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzFileErrorsIgnoreContent"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus: %d files, %v; want at least one", len(ents), err)
	}
}

// FuzzFileErrorsIgnoreContent: whatever a secret file holds and whatever
// its mode, the error (if any) is exactly the one a file of the same shape
// (same length, same line ends) but different bytes would give. An error
// that depends on the content could quote it.
func FuzzFileErrorsIgnoreContent(f *testing.F) {
	f.Add([]byte("123456789:FAKEfakeFAKEfakeFAKEfakeFAKEfake123\n"), uint16(0o600))
	f.Add([]byte("secret"), uint16(0o644))
	f.Add([]byte("\r\n"), uint16(0o600))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte, mode uint16) {
		if len(content) > 2*maxSecretSize {
			return
		}
		perm := os.FileMode(mode) & 0o777
		masked := make([]byte, len(content))
		for i, c := range content {
			masked[i] = 'x'
			if c == '\r' || c == '\n' {
				masked[i] = c
			}
		}
		errText := func(b []byte) string {
			p := filepath.Join(dir, "s")
			os.Remove(p)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, perm); err != nil {
				t.Fatal(err)
			}
			v, err := readPrivateFile(p)
			clear(v)
			if err != nil {
				return err.Error()
			}
			return ""
		}
		got, want := errText(content), errText(masked)
		if got != want {
			t.Fatalf("error depends on the content: %q vs %q", got, want)
		}
	})
}
