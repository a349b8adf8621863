package server

import (
	"crypto/tls"
	"errors"

	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// alpnACME is the ALPN protocol of the tls-alpn-01 challenge (RFC 8737).
const alpnACME = "acme-tls/1"

var (
	errNoSite = errors.New("server: no site for this server name")
	errNoACME = errors.New("server: tls-alpn-01 is not enabled")
)

// tlsConfig is the one TLS configuration of the HTTPS listener, with
// the default (intermediate) profile. It is never replaced, so session
// tickets survive reloads; the site table behind GetCertificate is.
// Session tickets are on, with keys rotated by crypto/tls.
func (s *Server) tlsConfig() *tls.Config {
	c := &tls.Config{
		NextProtos:         []string{"h2", "http/1.1", alpnACME},
		GetCertificate:     s.getCertificate,
		GetConfigForClient: s.configForClient,
	}
	tlsprofile.Default.Apply(c)
	return c
}

// profileConfigs makes the configuration of each profile other than the
// default: the listener's, with the profile's versions and suites.
// crypto/tls takes session ticket keys from the listener's config, so
// one set of keys serves every profile.
func profileConfigs(base *tls.Config) map[tlsprofile.Profile]*tls.Config {
	m := make(map[tlsprofile.Profile]*tls.Config)
	for _, p := range []tlsprofile.Profile{tlsprofile.Modern} {
		c := base.Clone()
		c.GetConfigForClient = nil
		p.Apply(c)
		m[p] = c
	}
	return m
}

// rejectConfig makes crypto/tls end a handshake for an unknown name with
// an unrecognized_name alert (a Config without certificates does), and
// refuses session resumption, so a removed site stops at the handshake
// even for clients holding a ticket.
func rejectConfig() *tls.Config {
	c := &tls.Config{SessionTicketsDisabled: true}
	tlsprofile.Default.Apply(c)
	return c
}

// isACMEHello reports a tls-alpn-01 validation: a client offering only
// acme-tls/1, as RFC 8737 requires of the CA.
func isACMEHello(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == alpnACME
}

// configForClient picks the configuration of the site the hello
// selects: its profile's, or the refusal for no site. tls-alpn-01
// validations keep the listener's (intermediate) profile whatever the
// site's, so a CA is never turned away by a site's choice.
func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if isACMEHello(hello) {
		return nil, nil
	}
	st, _ := s.table.Load().forHello(hello)
	if lc, ok := hello.Conn.(*limitConn); ok {
		var auth *siteAuth
		if st != nil {
			auth = st.auth
		}
		lc.auth.Store(auth) // the rules this handshake is checked under
	}
	if st == nil {
		return s.reject, nil
	}
	return st.tlsConf, nil
}

// getCertificate selects the site by SNI: an exact name, then a wildcard,
// then the default site. On the hit path it is a map lookup and a pointer
// load (or the ACME Manager's own lookup), without allocation.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if isACMEHello(hello) {
		if s.acmeCert == nil {
			return nil, errNoACME
		}
		return s.acmeCert(hello)
	}
	st, matched := s.table.Load().forHello(hello)
	if st == nil {
		return nil, errNoSite
	}
	return st.certificate(hello, matched)
}
