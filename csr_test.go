package tlspilot

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// agentCSR makes a key the Manager never sees and a CSR for names.
func agentCSR(t *testing.T, names ...string) (crypto.Signer, *x509.CertificateRequest) {
	t.Helper()
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, k)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return k, csr
}

// TestObtainCSRBatched: eight CSRs (each for a name and its wildcard)
// obtained at once with dns-01 through BIND: each certificate is for its
// CSR's key and names, the sixteen records go to the DNS server in few
// updates (the batcher's), and nothing is left in the zone.
func TestObtainCSRBatched(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	const n = 8
	// The first update waits until every order has fetched its
	// authorizations (and so is about to present its records): the
	// records that come meanwhile must wait for the next update, whatever
	// the load of the machine.
	prov := &countingProvider{Provider: &gatedProvider{Provider: rfc2136For(t, b), ready: func() bool {
		return p.RequestsTo("/authZ/") >= 2*n
	}}}
	m := startManager(t, p, dnsConfig(t, p, prov, b.Addr, b.Port, nil))
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := fmt.Sprintf("host%d.example.test", i)
			k, csr := agentCSR(t, host, "*."+host)
			c, err := m.ObtainCSR(t.Context(), fmt.Sprintf("fleet-host%d", i), csr, []string{host, "*." + host})
			if err != nil {
				errs[i] = err
				return
			}
			if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(c.Leaf.PublicKey) {
				errs[i] = fmt.Errorf("%s: the certificate is not for the CSR's key", host)
			}
			if err := c.Leaf.VerifyHostname("www." + host); err != nil {
				errs[i] = fmt.Errorf("%s: %w", host, err)
			}
			if c.OrderURL == "" {
				errs[i] = fmt.Errorf("%s: no order URL", host)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// Sixteen records; one update per order would be eight: the first,
	// then the others together (one more when an order was slow to come).
	if adds := prov.adds.Load(); adds > 3 {
		t.Errorf("%d DNS updates added the records of %d orders presented at once; want them batched", adds, n)
	}
	for i := range n {
		wantTXT(t, b, fmt.Sprintf("_acme-challenge.host%d.example.test", i))
	}
	if orders := p.Orders(); orders != n {
		t.Errorf("Pebble saw %d orders, want %d", orders, n)
	}
}

// TestObtainCSRRefusals: without dns-01, with an identifier that is not
// one key segment, or with a bad CSR signature, nothing is ordered.
func TestObtainCSRRefusals(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	m := startManager(t, p, testConfig(t, p, nil))
	_, csr := agentCSR(t, "a.example.test")
	if _, err := m.ObtainCSR(t.Context(), "fleet-a", csr, []string{"a.example.test"}); err == nil {
		t.Error("ObtainCSR without dns-01 succeeded")
	}
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	p2 := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	m = startManager(t, p2, dnsConfig(t, p2, rfc2136For(t, b), b.Addr, b.Port, nil))
	for _, id := range []string{"", "../x", "a/b", ".."} {
		if _, err := m.ObtainCSR(t.Context(), id, csr, []string{"a.example.test"}); err == nil {
			t.Errorf("ObtainCSR with identifier %q succeeded", id)
		}
	}
	bad := *csr
	bad.Signature = append([]byte(nil), csr.Signature...)
	bad.Signature[len(bad.Signature)-1] ^= 1
	if _, err := m.ObtainCSR(t.Context(), "fleet-a", &bad, []string{"a.example.test"}); err == nil {
		t.Error("ObtainCSR with a bad CSR signature succeeded")
	}
	if n := p.Orders() + p2.Orders(); n != 0 {
		t.Errorf("Pebble saw %d orders", n)
	}
}

// gatedProvider holds its first Present until ready reports true (or a
// minute passes), then half a second more.
type gatedProvider struct {
	dns01.Provider
	ready func() bool
	once  sync.Once
}

func (g *gatedProvider) Present(ctx context.Context, recs []dns01.Record) error {
	g.once.Do(func() {
		for deadline := time.Now().Add(time.Minute); !g.ready() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
	})
	return g.Provider.Present(ctx, recs)
}
