package audit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestVocabularyCoversWriters reads every non-test Go file of the module
// and fails where a writer spells a record's type or outcome as a string
// literal (a Record literal's Type or Outcome, an assignment to a
// record's Outcome, a Kind("…") or Outcome("…") conversion) instead of
// naming this package's constant: relay audit show refuses a filter no
// record can match, and a spelled word could be one no list has.
func TestVocabularyCoversWriters(t *testing.T) {
	fset := token.NewFileSet()
	seen := 0
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Base(path) == "vocab.go" {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		local := f.Name.Name == "audit"
		at := func(n ast.Node) string { return fset.Position(n.Pos()).String() }
		literal := func(e ast.Expr) bool {
			b, ok := e.(*ast.BasicLit)
			return ok && b.Kind == token.STRING
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if !isRecordType(n.Type, local) {
					return true
				}
				seen++
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					if key, _ := kv.Key.(*ast.Ident); key != nil && (key.Name == "Type" || key.Name == "Outcome") && literal(kv.Value) {
						t.Errorf("%s: record %s spelled %s: name the audit constant", at(kv), key.Name, kv.Value.(*ast.BasicLit).Value)
					}
				}
			case *ast.AssignStmt:
				for i, lhs := range n.Lhs {
					if sel, ok := lhs.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Outcome" || sel.Sel.Name == "Type") && i < len(n.Rhs) && literal(n.Rhs[i]) {
						// Filter.Outcome is a reader's string, not a record's.
						if _, isRecord := recordVars(f)[exprName(sel.X)]; isRecord {
							t.Errorf("%s: record %s spelled %s: name the audit constant", at(n), sel.Sel.Name, n.Rhs[i].(*ast.BasicLit).Value)
						}
					}
				}
			case *ast.CallExpr:
				if len(n.Args) == 1 && literal(n.Args[0]) && isVocabType(n.Fun, local) {
					t.Errorf("%s: a Kind or Outcome converted from %s: name the audit constant", at(n), n.Args[0].(*ast.BasicLit).Value)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 30 {
		t.Fatalf("found %d record literals: the scan no longer sees the writers", seen)
	}
}

// recordVars names the variables of f that hold a Record: those assigned
// or declared from a Record literal or one of this package's record
// constructors, and parameters of type Record.
func recordVars(f *ast.File) map[string]bool {
	vars := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			for i, lhs := range n.Lhs {
				if i < len(n.Rhs) && holdsRecord(n.Rhs[i]) {
					vars[exprName(lhs)] = true
				}
			}
		case *ast.Field:
			if isRecordType(n.Type, true) || isRecordType(n.Type, false) {
				for _, name := range n.Names {
					vars[name.Name] = true
				}
			}
		}
		return true
	})
	// A copy of a record variable is one too (r := base).
	for range 3 {
		ast.Inspect(f, func(n ast.Node) bool {
			if as, ok := n.(*ast.AssignStmt); ok {
				for i, lhs := range as.Lhs {
					if i < len(as.Rhs) && vars[exprName(as.Rhs[i])] {
						vars[exprName(lhs)] = true
					}
				}
			}
			return true
		})
	}
	return vars
}

func holdsRecord(e ast.Expr) bool {
	if u, ok := e.(*ast.UnaryExpr); ok {
		e = u.X
	}
	switch e := e.(type) {
	case *ast.CompositeLit:
		return isRecordType(e.Type, true) || isRecordType(e.Type, false)
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok {
			return slices.Contains([]string{"New", "Denied", "Failed"}, sel.Sel.Name) && exprName(sel.X) == "audit"
		}
	}
	return false
}

func exprName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprName(e.X) + "." + e.Sel.Name
	}
	return ""
}

func isRecordType(e ast.Expr, local bool) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		return ok && x.Name == "audit" && e.Sel.Name == "Record"
	case *ast.Ident:
		return local && e.Name == "Record"
	case *ast.StarExpr:
		return isRecordType(e.X, local)
	}
	return false
}

func isVocabType(e ast.Expr, local bool) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		return ok && x.Name == "audit" && (e.Sel.Name == "Kind" || e.Sel.Name == "Outcome")
	case *ast.Ident:
		return local && (e.Name == "Kind" || e.Name == "Outcome")
	}
	return false
}

// TestListsHoldEveryConstant walks the exported Kind and Outcome
// constants of vocab.go: each is in Kinds or Outcomes, and the lists hold
// nothing else.
func TestListsHoldEveryConstant(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "vocab.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []Kind
	var outcomes []Outcome
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			typ, _ := vs.Type.(*ast.Ident)
			for i, name := range vs.Names {
				v, err := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				if err != nil || typ == nil || !name.IsExported() {
					t.Fatalf("%s: want an exported, typed string constant", name.Name)
				}
				switch typ.Name {
				case "Kind":
					kinds = append(kinds, Kind(v))
				case "Outcome":
					outcomes = append(outcomes, Outcome(v))
				}
			}
		}
	}
	if got, want := Kinds, sortedSet(kinds); !slices.Equal(got, want) {
		t.Errorf("Kinds = %v, want every Kind constant: %v", got, want)
	}
	if got, want := Outcomes, sortedSet(outcomes); !slices.Equal(got, want) {
		t.Errorf("Outcomes = %v, want every Outcome constant: %v", got, want)
	}
	for _, k := range Kinds {
		if !validType([]byte(k)) {
			t.Errorf("kind %q is not a valid record type", k)
		}
	}
}

// TestDocListsEveryKind: the package doc's "Record kinds" section names
// exactly Kinds.
func TestDocListsEveryKind(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "doc.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	text := f.Doc.Text()
	if !strings.HasPrefix(text, "Package audit owns") {
		t.Fatalf("the package doc starts %.40q: is it split in two?", text)
	}
	_, section, ok := strings.Cut(text, "# Record kinds\n")
	if !ok {
		t.Fatal(`the package doc has no "# Record kinds" section`)
	}
	section, _, _ = strings.Cut(section, "\n# ")
	var listed []Kind
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "\t") {
			continue
		}
		words, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
		for _, w := range strings.Split(words, ",") {
			listed = append(listed, Kind(strings.TrimSpace(w)))
		}
	}
	if got, want := sortedSet(listed), Kinds; !slices.Equal(got, want) {
		t.Errorf("the doc lists %v, want %v", got, want)
	}
}
