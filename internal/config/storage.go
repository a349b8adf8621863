package config

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Shapes of storage values that are surely not a directory the user meant,
// though each is a valid relative path that would otherwise be created
// next to the config file, and used, silently.
var (
	// libpqKeyword matches a keyword=value pair of a libpq connection
	// string (PostgreSQL's "Parameter Key Words").
	libpqKeyword = regexp.MustCompile(`(?i)(^|\s)(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|` +
		`sslrootcert|sslcert|sslkey|connect_timeout|application_name|options|target_session_attrs)\s*=`)
	// urlScheme matches the scheme of an absolute URL.
	urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)
	// shellVariable matches $NAME or ${NAME}, which no shell expands here.
	shellVariable = regexp.MustCompile(`\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)`)
)

// notDirectory reports, at path, a storage value p that is surely not a
// directory: a libpq key/value connection string, a URL of a scheme other
// than PostgreSQL's, a database address without its scheme, a path
// starting with ~ or holding $VAR (nothing expands them), or one with
// control characters or surrounding white space. Since the value may hold
// a password, no message quotes it.
func (d *decoder) notDirectory(path, p string) bool {
	first, _, _ := strings.Cut(p, "/")
	switch {
	case libpqKeyword.MatchString(p):
		d.errorf(path, "a libpq key/value connection string is not a storage: write it as a postgres:// URL%s", keywordValueHint(p))
	case urlScheme.MatchString(p):
		d.errorf(path, "a %s:// URL is not a storage: give a directory, or a postgres:// URL for a PostgreSQL database",
			strings.ToLower(urlScheme.FindStringSubmatch(p)[1]))
	case strings.Contains(first, "@"):
		d.errorf(path, "this looks like a database address (USER@HOST) without its scheme: write a postgres:// URL "+
			"(postgres://USER@HOST[:PORT]/DATABASE), or a directory path")
	case strings.HasPrefix(p, "~"):
		d.errorf(path, "~ is not expanded in the config: write the whole path, such as /home/USER/...")
	case shellVariable.MatchString(p):
		d.errorf(path, "%s is not expanded in the config: write the whole path", shellVariable.FindString(p))
	case strings.TrimSpace(p) != p:
		d.errorf(path, "the path starts or ends with white space")
	case strings.ContainsFunc(p, unicode.IsControl):
		d.errorf(path, "the path holds a control character")
	default:
		return false
	}
	return true
}

// keywordValueHint returns the postgres:// URL equivalent to the libpq
// connection string s, without its password, for the message refusing s;
// or a generic form when s cannot be parsed.
func keywordValueHint(s string) string {
	kv, ok := parseKeywordValue(s)
	if !ok {
		return " (postgres://USER@HOST[:PORT]/DATABASE?sslmode=verify-full); a password goes in PGPASSWORD or a passfile"
	}
	hint := `: storage = "` + keywordValueURL(kv) + `"`
	if _, ok := kv["password"]; ok {
		hint += ", and give the password by PGPASSWORD or a passfile (~/.pgpass, or the file PGPASSFILE names), never in the config"
	}
	return hint
}

// keywordValueURL builds a postgres:// URL from libpq settings, leaving
// out the password. A host that is a socket directory goes in the query,
// as libpq reads it there.
func keywordValueURL(kv map[string]string) string {
	u := url.URL{Scheme: "postgres", Path: "/" + kv["dbname"]}
	if kv["user"] != "" {
		u.User = url.User(kv["user"])
	}
	q := url.Values{}
	switch host, port := kv["host"], kv["port"]; {
	case strings.HasPrefix(host, "/"):
		q.Set("host", host)
		if port != "" {
			q.Set("port", port)
		}
	case port != "" && !strings.Contains(host, ","):
		u.Host = net.JoinHostPort(host, port)
	default:
		u.Host = host
		if port != "" {
			q.Set("port", port)
		}
	}
	for k, v := range kv {
		if !slices.Contains([]string{"host", "port", "user", "dbname", "password"}, k) {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// parseKeywordValue parses a libpq connection string: keyword = value
// pairs separated by white space, a value single-quoted when it holds
// white space, with \' and \\ escaped. ok is false for anything else.
func parseKeywordValue(s string) (kv map[string]string, ok bool) {
	kv = map[string]string{}
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			return kv, len(kv) > 0
		}
		key, rest, found := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		if !found || key == "" || strings.ContainsFunc(key, func(r rune) bool { return !unicode.IsLetter(r) && r != '_' }) {
			return nil, false
		}
		var val string
		if val, s, ok = keywordValue(strings.TrimLeftFunc(rest, unicode.IsSpace)); !ok {
			return nil, false
		}
		kv[strings.ToLower(key)] = val
	}
}

// keywordValue splits the value at the start of s from the rest.
func keywordValue(s string) (val, rest string, ok bool) {
	if !strings.HasPrefix(s, "'") {
		i := strings.IndexFunc(s, unicode.IsSpace)
		if i < 0 {
			return s, "", true
		}
		return s[:i], s[i:], true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '\'':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}
