package server

import (
	"errors"
	"net/http"
	"strings"
)

// redirect answers 308 to a fixed target in which "{uri}" stands for the
// request URI. The target is split once, so a request costs one string.
type redirect struct {
	before, after string
	withURI       bool
}

func newRedirect(target string) (*redirect, error) {
	if !validHeaderValue(target) || strings.ContainsAny(target, " \t") {
		return nil, errors.New("redirect: invalid target")
	}
	if strings.HasPrefix(target, "{uri}") {
		// "{uri}" of "//evil.example/" would make an open redirect.
		return nil, errors.New("redirect: target must start with a scheme and host or a path, not {uri}")
	}
	before, after, found := strings.Cut(target, "{uri}")
	if strings.Contains(after, "{uri}") {
		return nil, errors.New("redirect: {uri} may appear once")
	}
	return &redirect{before: before, after: after, withURI: found}, nil
}

func (h *redirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	loc := h.before
	if h.withURI {
		loc = h.before + requestURI(r) + h.after
	}
	w.Header()["Location"] = []string{loc}
	w.WriteHeader(http.StatusPermanentRedirect)
}

// requestURI is the path and query as the client sent them.
func requestURI(r *http.Request) string {
	if u := r.RequestURI; u != "" && u[0] == '/' {
		return u
	}
	return r.URL.RequestURI()
}

// httpsRedirect sends a plain HTTP request to the same host and URI over
// HTTPS. port is ":8443" or empty for 443.
func httpsRedirect(w http.ResponseWriter, r *http.Request, port string) {
	host := normalizeHost(r.Host)
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]" // IPv6 literal
	}
	w.Header()["Location"] = []string{"https://" + host + port + requestURI(r)}
	w.WriteHeader(http.StatusPermanentRedirect)
}
