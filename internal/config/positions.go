package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps key paths ("site[2].route[1].path", "site[1].names[3]")
// to the line where they are written. The TOML decoder reports no
// positions for values it accepts, and none with array indices, so the
// document is walked a second time with go-toml's parser.
type positions struct {
	lines  map[string]int
	counts map[string]int // arrays of tables seen so far, by path
	nl     []int          // offsets of '\n', to turn offsets into lines
	p      *unstable.Parser
}

// indexPositions walks data, which the decoder has already accepted.
func indexPositions(data []byte) *positions {
	ps := &positions{lines: map[string]int{}, counts: map[string]int{}, p: &unstable.Parser{}}
	for i, c := range data {
		if c == '\n' {
			ps.nl = append(ps.nl, i)
		}
	}
	ps.p.Reset(data)
	prefix := ""
	for ps.p.NextExpression() {
		e := ps.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			prefix = ps.header(e)
		case unstable.KeyValue:
			ps.keyValue(prefix, e)
		}
	}
	return ps
}

// line returns the line of path, or of its closest recorded parent. A
// path naming an array of tables as a whole ("dns" written [[dns]]) is
// at its first element's header.
func (ps *positions) line(path string) int {
	for path != "" {
		if l, ok := ps.lines[path]; ok {
			return l
		}
		if l, ok := ps.lines[indexKey(path, 1)]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func (ps *positions) lineAt(r unstable.Range) int {
	n, _ := slices.BinarySearch(ps.nl, int(r.Offset))
	return n + 1
}

func (ps *positions) record(path string, line int) {
	if _, ok := ps.lines[path]; !ok {
		ps.lines[path] = line
	}
}

// header resolves a [table] or [[array]] header to the path it opens:
// a part naming an array of tables refers to its last element.
func (ps *positions) header(e *unstable.Node) string {
	path := ""
	it := e.Key()
	for it.Next() {
		k := it.Node()
		path = joinKey(path, string(k.Data))
		line := ps.lineAt(k.Raw)
		if it.IsLast() && e.Kind == unstable.ArrayTable {
			ps.counts[path]++
			path = indexKey(path, ps.counts[path])
			ps.lines[path] = line
			return path
		}
		if n := ps.counts[path]; n > 0 {
			path = indexKey(path, n)
		}
		ps.record(path, line)
	}
	return path
}

func (ps *positions) keyValue(prefix string, e *unstable.Node) {
	path := prefix
	line := 0
	it := e.Key()
	for it.Next() {
		k := it.Node()
		path = joinKey(path, string(k.Data))
		line = ps.lineAt(k.Raw)
		ps.record(path, line)
	}
	ps.value(path, line, e.Value())
}

// value records the elements of arrays and the keys of inline tables.
func (ps *positions) value(path string, line int, v *unstable.Node) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			ps.keyValue(path, it.Node())
		}
	case unstable.Array:
		it := v.Children()
		for i := 1; it.Next(); i++ {
			el := it.Node()
			elPath := indexKey(path, i)
			elLine := ps.firstLine(el, line)
			ps.record(elPath, elLine)
			ps.value(elPath, elLine, el)
		}
	}
}

// firstLine is the line of v's first scalar or key, or def when it has
// none (an empty array or inline table).
func (ps *positions) firstLine(v *unstable.Node, def int) int {
	switch v.Kind {
	case unstable.Array, unstable.InlineTable:
		it := v.Children()
		if it.Next() {
			return ps.firstLine(it.Node(), def)
		}
		return def
	case unstable.KeyValue:
		it := v.Key()
		if it.Next() {
			return ps.lineAt(it.Node().Raw)
		}
		return def
	}
	if v.Raw.Length == 0 && v.Raw.Offset == 0 {
		return def
	}
	return ps.lineAt(v.Raw)
}

// joinKey appends key k to path, quoting k unless it is a bare TOML key.
func joinKey(path, k string) string {
	if !isBareKey(k) {
		k = strconv.Quote(k)
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// indexKey names the i-th (1-based) element of the array at path.
func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// tableAt returns the path of the table that the key/value pair at line
// belongs to: the last [table] or [[table]] header above line ("" for
// the top level, and for a header at line itself). data is a document
// go-toml refused for a key or table defined twice, which its parser
// still reads.
func tableAt(data []byte, line int) string {
	ps := indexPositions(data) // for its line table; the walk starts again
	ps.counts = map[string]int{}
	ps.p.Reset(data)
	prefix := ""
	for ps.p.NextExpression() {
		e := ps.p.Expression()
		if e.Kind != unstable.Table && e.Kind != unstable.ArrayTable {
			continue
		}
		it := e.Key()
		if !it.Next() || ps.lineAt(it.Node().Raw) > line {
			break
		}
		if ps.lineAt(it.Node().Raw) == line {
			return "" // the header defined twice, named in full by go-toml
		}
		prefix = ps.header(e)
	}
	return prefix
}
