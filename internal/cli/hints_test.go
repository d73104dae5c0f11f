package cli

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/audit"
	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/internal/telegram"
)

// hintsNotYetMoved are the files whose hints have not moved to hints.go
// yet, because another change is rewriting them: internal/fleet's call
// and doctor diagnose a member's forced command (serve-ssh) in their
// reasons, and internal/member names it in the refusals it sends a hub
// or a witness (main's witness change adds two).
var hintsNotYetMoved = map[string]bool{
	"internal/fleet/call.go":    true,
	"internal/fleet/doctor.go":  true,
	"internal/member/member.go": true,
}

// TestHintsOnlyAtTheBoundary: no library package names a relay command
// in a string it returns or builds (errors, hints, reasons): it returns
// an error wrapping an exported sentinel, and hints.go says which command
// fixes it, at the CLI's one error printer. internal/cli, internal/manual
// (the manual) and internal/chatfmt (chat replies) are the boundaries;
// log lines (zerolog's Msg) are the operator's and may name commands.
func TestHintsOnlyAtTheBoundary(t *testing.T) {
	re := regexp.MustCompile(`\brelay (` + strings.Join(commandNames(), "|") + `)\b`)
	fset := token.NewFileSet()
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", path)
		if d.IsDir() {
			switch rel {
			case "internal/cli", "internal/manual", "internal/chatfmt", "cmd", "e2e", "scripts", "deploy", "docs":
				return filepath.SkipDir
			}
			if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || hintsNotYetMoved[rel] {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		logArgs := map[*ast.BasicLit]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Msg" || sel.Sel.Name == "Msgf") {
					for _, a := range c.Args {
						if b, ok := a.(*ast.BasicLit); ok {
							logArgs[b] = true
						}
					}
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			b, ok := n.(*ast.BasicLit)
			if !ok || b.Kind != token.STRING || logArgs[b] {
				return true
			}
			s, err := strconv.Unquote(b.Value)
			// "relay serve-ssh: …" is a message's program prefix, as
			// "relay:" is the CLI's, not a hint.
			body := strings.TrimPrefix(s, "\n")
			if loc := re.FindStringIndex(body); loc != nil && loc[0] == 0 && strings.HasPrefix(body[loc[1]:], ":") {
				body = body[loc[1]:]
			}
			if err == nil && re.MatchString(body) {
				t.Errorf("%s: %q names a relay command: return a sentinel error and hint in internal/cli/hints.go", fset.Position(b.Pos()), s)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHintsTable: the library's errors, wrapped as they are returned,
// get the hint naming their fix at the CLI's error printer, one line.
func TestHintsTable(t *testing.T) {
	dir := t.TempDir()
	_, err := audit.Open(filepath.Join(dir, "nope"), audit.Options{})
	s := &secrets.NotFoundError{Name: secrets.TOTPSecret}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"no audit log", err, "relay: hint: run 'relay audit init'"},
		{"totp not stored", fmt.Errorf("read totp secret: %w: %w", auth.ErrNoSecret, s), "relay: hint: enrol it with 'relay totp enroll'"},
		{"malformed token", fmt.Errorf("telegram: %w", telegram.ErrTokenMalformed), "relay: hint: store the token BotFather gave with 'relay token set'"},
		{"telegram 401", &telegram.Error{Method: "getMe", Code: 401}, "relay: hint: check the bot token ('relay token set') and telegram.api_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			report(&Env{Stdout: &out, Stderr: &errb}, nil, tc.err)
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if n := strings.Count(errb.String(), "relay: hint:"); n != 1 || lines[len(lines)-1] != tc.want {
				t.Errorf("got %q, want one hint line %q", errb.String(), tc.want)
			}
		})
	}
}

// TestOneSecretStoreConstructor: secrets.New is called in one place of
// the CLI, secretStore, so that no command builds a store that looks
// somewhere relay run does not (setup used to build its own Options).
func TestOneSecretStoreConstructor(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, p := range pkgs {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "New" && exprIdent(sel.X) == "secrets" {
					calls = append(calls, fset.Position(c.Pos()).String())
				}
			}
			return true
		})
	}
	if len(calls) != 1 || !strings.HasPrefix(calls[0], "config.go:") {
		t.Errorf("secrets.New is called at %v, want once, in config.go's secretStore", calls)
	}
}

func exprIdent(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
