package fleet

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/provider"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/fleetca"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
)

// countingDNS counts the provider calls that add records: one DNS
// UPDATE message per call and zone.
type countingDNS struct {
	dns01.Provider
	presents atomic.Int64
}

func (c *countingDNS) Present(ctx context.Context, recs []dns01.Record) error {
	c.presents.Add(1)
	return c.Provider.Present(ctx, recs)
}

// engine is the issuer's ACME side for a test: Pebble validating dns-01
// against BIND, which the Manager updates with RFC 2136.
type engine struct {
	m   *tlspilot.Manager
	p   *testenv.Pebble
	b   *testenv.BIND
	dns *countingDNS
	dir string // the Manager's storage
}

// startEngine starts BIND (zone example.test), Pebble and a Manager that
// solves dns-01, and runs it until the test ends.
func startEngine(t *testing.T) *engine {
	t.Helper()
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{{Name: "example.test", Updatable: true}}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	prov, err := provider.New(dns01.Config{Provider: "rfc2136", Server: b.Addr, TSIGKey: b.KeyName,
		TSIGAlgorithm: b.KeyAlgorithm, TSIGSecretFile: b.SecretFile(t)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{p: p, b: b, dns: &countingDNS{Provider: prov}, dir: t.TempDir()}
	e.m = e.start(t)
	return e
}

// start makes a Manager over the engine's storage and runs it until the
// test ends.
func (e *engine) start(t *testing.T) *tlspilot.Manager {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m, err := tlspilot.New(ctx, tlspilot.Config{CA: e.p.DirectoryURL, CARoots: e.p.Roots, AgreeTerms: true,
		StorageDir: e.dir, Challenge: tlspilot.DNS01, DNSProvider: e.dns,
		DNSPropagation: dns01.PropagationOptions{Resolvers: []string{e.b.Addr}, AuthoritativePort: e.b.Port,
			Interval: 50 * time.Millisecond, Timeout: 20 * time.Second},
		Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// auditLog collects the audit trail in memory.
type auditLog struct {
	mu   sync.Mutex
	recs []AuditRecord
}

func (l *auditLog) Append(_ context.Context, r AuditRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}

func (l *auditLog) Query(context.Context, AuditQuery) ([]AuditRecord, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]AuditRecord(nil), l.recs...), nil
}

func (l *auditLog) of(decision string) []AuditRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AuditRecord
	for _, r := range l.recs {
		if r.Decision == decision {
			out = append(out, r)
		}
	}
	return out
}

// orderingIssuer is an issuer's API that obtains certificates through
// o, over a registry in st.
type orderingIssuer struct {
	*issuer
	st     storage.Storage
	audit  *auditLog
	cancel context.CancelFunc
	done   chan error
}

// startOrderingIssuer serves the API with o as its engine. Its storage
// is st (a new one if nil), so that a test can stop it and start another
// over the same records.
func startOrderingIssuer(t *testing.T, o Orderer, st storage.Storage, ca *fleetca.CA, audit *auditLog) *orderingIssuer {
	t.Helper()
	return startOrderingIssuerSetup(t, o, st, ca, audit, "")
}

// startOrderingIssuerSetup is startOrderingIssuer with ServerOptions.Setup.
func startOrderingIssuerSetup(t *testing.T, o Orderer, st storage.Storage, ca *fleetca.CA, audit *auditLog, setup string) *orderingIssuer {
	t.Helper()
	if st == nil {
		_, st = newRegistry(t)
	}
	reg, err := New(Options{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	if ca == nil {
		sealer, err := keys.LoadOrCreateSealer(filepath.Join(t.TempDir(), "kek"))
		if err != nil {
			t.Fatal(err)
		}
		if ca, _, err = fleetca.Create(context.Background(), fleetca.Options{Storage: st, Sealer: sealer}); err != nil {
			t.Fatal(err)
		}
	}
	if audit == nil {
		audit = &auditLog{}
	}
	srv, err := NewServer(ServerOptions{CA: ca, Registry: reg, Names: []string{"127.0.0.1"}, Orderer: o, Auditor: audit,
		Logger: testenv.Logger(t), Setup: setup})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	is := &orderingIssuer{issuer: &issuer{reg: reg, ca: ca, url: "https://" + l.Addr().String(), roots: ca.Pool()},
		st: st, audit: audit, cancel: cancel, done: make(chan error, 1)}
	go func() { is.done <- srv.Serve(ctx, l) }()
	t.Cleanup(is.stop)
	return is
}

// stop shuts the API down and waits for it.
func (is *orderingIssuer) stop() {
	if is.cancel != nil {
		is.cancel()
		<-is.done
		is.cancel = nil
	}
}

// enrolFor enrols host with policy names and returns its identity.
func (is *orderingIssuer) enrolFor(t *testing.T, host string, names ...string) *Identity {
	t.Helper()
	e, err := is.reg.Enroll(context.Background(), host, names, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := is.client(t, nil).Enroll(context.Background(), e.Token)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newCSR makes a CSR for names with key (a new one if nil).
func newCSR(t *testing.T, key crypto.Signer, names ...string) (crypto.Signer, []byte) {
	t.Helper()
	if key == nil {
		var err error
		if key, err = keys.Generate(keys.ECDSAP256); err != nil {
			t.Fatal(err)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

// obtain sends csr until the answer is final and returns it.
func obtain(ctx context.Context, c *Client, csr []byte, reuseKey bool) (*CertificateResponse, error) {
	for {
		resp, err := c.Certificate(ctx, csr, reuseKey)
		if err != nil || resp.Status != CertProcessing {
			return resp, err
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// leafOf parses the first certificate of a PEM chain.
func leafOf(t *testing.T, chain string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(chain))
	if b == nil {
		t.Fatalf("no PEM certificate in %q", chain)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCertificateRequest: an agent's CSR for names in its policy gets a
// certificate for its key, obtained by the engine with dns-01 (the
// agent's key never reaches the issuer); asking again with the same CSR
// returns the same certificate without a new order; the audit trail has
// the acceptance and the issuance with its serial and chain. A CSR for a
// name outside the policy, one for the agent's client-certificate key,
// and one reusing a key are refused with "policy" and audited.
func TestCertificateRequest(t *testing.T) {
	ctx := t.Context()
	e := startEngine(t)
	is := startOrderingIssuer(t, e.m, nil, nil, nil)
	id := is.enrolFor(t, "db1", "db1.example.test", "*.db1.example.test")
	c := is.client(t, id)

	key, csr := newCSR(t, nil, "db1.example.test", "*.db1.example.test")
	resp, err := obtain(ctx, c, csr, false)
	if err != nil || resp.Status != CertValid {
		t.Fatalf("certificate: %+v, %v", resp, err)
	}
	leaf := leafOf(t, resp.Fullchain)
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Error("the certificate is not for the agent's key")
	}
	if err := leaf.VerifyHostname("x.db1.example.test"); err != nil {
		t.Error(err)
	}
	if !resp.RenewAfter.After(leaf.NotBefore) || !resp.RenewBefore.After(resp.RenewAfter) || !leaf.NotAfter.After(resp.RenewBefore) {
		t.Errorf("renewal window %v..%v for a certificate valid %v..%v", resp.RenewAfter, resp.RenewBefore, leaf.NotBefore, leaf.NotAfter)
	}
	again, err := c.Certificate(ctx, csr, false)
	if err != nil || again.Status != CertValid || again.Fullchain != resp.Fullchain {
		t.Errorf("the same CSR again: %+v, %v; want the same certificate", again, err)
	}
	if n := e.p.Orders(); n != 1 {
		t.Errorf("Pebble saw %d orders, want 1", n)
	}
	if got := is.audit.of(AuditAccepted); len(got) != 1 || got[0].Host != "db1" || got[0].KeyHash != KeyHash(leaf.RawSubjectPublicKeyInfo) {
		t.Errorf("accepted rows: %+v", got)
	}
	issued := is.audit.of(AuditIssued)
	if len(issued) != 1 || issued[0].Serial != fmt.Sprintf("%x", leaf.SerialNumber) || issued[0].Chain != resp.Fullchain ||
		issued[0].OrderURL == "" || !issued[0].NotAfter.Equal(leaf.NotAfter) {
		t.Errorf("issued rows: %+v", issued)
	}

	refusals := []struct {
		what, want string
		csr        []byte
	}{
		{"a name outside the policy", "evil.example.test", func() []byte {
			_, b := newCSR(t, nil, "db1.example.test", "evil.example.test")
			return b
		}()},
		{"the client certificate's key", "client-certificate key", func() []byte {
			_, b := newCSR(t, id.Key, "db1.example.test")
			return b
		}()},
		{"a reused key", "key reused", func() []byte {
			_, b := newCSR(t, key, "db1.example.test", "*.db1.example.test")
			return b
		}()},
		{"a key of another certificate", "key reused", func() []byte {
			_, b := newCSR(t, key, "www.db1.example.test")
			return b
		}()},
		{"a weak key", "RSA", func() []byte {
			weak, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			_, b := newCSR(t, weak, "db1.example.test")
			return b
		}()},
	}
	for _, r := range refusals {
		_, err := c.Certificate(ctx, r.csr, false)
		wantRefused(t, r.what, err, "403", "policy")
		if err != nil && !strings.Contains(err.Error(), r.want) {
			t.Errorf("%s: %v, want it to say %q", r.what, err, r.want)
		}
	}
	if got := is.audit.of(AuditRefused); len(got) != len(refusals) {
		t.Errorf("%d refusals audited, want %d: %+v", len(got), len(refusals), got)
	} else if !strings.Contains(got[0].Reason, "evil.example.test") {
		t.Errorf("refusal audited as %q", got[0].Reason)
	}
	if n := e.p.Orders(); n != 1 {
		t.Errorf("Pebble saw %d orders after the refusals, want 1", n)
	}
}

// TestTwoIssuersOneOrder: two issuers share a storage, each with its own
// engine over it (a cluster). An agent's CSR goes to one, and while its
// order waits at finalize, to the other, which starts working on it too:
// the CA still sees one order, and both hand out the same certificate.
func TestTwoIssuersOneOrder(t *testing.T) {
	ctx := t.Context()
	e := startEngine(t)
	m2 := e.start(t)
	a := startOrderingIssuer(t, e.m, nil, nil, nil)
	b := startOrderingIssuer(t, m2, a.st, a.ca, a.audit)
	id := a.enrolFor(t, "web1", "web1.example.test")
	_, csr := newCSR(t, nil, "web1.example.test")
	atFinalize, release := make(chan struct{}, 1), make(chan struct{})
	e.p.SetFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/finalize-order/") {
			select {
			case atFinalize <- struct{}{}:
			default:
			}
			<-release
		}
		return false
	})
	ca, cb := a.client(t, id), b.client(t, id)
	if resp, err := ca.Certificate(ctx, csr, false); err != nil || resp.Status != CertProcessing {
		t.Fatalf("first issuer: %+v, %v", resp, err)
	}
	<-atFinalize
	if resp, err := cb.Certificate(ctx, csr, false); err != nil || resp.Status != CertProcessing {
		t.Fatalf("second issuer: %+v, %v", resp, err)
	}
	time.Sleep(2 * time.Second) // the second issuer's worker is waiting for its turn
	close(release)
	ra, err := obtain(ctx, ca, csr, false)
	if err != nil || ra.Status != CertValid {
		t.Fatalf("first issuer: %+v, %v", ra, err)
	}
	rb, err := obtain(ctx, cb, csr, false)
	if err != nil || rb.Status != CertValid {
		t.Fatalf("second issuer: %+v, %v", rb, err)
	}
	if ra.Fullchain != rb.Fullchain {
		t.Error("the issuers handed out different certificates")
	}
	time.Sleep(2 * time.Second) // give a second order, if any, the time to be placed
	if n := e.p.Orders(); n != 1 {
		t.Errorf("Pebble saw %d orders, want 1", n)
	}
	if n := len(a.audit.of(AuditIssued)); n != 1 {
		t.Errorf("%d issuances audited, want 1", n)
	}
}

// TestSameCSRAfterWindowOpens: the agent that sends its CSR again after
// the renewal window opened (the answer was lost; a short certificate's
// window opens at once) gets the certificate obtained for it, not a
// refusal; a renewal naming that certificate in Replaces with the same
// CSR is refused without reuse_key and ordered anew with it.
func TestSameCSRAfterWindowOpens(t *testing.T) {
	ctx := t.Context()
	e := startEngine(t)
	is := startOrderingIssuer(t, e.m, nil, nil, nil)
	id := is.enrolFor(t, "app1", "app1.example.test")
	c := is.client(t, id)
	_, csr := newCSR(t, nil, "app1.example.test")
	first, err := obtain(ctx, c, csr, false)
	if err != nil || first.Status != CertValid {
		t.Fatalf("certificate: %+v, %v", first, err)
	}
	// Open the window, as time would.
	key := jobsPrefix + "/" + jobID("app1", []string{"app1.example.test"})
	var j job
	if err := is.reg.load(ctx, key, &j); err != nil {
		t.Fatal(err)
	}
	j.RenewAfter, j.RenewBefore = time.Now().Add(-time.Hour), time.Now().Add(-time.Minute)
	if err := is.reg.store(ctx, key, j); err != nil {
		t.Fatal(err)
	}
	again, err := c.Certificate(ctx, csr, false)
	if err != nil || again.Status != CertValid || again.Fullchain != first.Fullchain {
		t.Fatalf("the same CSR after the window opened: %+v, %v; want the same certificate", again, err)
	}
	serial := leafOf(t, first.Fullchain).SerialNumber.Text(16)
	_, err = c.Request(ctx, CertificateRequest{CSR: csr, Replaces: serial})
	wantRefused(t, "a renewal with the same key, without reuse_key", err, "403", "key reused")
	renewed, err := func() (*CertificateResponse, error) {
		for {
			r, err := c.Request(ctx, CertificateRequest{CSR: csr, ReuseKey: true, Replaces: serial})
			if err != nil || r.Status != CertProcessing {
				return r, err
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	if err != nil || renewed.Status != CertValid {
		t.Fatalf("renewal with reuse_key: %+v, %v", renewed, err)
	}
	if got := leafOf(t, renewed.Fullchain).SerialNumber.Text(16); got == serial {
		t.Error("the renewal handed out the certificate it replaces")
	}
	if n := e.p.Orders(); n != 2 {
		t.Errorf("Pebble saw %d orders, want 2", n)
	}
	// The renewal's order named the certificate it replaces (RFC 9773 §5).
	oldID, err := acmeclient.CertID(leafOf(t, first.Fullchain))
	if err != nil {
		t.Fatal(err)
	}
	if !testenv.PebbleFindsSerial(leafOf(t, first.Fullchain)) {
		oldID = "" // Pebble cannot find it, refuses the order, and the issuer orders without replaces
	}
	if got := e.p.Replaces(); len(got) != 2 || got[0] != "" || got[1] != oldID {
		t.Errorf("replaces fields of the orders: %q, want none and then %q", got, oldID)
	}
}
