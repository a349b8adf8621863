package server

import "net/http"

// serveTLS answers http-01 challenges, then routes an HTTPS request to
// its site: the Host must name the site selected by the connection's SNI
// (421 otherwise, so the client retries on a connection of its own).
func (s *Server) serveTLS(w http.ResponseWriter, r *http.Request) {
	if mayBeChallenge(r) && s.serveChallenge(w, r) {
		return
	}
	st := s.table.Load().forTLSRequest(r)
	if st == nil {
		http.Error(w, "421 misdirected request", http.StatusMisdirectedRequest)
		return
	}
	if !st.admits(r) {
		// The connection is of no more use to its site: closed after
		// this answer (GOAWAY in HTTP/2), or a client that does not
		// retry a 421 on a new connection itself would get 421 on it
		// for as long as it kept it.
		w.Header().Set("Connection", "close")
		http.Error(w, "421 misdirected request", http.StatusMisdirectedRequest)
		return
	}
	setSite(w, st.name)
	siteHeaders(w, st.tlsHeaders)
	if st.auth != nil && !st.auth.allows(r) {
		http.Error(w, "403 forbidden: this path needs a client certificate", http.StatusForbidden)
		return
	}
	dispatch(w, r, st)
}

// servePlain answers http-01 challenges, then redirects to HTTPS or
// serves sites with HTTPRedirect off.
func (s *Server) servePlain(w http.ResponseWriter, r *http.Request) {
	if mayBeChallenge(r) && s.serveChallenge(w, r) {
		return
	}
	st := s.table.Load().forPlainRequest(r)
	if st == nil {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	setSite(w, st.name)
	if st.httpRedirect {
		if r.Host == "" {
			http.Error(w, "400 missing Host", http.StatusBadRequest)
			return
		}
		httpsRedirect(w, r, s.port)
		return
	}
	siteHeaders(w, st.plainHeaders)
	dispatch(w, r, st)
}

// admits reports whether the site, as it is now, would have allowed the
// handshake of r's connection: one made before a reload that raised the
// site's TLS version, or added or tightened its client authentication,
// is answered 421 (as a misdirected one is), so that the client makes a
// new handshake under the new rules.
func (st *site) admits(r *http.Request) bool {
	if r.TLS != nil && st.tlsConf != nil && r.TLS.Version < st.tlsConf.MinVersion {
		return false
	}
	return st.auth == nil || st.auth.checkedOn(r)
}

func dispatch(w http.ResponseWriter, r *http.Request, st *site) {
	h := st.handler(cleanPath(r.URL.Path))
	if h == nil {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	h.ServeHTTP(w, r)
}
