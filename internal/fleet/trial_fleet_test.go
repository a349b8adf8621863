package fleet

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
)

// trialSign signs tmpl for pub as parent with parentKey (self-signed
// when parent is nil), with a random serial.
func trialSign(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey crypto.Signer, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trialCA is a CA of the test's making, with its key.
type trialCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTrialCA(t *testing.T, cn string) *trialCA {
	t.Helper()
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert := trialSign(t, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, key, key.Public())
	return &trialCA{cert: cert, key: key}
}

// client signs a client certificate for pub, as the fleet CA does,
// changed by edit.
func (ca *trialCA) client(t *testing.T, pub crypto.PublicKey, cn string, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn}, NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true}
	if edit != nil {
		edit(tmpl)
	}
	return trialSign(t, tmpl, ca.cert, ca.key, pub)
}

// startHostileServer serves h over TLS with a server certificate of
// ca for 127.0.0.1 until the test ends, and returns its URL.
func startHostileServer(t *testing.T, ca *trialCA, h http.Handler) string {
	t.Helper()
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	srvCert := trialSign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "issuer"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca.cert, ca.key, key.Public())
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// startHostileIssuer serves, over TLS with a server certificate of ca,
// answers to PathEnroll and PathClientCert made by answer from the
// CSR's key (a fake for fault injection: an issuer gone wrong).
func startHostileIssuer(t *testing.T, ca *trialCA, answer func(pub crypto.PublicKey) EnrollResponse) string {
	t.Helper()
	return startHostileServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			CSR []byte `json:"csr"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		csr, err := x509.ParseCertificateRequest(req.CSR)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorResponse{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, answer(csr.PublicKey))
	}))
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// TestTrialIdentityFromHostileIssuer: a client certificate the issuer
// answers an enrolment or a renewal with is refused, before the agent
// stores it in place of its identity, unless the fleet CA issued it, for
// client authentication, valid now, for the host the answer names (and,
// for a renewal, the agent's own host).
func TestTrialIdentityFromHostileIssuer(t *testing.T) {
	ctx := context.Background()
	fleetCA := newTrialCA(t, "tlspilot fleet CA")
	otherCA := newTrialCA(t, "another CA")
	roots := x509.NewCertPool()
	roots.AddCert(fleetCA.cert)
	now := time.Now()
	for _, tc := range []struct {
		name   string
		answer func(t *testing.T, pub crypto.PublicKey) EnrollResponse
		ok     bool
	}{
		{"good", func(t *testing.T, pub crypto.PublicKey) EnrollResponse {
			return EnrollResponse{Host: "db1", Certificate: certPEM(fleetCA.client(t, pub, "db1", nil))}
		}, true},
		{"another CA", func(t *testing.T, pub crypto.PublicKey) EnrollResponse {
			return EnrollResponse{Host: "db1", Certificate: certPEM(otherCA.client(t, pub, "db1", nil))}
		}, false},
		{"expired", func(t *testing.T, pub crypto.PublicKey) EnrollResponse {
			return EnrollResponse{Host: "db1", Certificate: certPEM(fleetCA.client(t, pub, "db1", func(c *x509.Certificate) {
				c.NotBefore, c.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour)
			}))}
		}, false},
		{"not valid yet", func(t *testing.T, pub crypto.PublicKey) EnrollResponse {
			return EnrollResponse{Host: "db1", Certificate: certPEM(fleetCA.client(t, pub, "db1", func(c *x509.Certificate) {
				c.NotBefore = now.Add(24 * time.Hour)
			}))}
		}, false},
		{"server auth only", func(t *testing.T, pub crypto.PublicKey) EnrollResponse {
			return EnrollResponse{Host: "db1", Certificate: certPEM(fleetCA.client(t, pub, "db1", func(c *x509.Certificate) {
				c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			}))}
		}, false},
		{"another host than the answer", func(t *testing.T, pub crypto.PublicKey) EnrollResponse {
			return EnrollResponse{Host: "db1", Certificate: certPEM(fleetCA.client(t, pub, "db2", nil))}
		}, false},
		{"a host with control characters", func(t *testing.T, pub crypto.PublicKey) EnrollResponse {
			return EnrollResponse{Host: "db1\n\x1b[2J", Certificate: certPEM(fleetCA.client(t, pub, "db1\n\x1b[2J", nil))}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := startHostileIssuer(t, fleetCA, func(pub crypto.PublicKey) EnrollResponse { return tc.answer(t, pub) })
			c, err := NewClient(ClientOptions{Issuer: u, Roots: roots})
			if err != nil {
				t.Fatal(err)
			}
			id, err := c.Enroll(ctx, "token")
			if tc.ok != (err == nil) {
				t.Errorf("enrol: identity %v, error %v; want accepted %v", id != nil, err, tc.ok)
			}
		})
	}

	// A renewal for another host: the agent would become another agent
	// (another policy) without its operator knowing.
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	current := &Identity{Host: "db1", Key: key, Certificate: fleetCA.client(t, key.Public(), "db1", nil)}
	for _, host := range []string{"db1", "db2"} {
		u := startHostileIssuer(t, fleetCA, func(pub crypto.PublicKey) EnrollResponse {
			return EnrollResponse{Host: host, Certificate: certPEM(fleetCA.client(t, pub, host, nil))}
		})
		c, err := NewClient(ClientOptions{Issuer: u, Roots: roots, Identity: current})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.RenewIdentity(ctx)
		if (host == "db1") != (err == nil) {
			t.Errorf("renewal of db1 answered for %s: %v", host, err)
		}
	}
}

// TestTrialCheckIssuedWholeChain: the certificate the agent would
// deploy is refused when any certificate of its chain is not signed by
// the next one, when its leaf names anything but the DNS names asked
// for (an IP address, an e-mail address, a URI), is a CA, or is not for
// server authentication.
func TestTrialCheckIssuedWholeChain(t *testing.T) {
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"db1.example.com"}
	root := newTrialCA(t, "root")
	now := time.Now()
	inter := trialSign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "intermediate"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 6, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, root.cert, root.key, root.key.Public())
	interCA := &trialCA{cert: inter, key: root.key}
	stranger := newTrialCA(t, "stranger")
	leaf := func(edit func(*x509.Certificate)) *x509.Certificate {
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 0, 90),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true}
		if edit != nil {
			edit(tmpl)
		}
		return trialSign(t, tmpl, interCA.cert, interCA.key, key.Public())
	}
	chain := func(cs ...*x509.Certificate) string {
		var b strings.Builder
		for _, c := range cs {
			b.WriteString(certPEM(c))
		}
		return b.String()
	}
	u, _ := url.Parse("https://db1.example.com/")
	for _, tc := range []struct {
		name  string
		chain string
		ok    bool
	}{
		{"good", chain(leaf(nil), inter, root.cert), true},
		{"good, no EKU", chain(leaf(func(c *x509.Certificate) { c.ExtKeyUsage = nil }), inter), true},
		{"third not signing the second", chain(leaf(nil), inter, stranger.cert), false},
		{"IP address", chain(leaf(func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(10, 0, 0, 1)} }), inter), false},
		{"e-mail address", chain(leaf(func(c *x509.Certificate) { c.EmailAddresses = []string{"root@example.com"} }), inter), false},
		{"URI", chain(leaf(func(c *x509.Certificate) { c.URIs = []*url.URL{u} }), inter), false},
		{"a CA", chain(leaf(func(c *x509.Certificate) { c.IsCA, c.KeyUsage = true, x509.KeyUsageCertSign }), inter), false},
		{"client auth only", chain(leaf(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }), inter), false},
	} {
		_, err := checkIssued(tc.chain, key.Public(), names, now)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v, want accepted %v", tc.name, err, tc.ok)
		}
	}
}

// TestTrialDeployedChainIsWhatWasChecked: a chain answered with text
// between its certificates and PEM headers in them (Proc-Type, which
// makes OpenSSL take the certificate for an encrypted one) is stored and
// deployed as the certificates alone.
func TestTrialDeployedChainIsWhatWasChecked(t *testing.T) {
	ctx := context.Background()
	names := []string{"db1.example.com"}
	var mu sync.Mutex
	var want string
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
		mu.Lock()
		want = good
		mu.Unlock()
		leafBlock, rest := pem.Decode([]byte(good))
		leafBlock.Headers = map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00000000000000000000000000000000"}
		mangled := "junk before\n" + string(pem.EncodeToMemory(leafBlock)) + "ssl_certificate_key /etc/shadow;\n" + string(rest)
		return http.StatusOK, CertificateResponse{Status: CertValid, Fullchain: mangled}
	})
	e := newAgentEnv(t)
	k := e.keeper(t, f, false, names...)
	k.Pass(ctx, time.Now(), false)
	rec := record(t, k)
	if rec.Fullchain == "" {
		t.Fatalf("no certificate obtained: %s", rec.LastError)
	}
	deployed, err := os.ReadFile(filepath.Join(e.dir, "fullchain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if rec.Fullchain != want || string(deployed) != want {
		t.Errorf("stored:\n%s\ndeployed:\n%s\nwant the certificates alone:\n%s", rec.Fullchain, deployed, want)
	}
}

// TestTrialClientCertForRevokedAgent: a client certificate issued while
// the agent is being revoked (a renewal that passed the check of its
// caller just before the revocation) is not listed: once the host is
// enrolled again, only the new enrolment's certificate is accepted.
func TestTrialClientCertForRevokedAgent(t *testing.T) {
	ctx := context.Background()
	is := startIssuer(t)
	id := is.enrol(t, "db1")
	if _, err := is.reg.Revoke(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := x509.ParseCertificateRequest(csr)
	late, err := is.ca.IssueClient(req, "db1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := is.reg.AddClientCert(ctx, "db1", late); !errors.Is(err, ErrRevoked) {
		t.Errorf("AddClientCert for a revoked agent: %v, want ErrRevoked", err)
	}
	again, err := is.reg.Enroll(ctx, "db1", []string{"db1.example.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is.client(t, nil).Enroll(ctx, again.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := is.reg.Accept(ctx, late); err == nil {
		t.Error("the certificate issued during the revocation is accepted after the re-enrolment")
	}
	if _, err := is.reg.Accept(ctx, id.Certificate); err == nil {
		t.Error("the certificate of before the revocation is accepted after the re-enrolment")
	}
}

// TestTrialCSRNamesAsWritten: a careless agent's CSR whose names the
// policy allows once normalised (upper case, a trailing dot, a name
// twice, the common name alone) gets its certificate, or is refused
// before any order: never an order the CA then fails at finalize.
func TestTrialCSRNamesAsWritten(t *testing.T) {
	ctx := t.Context()
	e := startEngine(t)
	is := startOrderingIssuer(t, e.m, nil, nil, nil)
	id := is.enrolFor(t, "db1", "db1.example.test", "*.db1.example.test")
	c := is.client(t, id)
	for _, tc := range []struct {
		name  string
		cn    string
		names []string
	}{
		{"upper case", "DB1.Example.TEST", []string{"DB1.Example.TEST"}},
		{"trailing dot", "a.db1.example.test.", []string{"a.db1.example.test."}},
		{"twice", "b.db1.example.test", []string{"b.db1.example.test", "B.db1.example.test"}},
		{"common name alone", "c.db1.example.test", nil},
	} {
		key, err := keys.Generate(keys.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: tc.cn}, DNSNames: tc.names}, key)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := obtain(ctx, c, der, false)
		switch {
		case err != nil && !strings.Contains(err.Error(), "HTTP 403") || err != nil && !strings.Contains(err.Error(), "policy"):
			t.Errorf("%s: %v, want a certificate or a refusal by policy", tc.name, err)
		case err == nil && resp.Status != CertValid:
			t.Errorf("%s: an order the CA refused: %+v", tc.name, resp)
		}
	}
}

// TestTrialIssuerTextEscaped: what an issuer gone wrong says (its
// refusal's message, the host and names of its answer to PathAgent)
// reaches the agent's errors, logs, stored state and terminal without
// line breaks or control characters: it can neither forge a line of
// tlspilot's output nor drive the operator's terminal.
func TestTrialIssuerTextEscaped(t *testing.T) {
	ctx := context.Background()
	ca := newTrialCA(t, "tlspilot fleet CA")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	const evil = "policy: no\nOK: 1 valid\x1b[2J\x1b]0;owned\a\u202e"
	u := startHostileServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case PathAgent:
			writeJSON(w, http.StatusOK, AgentResponse{Host: "db1\x1b[2J", Names: []string{"db1.example.com\nforged"}})
			return
		case PathCertificate:
			writeJSON(w, http.StatusOK, CertificateResponse{Status: CertFailed, Error: evil, RetryAfter: 60})
			return
		}
		writeJSON(w, http.StatusForbidden, errorResponse{evil})
	}))
	bad := func(s string) bool { return strings.ContainsAny(s, "\n\x1b\a\u202e") }
	c, err := NewClient(ClientOptions{Issuer: u, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enroll(ctx, "token"); err == nil || bad(err.Error()) || !strings.Contains(err.Error(), `policy: no\nOK: 1 valid\x1b[2J`) {
		t.Errorf("enrol refused: %q, want the issuer's message escaped", err)
	}
	if resp, err := c.Certificate(ctx, []byte("csr"), false); err != nil || bad(resp.Error) {
		t.Errorf("certificate failed: %+v, %v, want the issuer's message escaped", resp, err)
	}
	a, err := c.Agent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bad(a.Host) || bad(strings.Join(a.Names, ",")) {
		t.Errorf("agent answer: %q %q, want escaped", a.Host, a.Names)
	}
}

// lockDownStorage fails every Lock (fault injection: a lock service
// that is down, or a storage that refuses writes).
type lockDownStorage struct{ storage.Storage }

func (lockDownStorage) Lock(context.Context, string) (storage.Lease, error) {
	return nil, errors.New("lock service down")
}

// TestTrialMadeUpTokenTakesNoLock: a made-up enrolment token, which
// anyone may send without a client certificate, is refused from a
// plain read: it takes no storage lock (a file written and synced, or a
// database row), so a flood of them costs the issuer no writes.
func TestTrialMadeUpTokenTakesNoLock(t *testing.T) {
	ctx := context.Background()
	r, st := newRegistry(t)
	e, err := r.Enroll(ctx, "db1", []string{"db1.example.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.s = lockDownStorage{st}
	if _, err := r.Redeem(ctx, "made-up"); !errors.Is(err, ErrTokenUnknown) {
		t.Errorf("made-up token: %v, want ErrTokenUnknown without a lock", err)
	}
	if _, err := r.Redeem(ctx, e.Token); err == nil || errors.Is(err, ErrTokenUnknown) {
		t.Errorf("a real token without a lock: %v, want the lock's failure", err)
	}
	r.s = st
	if _, err := r.Redeem(ctx, e.Token); err != nil {
		t.Errorf("the real token once the lock works: %v", err)
	}
}

// TestTrialCSRNameTricks: CSR names that only normalisation makes
// allowed (spaces, a trailing dot, a common name not among the DNS
// names), or that no normalisation allows (a NUL, a wildcard not the
// whole first label, a name under the policy's wildcard but deeper, the
// apex under a wildcard), are refused by policy before any order.
func TestTrialCSRNameTricks(t *testing.T) {
	a := &Agent{Host: "db1", Names: []string{"db1.example.com", "*.db1.example.com"}}
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cn    string
		names []string
		ok    bool
	}{
		{"db1.example.com", []string{"db1.example.com", "*.db1.example.com"}, true},
		{"DB1.EXAMPLE.COM", []string{"db1.example.com"}, true},
		{"", []string{"x.db1.example.com"}, true},
		{"", []string{" db1.example.com"}, false},
		{"", []string{"db1.example.com "}, false},
		{"", []string{"db1.example.com."}, false},
		{"db1.example.com.", []string{"db1.example.com"}, false},
		{"x.db1.example.com", []string{"db1.example.com"}, false},
		{"db1.example.com", nil, false},
		{"", []string{"db1.example.com\x00.evil.com"}, false},
		{"", []string{"x*.db1.example.com"}, false},
		{"", []string{"a.b.db1.example.com"}, false},
		{"", []string{"*.example.com"}, false},
		{"", []string{"example.com"}, false},
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: tc.cn}, DNSNames: tc.names}, key)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.CheckCSR(csr)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrPolicy) {
			t.Errorf("CN %q, names %q: %v, want accepted %v", tc.cn, tc.names, err, tc.ok)
		}
	}
}

// TestTrialLongHostGetsCertificates: an agent whose host is as long as
// fleetca.CheckHost allows (253 bytes) gets its certificates: the
// issuer's records of its work stay valid storage keys (a segment has
// 255 bytes at most).
func TestTrialLongHostGetsCertificates(t *testing.T) {
	ctx := t.Context()
	host := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	if len(host) != 253 {
		t.Fatalf("host of %d bytes", len(host))
	}
	e := startEngine(t)
	is := startOrderingIssuer(t, e.m, nil, nil, nil)
	c := is.client(t, is.enrolFor(t, host, "long.example.test"))
	_, csr := newCSR(t, nil, "long.example.test")
	if resp, err := obtain(ctx, c, csr, false); err != nil || resp.Status != CertValid {
		t.Fatalf("certificate for the agent %s: %+v, %v", host, resp, err)
	}
}

// stuckOrderer never completes an order while stuck (a CA that does not
// answer), and counts the orders it is asked for (fault injection).
type stuckOrderer struct {
	stuck bool
	mu    sync.Mutex
	asked int
}

func (o *stuckOrderer) ObtainCSRReplacing(ctx context.Context, _ string, _ *x509.CertificateRequest, _ []string, _ *x509.Certificate) (tlspilot.CSRCertificate, error) {
	o.mu.Lock()
	o.asked++
	o.mu.Unlock()
	if o.stuck {
		<-ctx.Done()
		return tlspilot.CSRCertificate{}, ctx.Err()
	}
	return tlspilot.CSRCertificate{}, errors.New("the CA refuses")
}

// TestTrialNoOrderForRevokedAgent: work an issuer left in progress (it
// stopped mid-order) is not ordered again when it resumes for an agent
// revoked meanwhile, nor for names its policy no longer allows: it
// fails, audited, without an order.
func TestTrialNoOrderForRevokedAgent(t *testing.T) {
	ctx := t.Context()
	for _, change := range []string{"revoked", "policy"} {
		t.Run(change, func(t *testing.T) {
			first := startOrderingIssuer(t, &stuckOrderer{stuck: true}, nil, nil, nil)
			c := first.client(t, first.enrolFor(t, "db1", "db1.example.test", "www.db1.example.test"))
			_, csr := newCSR(t, nil, "www.db1.example.test")
			if resp, err := c.Certificate(ctx, csr, false); err != nil || resp.Status != CertProcessing {
				t.Fatalf("certificate: %+v, %v", resp, err)
			}
			first.stop()
			switch change {
			case "revoked":
				if _, err := first.reg.Revoke(ctx, "db1"); err != nil {
					t.Fatal(err)
				}
			case "policy":
				if _, err := first.reg.Enroll(ctx, "db1", []string{"db1.example.test"}, 0); err != nil {
					t.Fatal(err)
				}
			}
			o := &stuckOrderer{}
			audit := &auditLog{}
			second := startOrderingIssuer(t, o, first.st, first.ca, audit)
			key := jobsPrefix + "/" + jobID("db1", []string{"www.db1.example.test"})
			var j job
			for j.State == "" || j.State == CertProcessing || len(audit.of(AuditFailed)) == 0 {
				if err := second.reg.load(ctx, key, &j); err != nil {
					t.Fatal(err)
				}
				if ctx.Err() != nil {
					t.Fatal("the work never ended")
				}
				runtime.Gosched()
			}
			o.mu.Lock()
			asked := o.asked
			o.mu.Unlock()
			if asked != 0 || j.State != CertFailed || len(audit.of(AuditFailed)) != 1 {
				t.Errorf("%s: %d order(s) asked for, job %s (%s), %d failure(s) audited; want none, failed, 1", change, asked, j.State, j.Error, len(audit.of(AuditFailed)))
			}
		})
	}
}
