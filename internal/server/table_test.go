package server

import (
	"net/url"
	"testing"
)

func mustURL(t *testing.T, path, raw string) *url.URL {
	t.Helper()
	return &url.URL{Path: path, RawPath: raw}
}

func TestNormalizeHost(t *testing.T) {
	tests := map[string]string{
		"example.com":        "example.com",
		"Example.COM":        "example.com",
		"example.com:8443":   "example.com",
		"example.com.":       "example.com",
		"example.com.:443":   "example.com",
		"[::1]:443":          "::1",
		"[::1]":              "::1",
		"::1":                "::1",
		"127.0.0.1:80":       "127.0.0.1",
		"":                   "",
		"xn--bcher-kva.test": "xn--bcher-kva.test",
	}
	for in, want := range tests {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeHostNoAlloc(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { normalizeHost("www.example.com:443") }); n != 0 {
		t.Errorf("normalizeHost allocates %v times", n)
	}
}

func TestMatchPrefix(t *testing.T) {
	tests := []struct {
		path, prefix string
		want         bool
	}{
		{"/api", "/api", true},
		{"/api/x", "/api", true},
		{"/apix", "/api", false},
		{"/api/", "/api/", true},
		{"/api", "/api/", true},
		{"/api/x/y", "/api/", true},
		{"/apix", "/api/", false},
		{"/", "/", true},
		{"/anything", "/", true},
		{"/ap", "/api", false},
	}
	for _, tt := range tests {
		if got := matchPrefix(tt.path, tt.prefix); got != tt.want {
			t.Errorf("matchPrefix(%q, %q) = %v, want %v", tt.path, tt.prefix, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	a, w, d := &site{name: "a"}, &site{name: "w"}, &site{name: "d"}
	tb := &table{
		exact: map[string]*site{"a.example.com": a},
		wild:  map[string]*site{"example.com": w},
		def:   d,
	}
	tests := map[string]*site{
		"a.example.com":   a,
		"b.example.com":   w,
		"x.b.example.com": nil, // a wildcard covers one label
		"example.com":     nil,
		"other.test":      nil,
	}
	for name, want := range tests {
		if got := tb.lookup(name); got != want {
			t.Errorf("lookup(%q) = %v, want %v", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { tb.lookup("b.example.com") }); n != 0 {
		t.Errorf("lookup allocates %v times", n)
	}
}

func TestNormalizeName(t *testing.T) {
	good := map[string]string{
		"Example.COM.":    "example.com",
		"*.example.com":   "*.example.com",
		"192.0.2.1":       "192.0.2.1",
		"2001:DB8::1":     "2001:db8::1",
		"_acme.example":   "_acme.example",
		"xn--bcher-kva.x": "xn--bcher-kva.x",
	}
	for in, want := range good {
		if got, err := normalizeName(in); err != nil || got != want {
			t.Errorf("normalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a..b", "*", "a.*.b", "**.a", "-a.b", "a b", "a/b", "é.test"} {
		if _, err := normalizeName(bad); err == nil {
			t.Errorf("normalizeName(%q) accepted", bad)
		}
	}
}
