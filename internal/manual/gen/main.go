// Command gen writes the outputs of package manual into the repository:
// the man pages, the shell completions and the generated sections of
// docs/reference.md. Run it with go generate ./internal/manual.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/relaychat/relay/internal/manual"
)

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	ref, err := os.ReadFile(filepath.Join(root, "docs/reference.md"))
	if err != nil {
		return err
	}
	out, err := manual.Outputs(string(ref))
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(out))
	for p := range out {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(root, p)
		if old, err := os.ReadFile(full); err == nil && string(old) == out[p] {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(out[p]), 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", p)
	}
	return nil
}
