// Package tlsprofile holds the TLS parameters of Mozilla's server side
// TLS profiles (https://wiki.mozilla.org/Security/Server_Side_TLS,
// version 5.7), restricted to what crypto/tls implements: every HTTPS
// listener of tlspilot, and the Manager's TLSConfig, follow one of them.
package tlsprofile

import (
	"crypto/tls"
	"fmt"
)

// Profile names a Mozilla server-side TLS profile.
type Profile string

// The profiles. Mozilla's "old" profile (TLS 1.0, CBC and 3DES suites)
// is deliberately not offered.
const (
	// Intermediate accepts TLS 1.3 and TLS 1.2 with ECDHE key exchange
	// and AEAD suites only (AES-GCM and ChaCha20-Poly1305, ECDSA or RSA
	// certificates). Mozilla's DHE suites are left out: crypto/tls has
	// none. It serves every client of the last decade.
	Intermediate Profile = "intermediate"
	// Modern accepts TLS 1.3 only.
	Modern Profile = "modern"

	// Default is the profile used when none is chosen.
	Default = Intermediate
)

// Parse returns the profile named s; "" gives Default.
func Parse(s string) (Profile, error) {
	switch p := Profile(s); p {
	case "":
		return Default, nil
	case Intermediate, Modern:
		return p, nil
	}
	return "", fmt.Errorf("unknown TLS profile %q (want %q or %q)", s, Intermediate, Modern)
}

// MinVersion is the lowest protocol version the profile accepts; the
// highest is always TLS 1.3.
func (p Profile) MinVersion() uint16 {
	if p == Modern {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// CipherSuites returns the TLS 1.2 suites of the profile, in Mozilla's
// order (a fresh slice each call). TLS 1.3 suites are not configurable
// in crypto/tls; all three it implements (AES-128-GCM, AES-256-GCM,
// ChaCha20-Poly1305) are in both profiles.
func (p Profile) CipherSuites() []uint16 {
	if p == Modern {
		return nil
	}
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// CurvePreferences returns the key exchange groups of both profiles:
// the post-quantum hybrid first, then Mozilla's X25519, P-256, P-384.
func CurvePreferences() []tls.CurveID {
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}
}

// Apply sets the protocol versions, cipher suites and curves of c to
// the profile's, leaving every other field alone.
func (p Profile) Apply(c *tls.Config) {
	c.MinVersion = p.MinVersion()
	c.MaxVersion = tls.VersionTLS13
	c.CipherSuites = p.CipherSuites()
	c.CurvePreferences = CurvePreferences()
}
