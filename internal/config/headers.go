package config

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// siteHeaderKeys maps, in lower case, the response headers that keys of
// site s set themselves to those keys: csp sends Content-Security-Policy,
// hsts Strict-Transport-Security.
func siteHeaderKeys(s *Site) map[string]string {
	m := map[string]string{}
	if s.CSP != "" {
		m["content-security-policy"] = "csp"
	}
	if s.HSTS {
		m["strict-transport-security"] = "hsts"
	}
	return m
}

// headers decodes [site.headers]. Header names are not case-sensitive:
// two keys naming one header ("X-Frame-Options", "x-frame-options"), or
// a header that a key of the site sets (bySite, from siteHeaderKeys:
// Content-Security-Policy beside csp, Strict-Transport-Security beside
// hsts), would leave one value silently unused, and are refused. The
// later one in the file is the one named.
func (d *decoder) headers(t *table, bySite map[string]string) map[string]string {
	h := make(map[string]string, len(t.m))
	seen := maps.Clone(bySite)
	for _, k := range d.inFileOrder(t) {
		var v string
		if !t.str(k, &v) {
			continue
		}
		switch prev, dup := seen[strings.ToLower(k)]; {
		case !httpguts.ValidHeaderFieldName(k):
			d.errorf(t.key(k), "not a valid header name")
		case !httpguts.ValidHeaderFieldValue(v):
			d.errorf(t.key(k), "not a valid header value")
		case dup && bySite[strings.ToLower(k)] == prev:
			d.errorf(t.key(k), "the same header as %s (line %d), which sends it: keep one (for a value of your own, drop %s)", prev, d.pos.line(siteKey(t, prev)), prev)
		case dup:
			d.errorf(t.key(k), "the same header as %s (line %d): header names are not case-sensitive, keep one", prev, d.pos.line(t.key(prev)))
		default:
			seen[strings.ToLower(k)] = k
			h[k] = v
		}
	}
	return h
}

// inFileOrder returns the keys of t by the line they are written on.
func (d *decoder) inFileOrder(t *table) []string {
	return slices.SortedFunc(maps.Keys(t.m), func(a, b string) int {
		return cmp.Or(cmp.Compare(d.pos.line(t.key(a)), d.pos.line(t.key(b))), strings.Compare(a, b))
	})
}

// siteKey is the key path of k, a key of the site whose [site.headers]
// is t.
func siteKey(t *table, k string) string {
	return strings.TrimSuffix(t.path, ".headers") + "." + k
}
