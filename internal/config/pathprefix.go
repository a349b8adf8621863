package config

import (
	"path"
	"strings"
)

// pathPrefix checks a path prefix that requests are matched against
// (a route's path, require_paths) and reports whether it is good. The
// server matches prefixes literally, at segment boundaries, against the
// request path decoded and cleaned ("//a", "/./a", "/x/../a" and
// "/%61" are all "/a"), so a prefix written any other way matches no
// request: a route that never serves, or a require_paths entry that
// protects nothing. Such a prefix is refused, with the form to write.
func (d *decoder) pathPrefix(key, p string) bool {
	var problem string
	switch {
	case !strings.HasPrefix(p, "/"):
		problem = `a path starts with "/"`
	case strings.ContainsAny(p, "?#"):
		problem = "a path prefix has no query or fragment: requests are matched on their path alone"
	case strings.Contains(p, "*"):
		problem = "a path prefix is matched as written, with no wildcard: \"/admin/\" covers everything under /admin/"
	case hasEscape(p):
		problem = "write the path decoded: requests are matched on their decoded path, so a %-escape here matches nothing"
	case cleanPrefix(p) != p:
		problem = "write it as \"" + cleanPrefix(p) + "\": requests are matched on their cleaned path (no //, . or .. segments), so this matches nothing"
	default:
		return true
	}
	d.errorf(key, "%q: %s", p, problem)
	return false
}

// cleanPrefix is p as the server cleans request paths: path.Clean, with
// a trailing slash kept.
func cleanPrefix(p string) string {
	c := path.Clean(p)
	if c != "/" && strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c
}

// hasEscape reports whether p holds a %-escape (%2F, %61): a literal "%"
// not followed by two hexadecimal digits can be in a decoded path.
func hasEscape(p string) bool {
	for i := 0; i+2 < len(p); i++ {
		if p[i] == '%' && isHex(p[i+1]) && isHex(p[i+2]) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
