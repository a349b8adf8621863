package tlspilot

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

func TestObtainOneName(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	m := startManager(t, p, testConfig(t, p, ev))
	if err := m.Manage(context.Background(), "one.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 30*time.Second)
	chain := handshake(t, m, "one.example.test", nil)
	verify(t, chain, p.IssuerRoots(t), "one.example.test")
	if got := p.Orders(); got != 1 {
		t.Errorf("orders = %d, want 1", got)
	}
	// The event follows the certificate into service (after the storage
	// notes the change): wait for it, then count.
	waitEvent(t, ev, EventObtained, 1, 10*time.Second)
	if n := len(ev.of(EventObtained)); n != 1 {
		t.Errorf("obtained events = %d, want 1", n)
	}
}

// TestObtainVariants obtains certificates for several names, each key
// type and both challenge types that need no DNS provider.
func TestObtainVariants(t *testing.T) {
	cases := []struct {
		name      string
		names     []string
		keyType   KeyType
		challenge string
	}{
		{"several names", []string{"a.example.test", "b.example.test", "c.example.test"}, ECDSAP256, HTTP01},
		{"idna name", []string{"bücher.example.test"}, ECDSAP256, HTTP01},
		{"p384", []string{"p384.example.test"}, ECDSAP384, HTTP01},
		{"rsa2048", []string{"rsa2048.example.test"}, RSA2048, HTTP01},
		{"rsa3072", []string{"rsa3072.example.test"}, RSA3072, HTTP01},
		{"rsa4096", []string{"rsa4096.example.test"}, RSA4096, HTTP01},
		{"tls-alpn-01", []string{"alpn.example.test", "alpn2.example.test"}, ECDSAP256, TLSALPN01},
		{"tls-alpn-01 rsa", []string{"alpn-rsa.example.test"}, RSA2048, TLSALPN01},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testenv.StartPebble(t, testenv.PebbleOptions{})
			cfg := testConfig(t, p, nil)
			cfg.KeyTypes = []KeyType{tc.keyType}
			cfg.Challenge = tc.challenge
			m := startManager(t, p, cfg)
			if err := m.Manage(context.Background(), tc.names...); err != nil {
				t.Fatal(err)
			}
			st := waitServing(t, m, 60*time.Second)
			if len(st) != 1 || st[0].KeyType != tc.keyType {
				t.Fatalf("status = %+v", st)
			}
			roots := p.IssuerRoots(t)
			for _, n := range st[0].Names {
				chain := handshake(t, m, n, nil)
				verify(t, chain, roots, n)
				if got := keyTypeOf(chain[0].PublicKey); got != tc.keyType.IsRSA() {
					t.Errorf("%s: RSA key = %v, want %v", n, got, tc.keyType.IsRSA())
				}
			}
			if got := p.Orders(); got != 1 {
				t.Errorf("orders = %d, want 1", got)
			}
		})
	}
}

func keyTypeOf(pub any) (isRSA bool) {
	switch pub.(type) {
	case *rsa.PublicKey:
		return true
	case *ecdsa.PublicKey:
		return false
	}
	panic("unexpected key type")
}

// TestObtainIP obtains a certificate for an IP address and serves it to a
// client that sends no SNI, as clients do for IP addresses.
func TestObtainIP(t *testing.T) {
	for _, ch := range []string{HTTP01, TLSALPN01} {
		t.Run(ch, func(t *testing.T) {
			p := testenv.StartPebble(t, testenv.PebbleOptions{})
			cfg := testConfig(t, p, nil)
			cfg.Challenge = ch
			m := startManager(t, p, cfg)
			if err := m.Manage(context.Background(), "127.0.0.1"); err != nil {
				t.Fatal(err)
			}
			waitServing(t, m, 30*time.Second)
			conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.TLSPort)), &tls.Config{RootCAs: p.IssuerRoots(t)})
			if err != nil {
				t.Fatalf("dial with verification against Pebble's root: %v", err)
			}
			defer conn.Close()
			leaf := conn.ConnectionState().PeerCertificates[0]
			if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
				t.Errorf("IP SANs = %v", leaf.IPAddresses)
			}
		})
	}
}

// TestObtainDual obtains an ECDSA and an RSA certificate for the same
// names: a client that supports ECDSA gets the ECDSA one, a client that
// offers only RSA cipher suites gets the RSA one.
func TestObtainDual(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	cfg.KeyTypes = []KeyType{ECDSAP256, RSA2048}
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), "dual.example.test", "www.dual.example.test"); err != nil {
		t.Fatal(err)
	}
	st := waitServing(t, m, 60*time.Second)
	types := []KeyType{st[0].KeyType, st[1].KeyType}
	slices.Sort(types)
	if len(st) != 2 || types[0] != ECDSAP256 || types[1] != RSA2048 {
		t.Fatalf("status = %+v", st)
	}
	roots := p.IssuerRoots(t)
	modern := handshake(t, m, "dual.example.test", nil)
	verify(t, modern, roots, "dual.example.test")
	if keyTypeOf(modern[0].PublicKey) {
		t.Error("a modern client got the RSA certificate")
	}
	rsaOnly := &tls.Config{
		MaxVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
	}
	old := handshake(t, m, "www.dual.example.test", rsaOnly)
	verify(t, old, roots, "www.dual.example.test")
	if !keyTypeOf(old[0].PublicKey) {
		t.Error("an RSA-only client got the ECDSA certificate")
	}
	if got := p.Orders(); got != 2 {
		t.Errorf("orders = %d, want 2", got)
	}
}
