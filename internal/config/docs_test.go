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
			k, ok := keyRead(n)
			if !ok {
				k, ok = keyOfPair(n)
			}
			if ok && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
			return true
		})
	}
	return keys
}

// keyOfPair returns the key of an element such as {"fullchain",
// &c.Fullchain}: a table of keys and destinations read in a loop
// (deployFiles), whose keys are no literal argument of a read.
func keyOfPair(n ast.Node) (string, bool) {
	lit, ok := n.(*ast.CompositeLit)
	if !ok || len(lit.Elts) != 2 {
		return "", false
	}
	key, ok := lit.Elts[0].(*ast.BasicLit)
	if !ok || key.Kind != token.STRING {
		return "", false
	}
	if dst, ok := lit.Elts[1].(*ast.UnaryExpr); !ok || dst.Op != token.AND {
		return "", false
	}
	k, err := strconv.Unquote(key.Value)
	return k, err == nil
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

// TestEveryDocumentedKeyRead: the other way round, every key in the first
// column of a key table of docs/config.md ("| key | type | default |
// what it does |") is one the decoder reads, so a key renamed or removed
// in the code, or misspelt in the documentation, fails here.
func TestEveryDocumentedKeyRead(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, k := range decoderKeys(t) {
		read[k] = true
	}
	documented := documentedKeys(string(doc))
	if len(documented) < 40 {
		t.Fatalf("found only %d keys in the tables of docs/config.md: %v", len(documented), documented)
	}
	for _, k := range documented {
		if !read[k] {
			t.Errorf("docs/config.md documents %q, which the decoder does not read", k)
		}
	}
}

// documentedKeys returns the names in the first column of the key tables
// of a config.md, without the brackets and "site." of table headers
// (`[[site.route]]` is route).
func documentedKeys(doc string) []string {
	var keys []string
	inTable := false
	for line := range strings.Lines(doc) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "| key |"):
			inTable = true
			continue
		case !strings.HasPrefix(line, "|"):
			inTable = false
		}
		if !inTable || strings.HasPrefix(line, "|---") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		parts := strings.Split(first, "`")
		for i := 1; i < len(parts); i += 2 {
			k := strings.Trim(parts[i], "[]")
			k = strings.TrimPrefix(k, "site.")
			if k == "" || strings.ContainsAny(k, " ,()") {
				continue
			}
			keys = append(keys, k)
		}
	}
	return keys
}
