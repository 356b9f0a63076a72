package view

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestRawTakesOnlyConstants: every markup the package writes unescaped is a
// string constant in its source, so no data can reach the page as markup.
// (The one attr name is checked too: names are never data.)
func TestRawTakesOnlyConstants(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	calls := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			var arg ast.Expr
			switch sel.Sel.Name {
			case "raw", "attr":
				arg = call.Args[0]
			case "when":
				arg = call.Args[1]
			default:
				return true
			}
			calls++
			if !constant(arg) {
				t.Errorf("%s: %s takes %s, not a string constant", fset.Position(call.Pos()), sel.Sel.Name, types(arg))
			}
			return true
		})
	}
	if calls < 50 {
		t.Fatalf("found only %d raw/attr/when calls: is the check looking at the right files?", calls)
	}
}

// constant is a string literal or a + of them.
func constant(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return x.Kind == token.STRING
	case *ast.BinaryExpr:
		return x.Op == token.ADD && constant(x.X) && constant(x.Y)
	case *ast.ParenExpr:
		return constant(x.X)
	}
	return false
}

func types(e ast.Expr) string { return strings.TrimPrefix(strings.TrimPrefix(fmtNode(e), "&"), "*") }

func fmtNode(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return fmtNode(x.X) + "." + x.Sel.Name
	}
	return "an expression"
}
