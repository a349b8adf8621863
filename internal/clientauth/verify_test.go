package clientauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestVerifyConnection runs real TLS handshakes with the Checker wired
// as the serving side does it.
func TestVerifyConnection(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	srv := ca.Issue(testenv.IssueOptions{CommonName: "localhost", IPAddresses: []string{"127.0.0.1"}})
	good, bad := client(ca, "good"), client(ca, "bad")
	ca.Revoke(bad.CertFile, "")
	tests := []struct {
		name   string
		mode   Mode
		client *testenv.IssuedCert
		want   Reason // "" for accepted, "tls" for refused by crypto/tls itself
	}{
		{"good", ModeRequire, good, ""},
		{"revoked", ModeRequire, bad, ReasonRevoked},
		{"none, required", ModeRequire, nil, "tls"}, // the TLS stack refuses it before VerifyConnection
		{"none, optional", ModeOptional, nil, ""},
		{"revoked, optional", ModeOptional, bad, ReasonRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{CAs: []*x509.Certificate{ca.Cert}, Mode: tt.mode, VerifyDepth: 1, Revocation: RevocationLeaf, CRLFiles: []string{ca.CRLFile}}
			chk := newChecker(t, p, Options{})
			err := handshake(t, chk, srv, tt.client)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("handshake: %v, want accepted", err)
				}
				return
			}
			if tt.want == "tls" {
				if err == nil {
					t.Fatal("handshake accepted, want refused")
				}
				return
			}
			wantRefusal(t, err, tt.want)
		})
	}
}

// TestCheckDepth: a chain longer than verify_depth is refused.
func TestCheckDepth(t *testing.T) {
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	inter := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Parent: root})
	c := client(inter, "c")
	chk := newChecker(t, Policy{CAs: []*x509.Certificate{root.Cert}, VerifyDepth: 1}, Options{})
	refused(t, chk, c, ReasonDepth)
	accept(t, newChecker(t, Policy{CAs: []*x509.Certificate{root.Cert}, VerifyDepth: 2}, Options{}), c)
}

// handshake serves one TLS connection with the server certificate srv
// and chk as VerifyConnection, connects to it with the client
// certificate c (none if nil), and returns the server's handshake error.
func handshake(t *testing.T, chk *Checker, srv, c *testenv.IssuedCert) error {
	t.Helper()
	srvCert, err := tls.LoadX509KeyPair(srv.ChainFile, srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	p := chk.Policy()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srvCert},
		ClientAuth:   p.ClientAuth(),
		ClientCAs:    p.Pool(),
		VerifyConnection: func(cs tls.ConnectionState) error {
			return chk.VerifyConnection(context.Background(), cs)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	served := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer func() { _ = conn.Close() }()
		err = conn.(*tls.Conn).Handshake()
		if err == nil {
			_, err = conn.Write([]byte("ok"))
		}
		served <- err
	}()

	roots := x509.NewCertPool()
	roots.AddCert(rootOf(srv.Issuer).Cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	if c != nil {
		cc, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cc}
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	clientErr := err
	if err == nil {
		_, clientErr = conn.Read(make([]byte, 2)) // TLS 1.3: the refusal arrives after the client's handshake
		_ = conn.Close()
	}
	serverErr := <-served
	if serverErr != nil {
		var alert tls.AlertError
		if clientErr == nil || !errors.As(clientErr, &alert) && !isNetClosed(clientErr) {
			t.Errorf("client saw %v after the server refused it, want a TLS alert", clientErr)
		}
	}
	return serverErr
}

// isNetClosed reports whether err is the connection being closed or
// reset rather than an alert (the alert may be lost in the race).
func isNetClosed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// TestCheckOddInput: chains no TLS stack would hand over are refused,
// never a panic.
func TestCheckOddInput(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	chk := newChecker(t, Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationChain, OCSP: true, CRLFiles: []string{ca.CRLFile}}, Options{})
	stranger := client(testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "other CA"}), "stranger")
	now := time.Now()
	valid := func() *x509.Certificate {
		return &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	}
	tests := []struct {
		name  string
		chain []*x509.Certificate
		want  Reason
	}{
		{"empty", nil, ReasonNoCertificate},
		{"nil leaf", []*x509.Certificate{nil}, ReasonNoCertificate},
		{"nil issuer", []*x509.Certificate{ca.Cert, nil}, ReasonUntrusted},
		{"zero certificate", []*x509.Certificate{{}, ca.Cert}, ReasonUntrusted},
		{"zero dates", []*x509.Certificate{{SerialNumber: big.NewInt(1)}, ca.Cert}, ReasonExpired},
		{"no serial", []*x509.Certificate{valid(), ca.Cert}, ReasonUntrusted},
		{"not the issuer", []*x509.Certificate{stranger.Cert, ca.Cert}, ReasonUnknown},
		{"too long", []*x509.Certificate{ca.Cert, ca.Cert, ca.Cert, ca.Cert}, ReasonDepth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRefusal(t, chk.Check(context.Background(), tt.chain), tt.want)
		})
	}
}
