package fleetca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"
)

// tlsPair returns a key and its certificate as a tls.Certificate.
func tlsPair(key *ecdsa.PrivateKey, c *x509.Certificate) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// serveOnce accepts one connection on a loopback listener with cfg,
// completes its handshake and returns the verified client host (or the
// handshake error) on the channel.
func serveOnce(t *testing.T, cfg *tls.Config) (string, <-chan error, <-chan string) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	errs, hosts := make(chan error, 1), make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			errs <- err
			return
		}
		errs <- nil
		hosts <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()
	return l.Addr().String(), errs, hosts
}

// TestMutualTLS: over a real TLS 1.3 connection on loopback, a server
// with the issuer's certificate that trusts the fleet CA alone for
// client certificates accepts an agent's certificate and refuses a
// client without one, one from another fleet CA, and the server's own
// certificate offered as a client's.
func TestMutualTLS(t *testing.T) {
	ca := newCA(t)
	serverKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serverCert, err := ca.IssueServer(serverKey.Public(), []string{"issuer.example.com", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	agentKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	agentCert, err := ca.IssueClient(newCSR(t, agentKey), "db1.example.com", 0)
	if err != nil {
		t.Fatal(err)
	}
	strangerCert, err := newCA(t).IssueClient(newCSR(t, agentKey), "db1.example.com", 0)
	if err != nil {
		t.Fatal(err)
	}
	server := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{tlsPair(serverKey, serverCert)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}
	for _, tc := range []struct {
		name   string
		client []tls.Certificate
		ok     bool
	}{
		{"agent certificate", []tls.Certificate{tlsPair(agentKey, agentCert)}, true},
		{"no certificate", nil, false},
		{"certificate of another fleet CA", []tls.Certificate{tlsPair(agentKey, strangerCert)}, false},
		{"server certificate as a client's", []tls.Certificate{tlsPair(serverKey, serverCert)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, errs, hosts := serveOnce(t, server)
			client := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool(), ServerName: "issuer.example.com", Certificates: tc.client}
			conn, err := tls.Dial("tcp", addr, client)
			if err == nil {
				// TLS 1.3: the client learns of a refused certificate at
				// its first read.
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = conn.Read(make([]byte, 1))
				_ = conn.Close()
			}
			serr := <-errs
			if tc.ok {
				if serr != nil {
					t.Fatalf("server handshake: %v", serr)
				}
				if h := <-hosts; h != "db1.example.com" {
					t.Errorf("peer %q", h)
				}
				return
			}
			if serr == nil {
				t.Fatal("server accepted the handshake")
			}
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("client was not told of the refusal: %v", err)
			}
		})
	}
}
