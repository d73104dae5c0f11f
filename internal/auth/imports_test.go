package auth

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// auth returns events and never logs, talks to the network or runs
// anything: a log line is where codes leak, and the daemon owns the audit
// log and Telegram. This fails the build of any file that starts to.
func TestForbiddenImports(t *testing.T) {
	forbidden := []string{"log", "log/slog", "github.com/rs/zerolog", "net", "net/http", "os/exec", "github.com/go-telegram/bot", "unsafe"}
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		n++
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if p == bad || strings.HasPrefix(p, bad+"/") {
					t.Errorf("%s imports %s, want none of %v", name, p, forbidden)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no source files found")
	}
}
