package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// hstsValue is sent on HTTPS responses of sites with HSTS: two years,
// subdomains included.
const hstsValue = "max-age=63072000; includeSubDomains"

// header is one precomputed response header. val is shared by every
// response of the site and must never be modified; its capacity equals
// its length, so an append by a handler copies it.
type header struct {
	key  string
	val  []string
	dflt bool // a default (not configured): an upstream's own value wins
}

// setHeaders copies precomputed headers into h without allocating
// values.
func setHeaders(h http.Header, hs []header) {
	for i := range hs {
		h[hs[i].key] = hs[i].val
	}
}

// buildHeaders computes a site's response headers for HTTPS (with HSTS
// when enabled) or plain HTTP.
func buildHeaders(s *Site, overTLS bool) ([]header, error) {
	var hs []header
	set := func(k, v string) {
		k = http.CanonicalHeaderKey(k)
		hs = slices.DeleteFunc(hs, func(h header) bool { return h.key == k })
		if v != "" {
			hs = append(hs, header{key: k, val: []string{v}[:1:1]})
		}
	}
	// A default that a proxied upstream's own value replaces (a
	// configured header, below, replaces the upstream's instead): an
	// application's Referrer-Policy is its own choice, stricter or not.
	set("Referrer-Policy", "strict-origin-when-cross-origin")
	hs[0].dflt = true
	// nosniff has no other meaningful value: it stays, whatever an
	// upstream sends.
	set("X-Content-Type-Options", "nosniff")
	if s.HSTS && overTLS {
		set("Strict-Transport-Security", hstsValue)
	}
	if s.CSP != "" {
		if !validHeaderValue(s.CSP) {
			return nil, fmt.Errorf("csp: invalid header value")
		}
		set("Content-Security-Policy", s.CSP)
	}
	keys := make([]string, 0, len(s.Headers))
	for k := range s.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := s.Headers[k]
		if !validHeaderName(k) {
			return nil, fmt.Errorf("header %q: invalid name", k)
		}
		if !validHeaderValue(v) {
			return nil, fmt.Errorf("header %s: invalid value", k)
		}
		set(k, v)
	}
	return hs, nil
}

// proxyHeaders is what a site's proxy does with the site's headers.
type proxyHeaders struct {
	// keys are those the site's configuration sets: an upstream's
	// headers of the same name give way to the site's.
	keys []string
	// defaults are the site's defaults, which give way to an upstream's
	// own (yieldDefaults), and which a 101 answer, written without
	// logWriter.WriteHeader, gets from the proxy where it lacks them.
	defaults []header
}

// proxyHeadersOf splits a site's headers for its proxies.
func proxyHeadersOf(hs []header) proxyHeaders {
	var ph proxyHeaders
	for _, h := range hs {
		if h.dflt {
			ph.defaults = append(ph.defaults, h)
		} else {
			ph.keys = append(ph.keys, h.key)
		}
	}
	return ph
}

// yieldDefaults removes the site's default headers from the response
// before a proxy copies the upstream's in: an upstream that sets one
// (Referrer-Policy: no-referrer, say) keeps its value, one that does not
// gets the default back as the answer is written (logWriter.WriteHeader).
// A header the site configures is kept and wins (headerKeys).
func (w *logWriter) yieldDefaults() {
	h := w.Header()
	for _, sh := range w.headers {
		if sh.dflt {
			delete(h, sh.key)
			w.yielded = true
		}
	}
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
