package server

import (
	"crypto/tls"
	"errors"
)

// alpnACME is the ALPN protocol of the tls-alpn-01 challenge (RFC 8737).
const alpnACME = "acme-tls/1"

var (
	errNoSite = errors.New("server: no site for this server name")
	errNoACME = errors.New("server: tls-alpn-01 is not enabled")
)

// tlsConfig is the one TLS configuration of the HTTPS listener. It is
// never replaced, so session tickets survive reloads; the site table
// behind GetCertificate is.
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// CurvePreferences is left to Go: X25519MLKEM768, then X25519
		// first among the classical curves. Session tickets are on, with
		// keys rotated by crypto/tls.
		NextProtos:         []string{"h2", "http/1.1", alpnACME},
		GetCertificate:     s.getCertificate,
		GetConfigForClient: s.configForClient,
	}
}

// rejectConfig makes crypto/tls end a handshake for an unknown name with
// an unrecognized_name alert (a Config without certificates does), and
// refuses session resumption, so a removed site stops at the handshake
// even for clients holding a ticket.
func rejectConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		SessionTicketsDisabled: true,
	}
}

// isACMEHello reports a tls-alpn-01 validation: a client offering only
// acme-tls/1, as RFC 8737 requires of the CA.
func isACMEHello(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == alpnACME
}

func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if isACMEHello(hello) {
		return nil, nil
	}
	if st, _ := s.table.Load().forHello(hello); st == nil {
		return s.reject, nil
	}
	return nil, nil
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
