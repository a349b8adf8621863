package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// decoder turns the decoded TOML document into a Config, collecting every
// problem with its position instead of stopping at the first.
type decoder struct {
	file string
	base string // directory of relative paths
	pos  *positions
	errs ErrorList

	owners      map[string]string // name → path of the site that has it
	defaultSite string            // path of the site with default = true
	top         *table            // the document's top level, for done's hint
	unknown     []unknownKey      // unknown keys of other tables, reported by top's done
	topDone     bool              // top's done ran: report at once
}

// unknownKey is a key no one read in table t.
type unknownKey struct {
	t *table
	k string
}

// errorf records a problem at key path.
func (d *decoder) errorf(path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: d.pos.line(path), Key: path, Err: fmt.Errorf(format, args...)})
}

// table reads the keys of one TOML table, remembering which were read so
// that the rest can be reported as unknown.
type table struct {
	d    *decoder
	path string
	m    map[string]any
	read map[string]bool
}

func (d *decoder) table(path string, m map[string]any) *table {
	t := &table{d: d, path: path, m: m, read: map[string]bool{}}
	if path == "" {
		d.top = t
	}
	return t
}

func (t *table) key(k string) string { return joinKey(t.path, k) }

func (t *table) get(k string) (any, bool) {
	t.read[k] = true
	v, ok := t.m[k]
	return v, ok
}

func (t *table) wrongType(k string, want string, v any) {
	t.d.errorf(t.key(k), "want %s, not %s", want, typeName(v))
}

// str reads a string into dst if the key is present.
func (t *table) str(k string, dst *string) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	s, ok := v.(string)
	if !ok {
		t.wrongType(k, "a string", v)
		return false
	}
	if hasNUL(t.d, t.key(k), s) {
		return false
	}
	*dst = s
	return true
}

// hasNUL refuses a string holding a NUL character (TOML's "\u0000"),
// at path. No value may hold one: a C library call reads the string up
// to it ("root\u0000x" is the user root), a system call refuses it only
// when the file is written or the program run. The value is not quoted:
// it may be a URL with a password.
func hasNUL(d *decoder, path, s string) bool {
	if !strings.ContainsRune(s, 0) {
		return false
	}
	d.errorf(path, "the value holds a NUL character (\\u0000), which no name, path, URL or argument may hold")
	return true
}

// flag reads a boolean into dst if the key is present.
func (t *table) flag(k string, dst *bool) {
	v, ok := t.get(k)
	if !ok {
		return
	}
	b, ok := v.(bool)
	if !ok {
		t.wrongType(k, "true or false", v)
		return
	}
	*dst = b
}

// integer reads an integer into dst if the key is present.
func (t *table) integer(k string, dst *int) {
	v, ok := t.get(k)
	if !ok {
		return
	}
	n, ok := v.(int64)
	if !ok {
		t.wrongType(k, "an integer", v)
		return
	}
	*dst = int(n)
}

// minDuration is the shortest duration a key takes: each bounds a run
// of a command, a webhook delivery or a wait for DNS, and anything
// shorter ("1ns", "5ms", a unit mistyped) would cut every one off at
// once, failing each notification or order without saying why.
const minDuration = time.Second

// duration reads a duration of at least minDuration written as a string
// ("60s", "5m").
func (t *table) duration(k string, dst *time.Duration) {
	var s string
	if !t.str(k, &s) {
		return
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil || d <= 0:
		t.d.errorf(t.key(k), "%q: want a positive duration such as \"60s\" or \"5m\"", s)
	case d < minDuration:
		t.d.errorf(t.key(k), "%q: shorter than %s, which would cut off every run at once: want a duration such as \"60s\" or \"5m\"", s, minDuration)
	default:
		*dst = d
	}
}

// strings reads a string or a list of strings into dst if the key is
// present, and returns the key path of each element kept, for messages
// about single elements. ok is false when the key is absent or not a
// string or list.
func (t *table) strings(k string, dst *[]string) (paths []string, ok bool) {
	v, ok := t.get(k)
	if !ok {
		return nil, false
	}
	if s, ok := v.(string); ok {
		if hasNUL(t.d, t.key(k), s) {
			return nil, false
		}
		*dst = []string{s}
		return []string{t.key(k)}, true
	}
	list, ok := v.([]any)
	if !ok {
		t.wrongType(k, "a string or a list of strings", v)
		return nil, false
	}
	out := make([]string, 0, len(list))
	for i, el := range list {
		s, ok := el.(string)
		if !ok {
			t.d.errorf(indexKey(t.key(k), i+1), "want a string, not %s", typeName(el))
			continue
		}
		if hasNUL(t.d, indexKey(t.key(k), i+1), s) {
			continue
		}
		out = append(out, s)
		paths = append(paths, indexKey(t.key(k), i+1))
	}
	*dst = out
	return paths, true
}

// sub returns the table at k, or nil if it is absent or not a table.
func (t *table) sub(k string) *table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.wrongType(k, "a table", v)
		return nil
	}
	return t.d.table(t.key(k), m)
}

// tables returns the elements of the array of tables at k ([[k]] or an
// array of inline tables).
func (t *table) tables(k string) []*table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		t.wrongType(k, fmt.Sprintf("[[%s]] tables", k), v)
		return nil
	}
	out := make([]*table, 0, len(list))
	for i, el := range list {
		p := indexKey(t.key(k), i+1)
		m, ok := el.(map[string]any)
		if !ok {
			t.d.errorf(p, "want a table, not %s", typeName(el))
			continue
		}
		out = append(out, t.d.table(p, m))
	}
	return out
}

// done reports every key of the table that was not read as unknown,
// with a suggestion when a known key is one typo away. Another table's
// keys wait for the top level's done: only once it has read all of its
// keys is it known whether one of them was written after a header by
// mistake.
func (t *table) done() {
	for _, k := range slices.Sorted(maps.Keys(t.m)) {
		if !t.read[k] {
			t.d.unknown = append(t.d.unknown, unknownKey{t, k})
		}
	}
	if t != t.d.top && !t.d.topDone {
		return
	}
	t.d.topDone = t.d.topDone || t == t.d.top
	for _, u := range t.d.unknown {
		u.t.reportUnknown(u.k)
	}
	t.d.unknown = nil
}

func (t *table) reportUnknown(k string) {
	if t != t.d.top && t.d.top.read[k] {
		// TOML puts every key after a [[site]] or [dns] header into that
		// table: a top-level key written late lands here.
		t.d.errorf(t.key(k), "unknown key here; %s is a top-level key: move it above the first [table] or [[table]] header", k)
		return
	}
	if sub := siteTable(k); sub != "" && t == t.d.top && t.read["site"] {
		t.d.errorf(t.key(k), "unknown key here; %s belongs to a site: write %s after the [[site]] it is for", k, sub)
		return
	}
	if s := suggest(k, slices.Collect(maps.Keys(t.read))); s != "" {
		t.d.errorf(t.key(k), "unknown key (did you mean %q?)", s)
		return
	}
	t.d.errorf(t.key(k), "unknown key")
}

// siteTable returns how table k of a [[site]] is written, or "" if k
// names none: written at the top level (without "site."), it is unknown
// there.
func siteTable(k string) string {
	switch k {
	case "route":
		return "[[site.route]]"
	case "client_auth", "headers":
		return "[site." + k + "]"
	}
	return ""
}

// suggest returns the candidate closest to k: one spelled the same but
// for case and "-" for "_" ("DNS", "AGREE_TERMS", "client-auth"), else
// one at most two edits away.
func suggest(k string, candidates []string) string {
	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	for _, c := range candidates {
		if fold(c) == fold(k) {
			return c
		}
	}
	best, bestDist := "", 3
	for _, c := range slices.Sorted(slices.Values(candidates)) {
		if d := editDistance(k, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// typeName describes a decoded TOML value for messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}
