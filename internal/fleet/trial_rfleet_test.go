package fleet

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/keys"
)

// TestTrialIdentityAgentClockBehind: the issuer's clock alone decides
// whether it accepts a client certificate, and it backdates them by 5
// minutes only. An agent whose clock runs behind the issuer's by more
// than that still takes the certificate it is answered (enrolment and
// renewal): refusing it would fail every renewal, and cut the agent off
// once its certificate expires. A certificate that starts far in the
// future is still refused.
func TestTrialIdentityAgentClockBehind(t *testing.T) {
	ctx := context.Background()
	fleetCA := newTrialCA(t, "tlspilot fleet CA")
	roots := x509.NewCertPool()
	roots.AddCert(fleetCA.cert)
	for _, tc := range []struct {
		name   string
		behind time.Duration // how far the agent's clock is behind the issuer's
		ok     bool
	}{
		{"in step", 0, true},
		{"10 minutes behind", 10 * time.Minute, true},
		{"half an hour behind", 30 * time.Minute, true},
		{"a day behind", 24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What the issuer signs at its own now, seen from the agent.
			issued := func(pub crypto.PublicKey) *x509.Certificate {
				return fleetCA.client(t, pub, "db1", func(c *x509.Certificate) {
					c.NotBefore, c.NotAfter = c.NotBefore.Add(tc.behind), c.NotAfter.Add(tc.behind)
				})
			}
			u := startHostileIssuer(t, fleetCA, func(pub crypto.PublicKey) EnrollResponse {
				return EnrollResponse{Host: "db1", Certificate: certPEM(issued(pub))}
			})
			c, err := NewClient(ClientOptions{Issuer: u, Roots: roots})
			if err != nil {
				t.Fatal(err)
			}
			id, err := c.Enroll(ctx, "token")
			if tc.ok != (err == nil) {
				t.Fatalf("enrol: %v, want accepted %v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			c, err = NewClient(ClientOptions{Issuer: u, Roots: roots, Identity: id})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.RenewIdentity(ctx); err != nil {
				t.Errorf("renewal: %v", err)
			}
		})
	}
}

// TestTrialUndecodableChainBlockRefused: a chain answered with a
// certificate block that does not decode (a damaged or cut intermediate)
// is refused, not stored and deployed without that certificate: the
// leaf alone, which clients without the intermediate cannot verify.
func TestTrialUndecodableChainBlockRefused(t *testing.T) {
	ctx := context.Background()
	names := []string{"db1.example.com"}
	for _, tc := range []struct {
		name   string
		damage func(block string) string
	}{
		{"a character not base64", func(b string) string {
			i := strings.Index(b, "\n") + 10
			return b[:i] + "!" + b[i+1:]
		}},
		{"cut before its end line", func(b string) string { return b[:strings.Index(b, "-----END")] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFaultyIssuer(t, func(der []byte) (int, any) {
				csr, err := x509.ParseCertificateRequest(der)
				if err != nil {
					return http.StatusBadRequest, errorResponse{err.Error()}
				}
				now := time.Now()
				good, err := testChain(csr.PublicKey, names, now.Add(-time.Hour), now.AddDate(0, 0, 90))
				if err != nil {
					return http.StatusInternalServerError, errorResponse{err.Error()}
				}
				leaf, rest := pem.Decode([]byte(good))
				return http.StatusOK, CertificateResponse{Status: CertValid, Fullchain: string(pem.EncodeToMemory(leaf)) + tc.damage(string(rest))}
			})
			e := newAgentEnv(t)
			k := e.keeper(t, f, false, names...)
			k.Pass(ctx, time.Now(), false)
			rec := record(t, k)
			if rec.Fullchain != "" || !strings.Contains(rec.LastError, "PEM") {
				t.Errorf("stored chain of %d certificate(s), last error %q; want it refused", strings.Count(rec.Fullchain, "BEGIN"), rec.LastError)
			}
			if _, err := os.Stat(filepath.Join(e.dir, "fullchain.pem")); err == nil {
				t.Error("a chain without its intermediate was deployed")
			}
		})
	}
}

// TestTrialCheckIssuedUnknownKeyUsageOnly: a leaf whose extended key
// usage lists only purposes Go does not name (no serverAuth) is no
// certificate for a TLS server either: every client refuses it. It is
// refused like one listing clientAuth only.
func TestTrialCheckIssuedUnknownKeyUsageOnly(t *testing.T) {
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"db1.example.com"}
	root := newTrialCA(t, "root")
	now := time.Now()
	for _, tc := range []struct {
		name    string
		known   []x509.ExtKeyUsage
		unknown []asn1.ObjectIdentifier
		ok      bool
	}{
		{"an unknown purpose only", nil, []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 99999, 1}}, false},
		{"serverAuth and an unknown purpose", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 99999, 1}}, true},
		{"no extended key usage", nil, nil, true},
	} {
		leaf := trialSign(t, &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 0, 90),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: tc.known, UnknownExtKeyUsage: tc.unknown, BasicConstraintsValid: true}, root.cert, root.key, key.Public())
		_, err := checkIssued(certPEM(leaf)+certPEM(root.cert), key.Public(), names, now)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v, want accepted %v", tc.name, err, tc.ok)
		}
	}
}
