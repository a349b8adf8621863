package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEveryKeyDocumented: every key the decoder reads (each string
// literal given to a table's str, flag, strings, duration, integer, sub or
// tables method) is documented in docs/config.md, so a key added without
// its documentation fails here.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	keys := decoderKeys(t)
	if len(keys) < 40 {
		t.Fatalf("found only %d keys in the decoder: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !strings.Contains(string(doc), "`"+k+"`") && !strings.Contains(string(doc), "`[site."+k+"]`") &&
			!strings.Contains(string(doc), "`[["+k+"]]`") && !strings.Contains(string(doc), "`[[site."+k+"]]`") && !strings.Contains(string(doc), "`["+k+"]`") {
			t.Errorf("key %q is not documented in docs/config.md", k)
		}
	}
}

// decoderKeys returns the key names read in this package's non-test files.
func decoderKeys(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var keys []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if k, ok := keyRead(n); ok && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			return true
		})
	}
	return keys
}

// keyRead returns the key of a call such as t.str("email", …).
func keyRead(n ast.Node) (string, bool) {
	call, ok := n.(*ast.CallExpr)
	if !ok || len(call.Args) == 0 {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	switch sel.Sel.Name {
	case "str", "flag", "strings", "duration", "integer", "sub", "tables":
	default:
		return "", false
	}
	lit, ok := call.Args[0].(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	k, err := strconv.Unquote(lit.Value)
	return k, err == nil
}
