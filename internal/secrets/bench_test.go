package secrets

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkGet measures one lookup per source. Relay reads its secrets at
// start-up and on reload only, so this guards against accidental blow-ups
// (e.g. a permission walk per byte), not a hot path.
func BenchmarkGet(b *testing.B) {
	setups := []struct {
		name string
		prep func(f *fixture)
	}{
		{"credential", func(f *fixture) {
			os.WriteFile(filepath.Join(f.credDir, BotToken), []byte(credValue), 0o400)
		}},
		{"keyring-fake", func(f *fixture) { f.ring.items["relay-test\x00"+BotToken] = ringValue }},
		{"env", func(f *fixture) { f.env[EnvToken] = envValue }},
		{"file", func(f *fixture) {
			os.WriteFile(filepath.Join(f.dir, BotToken), []byte(fileValue), 0o600)
		}},
		{"not-found", func(f *fixture) {}},
	}
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			root := b.TempDir()
			f := &fixture{
				credDir: filepath.Join(root, "credentials"),
				dir:     filepath.Join(root, "secrets"),
				env:     map[string]string{},
				ring:    newFake(),
			}
			os.Mkdir(f.credDir, 0o700)
			os.Mkdir(f.dir, 0o700)
			s.prep(f)
			st := f.store()
			b.ReportAllocs()
			for b.Loop() {
				v, _ := st.Get(BotToken)
				clear(v)
			}
		})
	}
}
