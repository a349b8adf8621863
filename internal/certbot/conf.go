// Package certbot reads a certbot configuration directory (by default
// /etc/letsencrypt): the lineages under renewal/*.conf, live/ and
// archive/, and the ACME accounts under accounts/. It only reads; what
// is done with a lineage is the caller's business.
package certbot

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Conf is a renewal configuration file, in the subset of the configobj
// INI format that certbot writes: "key = value" lines at the top level,
// a [renewalparams] section and, inside it, [[webroot_map]]. Comments
// start with "#"; a value holding a comma outside quotes is a list.
type Conf struct {
	// File is the path the conf was read from, for messages.
	File string
	// Sections maps a section path ("" for the top level,
	// "renewalparams", "renewalparams.webroot_map") to its values.
	Sections map[string]map[string]Value
}

// Value is one "key = value" line.
type Value struct {
	// Line is the 1-based line number in the file.
	Line int
	// Raw is the text after "=", trimmed, quotes and comment removed.
	Raw string
	// List is set when the value is a list ("a, b" or "a,").
	List []string
}

// Get returns the value of key in section and whether it is there.
func (c *Conf) Get(section, key string) (Value, bool) {
	v, ok := c.Sections[section][key]
	return v, ok
}

// Str returns the value of key in section as a string ("" if absent;
// a list is joined with ", ").
func (c *Conf) Str(section, key string) string {
	v, ok := c.Get(section, key)
	if !ok {
		return ""
	}
	if v.List != nil {
		return strings.Join(v.List, ", ")
	}
	return v.Raw
}

// Errorf returns an error placed at key of section: "FILE:LINE: key: …",
// or "FILE: key: …" when the key is absent.
func (c *Conf) Errorf(section, key, format string, args ...any) error {
	name := key
	if section != "" {
		name = section + "." + key
	}
	if v, ok := c.Get(section, key); ok {
		return fmt.Errorf("%s:%d: %s: %w", c.File, v.Line, name, fmt.Errorf(format, args...))
	}
	return fmt.Errorf("%s: %s: %w", c.File, name, fmt.Errorf(format, args...))
}

// ReadConf reads and parses the renewal conf at path.
func ReadConf(path string) (*Conf, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read renewal conf: %w", err)
	}
	return ParseConf(path, b)
}

// ParseConf parses the text of a renewal conf; file names it in errors.
func ParseConf(file string, text []byte) (*Conf, error) {
	c := &Conf{File: file, Sections: map[string]map[string]Value{"": {}}}
	var path []string // the open section and its parents
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			p, err := section(line, path)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", file, n, err)
			}
			path = p
			if c.Sections[strings.Join(path, ".")] == nil {
				c.Sections[strings.Join(path, ".")] = map[string]Value{}
			}
			continue
		}
		key, v, err := keyValue(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		v.Line = n
		c.Sections[strings.Join(path, ".")][key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// section parses a section header: "[name]" opens a top-level section,
// "[[name]]" a subsection of the open top-level one, and so on by depth.
func section(line string, open []string) ([]string, error) {
	depth := 0
	for depth < len(line) && line[depth] == '[' {
		depth++
	}
	if i := strings.Index(line, "#"); i > 0 && strings.Count(line[:i], "]") >= depth {
		line = strings.TrimSpace(line[:i])
	}
	name := strings.TrimSpace(strings.TrimSuffix(line[depth:], strings.Repeat("]", depth)))
	switch {
	case !strings.HasSuffix(line, strings.Repeat("]", depth)) || name == "" || strings.ContainsAny(name, "[]"):
		return nil, fmt.Errorf("bad section header %q", line)
	case depth > len(open)+1:
		return nil, fmt.Errorf("section %q is nested deeper than the one before it", line)
	}
	return append(append([]string(nil), open[:depth-1]...), name), nil
}

// keyValue parses "key = value".
func keyValue(line string) (string, Value, error) {
	k, rest, ok := strings.Cut(line, "=")
	key := strings.TrimSpace(k)
	if !ok || key == "" {
		return "", Value{}, fmt.Errorf("want key = value, got %q", line)
	}
	items, list, err := splitValue(strings.TrimSpace(rest))
	if err != nil {
		return "", Value{}, fmt.Errorf("%s: %w", key, err)
	}
	v := Value{}
	if list {
		v.List = items
		v.Raw = strings.Join(items, ", ")
	} else if len(items) == 1 {
		v.Raw = items[0]
	}
	return key, v, nil
}

// splitValue splits a configobj value into its items, unquoting them and
// dropping a trailing comment. list reports whether the value is a list
// (it has a comma outside quotes).
func splitValue(s string) (items []string, list bool, err error) {
	var cur strings.Builder
	quoted := false // the current item was quoted
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\'':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, false, fmt.Errorf("unterminated quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			quoted = true
			i += end + 1
		case c == '#':
			i = len(s)
		case c == ',':
			list = true
			items = append(items, strings.TrimSpace(cur.String()))
			cur.Reset()
			quoted = false
		default:
			cur.WriteByte(c)
		}
	}
	if last := strings.TrimSpace(cur.String()); last != "" || quoted || !list {
		items = append(items, last)
	}
	return items, list, nil
}
