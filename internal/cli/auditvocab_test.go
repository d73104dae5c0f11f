package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestAuditVocabularyCoversWriters reads every audit record the tree
// writes (audit.Record literals, assignments to a record's Outcome, and
// the local variables and functions that feed it) and fails when a type or
// outcome is missing from auditTypes or auditOutcomes: relay audit show
// would otherwise refuse a filter that matches real records.
func TestAuditVocabularyCoversWriters(t *testing.T) {
	types, outcomes := map[string]string{}, map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		funcs := map[string]*ast.FuncDecl{}
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil {
				funcs[fd.Name.Name] = fd
			}
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			at := func(n ast.Node) string { return fset.Position(n.Pos()).String() }
			// outcomeValues resolves what an Outcome is set from.
			outcomeValues := func(e ast.Expr) {
				for _, s := range stringsOf(e, fd, funcs) {
					outcomes[s] = at(e)
				}
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					if !isRecordType(n.Type, f.Name.Name) {
						return true
					}
					for _, el := range n.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						switch key, _ := kv.Key.(*ast.Ident); {
						case key == nil:
						case key.Name == "Type":
							for _, s := range stringsOf(kv.Value, fd, funcs) {
								types[s] = at(kv)
							}
						case key.Name == "Outcome":
							outcomeValues(kv.Value)
						}
					}
				case *ast.AssignStmt:
					for i, lhs := range n.Lhs {
						if sel, ok := lhs.(*ast.SelectorExpr); ok && sel.Sel.Name == "Outcome" && i < len(n.Rhs) {
							outcomeValues(n.Rhs[i])
						}
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(types) < 10 || len(outcomes) < 10 {
		t.Fatalf("found %d types and %d outcomes: the scan no longer sees the writers", len(types), len(outcomes))
	}
	// show's marker for an unreadable line, and a field cleared for
	// display, are never written.
	delete(types, "?")
	delete(outcomes, "")
	for s, where := range types {
		if !slices.Contains(auditTypes, s) {
			t.Errorf("%s: audit record type %q is not in auditTypes", where, s)
		}
	}
	for s, where := range outcomes {
		if !slices.Contains(auditOutcomes, s) {
			t.Errorf("%s: audit outcome %q is not in auditOutcomes", where, s)
		}
	}
}

func isRecordType(e ast.Expr, pkg string) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		return ok && x.Name == "audit" && e.Sel.Name == "Record"
	case *ast.Ident:
		return pkg == "audit" && e.Name == "Record"
	}
	return false
}

// stringsOf is the string literals e can be: itself, the literals a local
// variable of that name is assigned in fn, or those a package function of
// that name returns. Anything else (a field, another package's constant)
// is not followed; auth's login events are listed from auth itself.
func stringsOf(e ast.Expr, fn *ast.FuncDecl, funcs map[string]*ast.FuncDecl) []string {
	lit := func(e ast.Expr) (string, bool) {
		b, ok := e.(*ast.BasicLit)
		if !ok || b.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(b.Value)
		return s, err == nil
	}
	if s, ok := lit(e); ok {
		return []string{s}
	}
	var out []string
	switch e := e.(type) {
	case *ast.Ident:
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if as, ok := n.(*ast.AssignStmt); ok {
				for i, l := range as.Lhs {
					if id, ok := l.(*ast.Ident); ok && id.Name == e.Name && i < len(as.Rhs) {
						if s, ok := lit(as.Rhs[i]); ok {
							out = append(out, s)
						}
					}
				}
			}
			return true
		})
	case *ast.CallExpr:
		id, ok := e.Fun.(*ast.Ident)
		if !ok || funcs[id.Name] == nil {
			return nil
		}
		ast.Inspect(funcs[id.Name].Body, func(n ast.Node) bool {
			if r, ok := n.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
				if s, ok := lit(r.Results[0]); ok {
					out = append(out, s)
				}
			}
			return true
		})
	}
	return out
}
