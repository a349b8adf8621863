package issuance_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/keys"
)

// externalCSR makes a key that is not the flow's (an agent's) and a CSR
// for name with it.
func externalCSR(t *testing.T, name string) (crypto.Signer, *x509.CertificateRequest) {
	t.Helper()
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, k)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return k, csr
}

func samePublic(a, b crypto.PublicKey) bool {
	return a.(interface{ Equal(crypto.PublicKey) bool }).Equal(b)
}

// TestObtainForCSR: a request with a CSR gets a certificate for the CSR's
// key, and the flow keeps no private key at any step.
func TestObtainForCSR(t *testing.T) {
	e := newEnv(t)
	req := request("csr.example.test")
	k, csr := externalCSR(t, "csr.example.test")
	req.CSR = csr
	c, err := e.flow().Obtain(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if c.Key != nil {
		t.Error("the result holds a key of the flow's own")
	}
	leaf, err := x509.ParseCertificate(firstDER(t, c.ChainPEM))
	if err != nil {
		t.Fatal(err)
	}
	if !samePublic(leaf.PublicKey, k.Public()) {
		t.Error("the certificate is not for the CSR's key")
	}
	p, err := e.store.LoadProgress(t.Context(), req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Key != nil || p.SealedKey != "" {
		t.Error("the order progress holds a private key for a CSR request")
	}
}

// TestResumeForCSR stops the flow as the CSR reaches the CA, then resumes
// it: with the same CSR the saved order completes (one order, no second
// finalize); with a CSR for another key, the saved order is of no use
// and a new one is placed for the new key.
func TestResumeForCSR(t *testing.T) {
	for _, same := range []bool{true, false} {
		name := map[bool]string{true: "same-csr.example.test", false: "other-csr.example.test"}[same]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			req := request(name)
			_, req.CSR = externalCSR(t, name)
			ctx, cancel := context.WithCancel(t.Context())
			e.p.SetFault(stopAfter(t, e.p, "/finalize-order/", func(r *http.Request) {
				cancel()
				select {
				case <-r.Context().Done():
				case <-time.After(time.Minute):
				}
			}))
			if _, err := e.flow().Obtain(ctx, req); !errors.Is(err, context.Canceled) {
				t.Fatalf("Obtain returned %v, want it canceled at finalize", err)
			}
			e.p.SetFault(nil)
			p, err := e.store.LoadProgress(t.Context(), req.ID)
			if err != nil || len(p.CSR) == 0 {
				t.Fatalf("order progress after the CSR was sent: CSR %d bytes, error %v", len(p.CSR), err)
			}
			waitOrder(t, e, p.OrderURL, "valid")
			k := crypto.Signer(nil)
			if !same {
				k, req.CSR = externalCSR(t, name)
			}
			finalizes := e.p.RequestsTo("/finalize-order/")
			c, err := e.flow().Obtain(t.Context(), req)
			if err != nil {
				t.Fatalf("resumed Obtain: %v", err)
			}
			leaf, err := x509.ParseCertificate(firstDER(t, c.ChainPEM))
			if err != nil {
				t.Fatal(err)
			}
			if !samePublic(leaf.PublicKey, req.CSR.PublicKey) {
				t.Error("the certificate is not for the key of the CSR of the last request")
			}
			wantOrders, wantFinalizes := 1, 0
			if !same {
				wantOrders, wantFinalizes = 2, 1
				if !samePublic(leaf.PublicKey, k.Public()) {
					t.Error("the certificate is not for the new key")
				}
			}
			if n := e.p.Orders(); n != wantOrders {
				t.Errorf("the CA saw %d orders, want %d", n, wantOrders)
			}
			if n := e.p.RequestsTo("/finalize-order/") - finalizes; n != wantFinalizes {
				t.Errorf("%d finalize requests after the restart, want %d", n, wantFinalizes)
			}
		})
	}
}

// firstDER returns the first certificate of a PEM chain.
func firstDER(t *testing.T, chainPEM string) []byte {
	t.Helper()
	b, _ := pem.Decode([]byte(chainPEM))
	if b == nil {
		t.Fatal("no PEM in chain")
	}
	return b.Bytes
}
