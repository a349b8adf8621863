package server

import (
	"maps"
	"net/http"
	"strings"
)

// acmeChallengePrefix is the path under which a CA fetches http-01
// answers (RFC 8555 §8.3).
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// mayBeChallenge is the cheap test every request goes through first: a
// GET or HEAD under the http-01 path. It does not allocate.
func mayBeChallenge(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, acmeChallengePrefix) &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// notHeld is the next handler given to the ACME hook, and the challenge
// directory's answer for a token it has no file for: reaching it means
// no answer is held here for the request.
func notHeld(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNotFound)
}

// serveChallenge offers an http-01 request to each answerer in turn
// (the ACME hook, then the challenge directory) and reports whether one
// answered it. A 4xx from an answerer (an unknown or malformed token) is
// dropped unsent: the next one is asked, and after the last the request
// goes on to the site with an untouched response, as any other request
// would.
func (s *Server) serveChallenge(w http.ResponseWriter, r *http.Request) bool {
	for _, h := range s.challenges {
		cw := &challengeWriter{w: w}
		h.ServeHTTP(cw, r)
		if cw.status == 0 {
			cw.WriteHeader(http.StatusOK) // the answerer wrote nothing: net/http's empty 200
		}
		if !cw.declined() {
			return true
		}
	}
	return false
}

// challengeWriter holds the ACME hook's headers back until its status is
// known, then either passes the response through or swallows it.
type challengeWriter struct {
	w      http.ResponseWriter
	header http.Header
	status int // 0 until the hook writes
}

func (c *challengeWriter) Header() http.Header {
	if c.header == nil {
		c.header = make(http.Header)
	}
	return c.header
}

func (c *challengeWriter) WriteHeader(code int) {
	if c.status != 0 || code < 200 { // a second call, or 1xx: not the answer's status
		return
	}
	c.status = code
	if c.declined() {
		return
	}
	maps.Copy(c.w.Header(), c.header)
	c.w.WriteHeader(code)
}

func (c *challengeWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.declined() {
		return len(p), nil
	}
	return c.w.Write(p)
}

// declined reports a response meaning "no answer here".
func (c *challengeWriter) declined() bool { return c.status >= 400 && c.status < 500 }
