package fleet

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/deploy"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// faultyIssuer is an issuer that fails in the ways a test asks for (a
// fake for fault injection only: real answers come from the real
// issuer in cmd/tlspilot's tests). It records the CSRs it was sent.
type faultyIssuer struct {
	srv    *httptest.Server
	mu     sync.Mutex
	csrs   [][]byte
	reuse  []bool // ReuseKey of each request
	answer func(csr []byte) (status int, body any)
}

// startFaultyIssuer serves answer at PathCertificate on loopback TLS
// until the test ends; every other path answers 503.
func startFaultyIssuer(t *testing.T, answer func(csr []byte) (int, any)) *faultyIssuer {
	t.Helper()
	f := &faultyIssuer{answer: answer}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body := http.StatusServiceUnavailable, any(errorResponse{"down for maintenance"})
		if r.URL.Path == PathCertificate {
			var req CertificateRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			f.mu.Lock()
			f.csrs = append(f.csrs, req.CSR)
			f.reuse = append(f.reuse, req.ReuseKey)
			answer := f.answer
			f.mu.Unlock()
			status, body = answer(req.CSR)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// requests returns the CSRs sent so far.
func (f *faultyIssuer) requests() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.csrs...)
}

// setAnswer changes the issuer's answer.
func (f *faultyIssuer) setAnswer(answer func(csr []byte) (int, any)) {
	f.mu.Lock()
	f.answer = answer
	f.mu.Unlock()
}

// down answers 503, as an issuer behind a proxy that lost it.
func down([]byte) (int, any) {
	return http.StatusServiceUnavailable, errorResponse{"no healthy upstream"}
}

// agentEnv is an agent's storage, enrolled with an identity of its own
// making (the faulty issuer does not check it).
type agentEnv struct {
	st     storage.Storage
	sealer *keys.Sealer
	dir    string
}

func newAgentEnv(t *testing.T) *agentEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := fsstore.New(fsstore.Options{Dir: filepath.Join(dir, "storage")})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := testCert(key.Public(), nil, key, "db1", nil, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveIdentity(context.Background(), st, sealer, &Identity{Host: "db1", Key: key, Certificate: cert}); err != nil {
		t.Fatal(err)
	}
	return &agentEnv{st: st, sealer: sealer, dir: dir}
}

// keeper makes a Keeper of one certificate for names, talking to f,
// deploying to files in the env's directory.
func (e *agentEnv) keeper(t *testing.T, f *faultyIssuer, reuse bool, names ...string) *Keeper {
	t.Helper()
	d, err := deploy.New(deploy.Options{Fullchain: filepath.Join(e.dir, "fullchain.pem"), Privkey: filepath.Join(e.dir, "privkey.pem")})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(f.srv.Certificate())
	k, err := NewKeeper(context.Background(), KeeperOptions{Storage: e.st, Sealer: e.sealer, Issuer: f.srv.URL, Roots: roots,
		Certificates: []KeptCert{{Names: names, KeyType: keys.ECDSAP256, ReuseKey: reuse, Deployer: d}}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// record reads the Keeper's record of its only certificate.
func record(t *testing.T, k *Keeper) *certRecord {
	t.Helper()
	rec, ok, err := loadRecord(context.Background(), k.opts.Storage, k.certs[0].key)
	if err != nil || !ok {
		t.Fatalf("record %s: %v, found %v", k.certs[0].key, err, ok)
	}
	return rec
}

// testCert makes a certificate for pub, signed by parentKey as parent
// (self-signed, a CA, when parent is nil), with the names and validity
// given.
func testCert(pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, cn string, names []string, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: names,
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// testChain returns a PEM chain (leaf, CA) for pub and names, valid from
// notBefore to notAfter.
func testChain(pub crypto.PublicKey, names []string, notBefore, notAfter time.Time) (string, error) {
	caKey, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		return "", err
	}
	ca, err := testCert(caKey.Public(), nil, caKey, "test CA", nil, notBefore.Add(-time.Hour), notAfter.Add(time.Hour))
	if err != nil {
		return "", err
	}
	leaf, err := testCert(pub, ca, caKey, names[0], names, notBefore, notAfter)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	return b.String(), nil
}

// chainFor is testChain failing the test on an error.
func chainFor(t *testing.T, pub crypto.PublicKey, names []string, notBefore, notAfter time.Time) string {
	t.Helper()
	s, err := testChain(pub, names, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seed stores a certificate in service for the Keeper's certificate, as
// an earlier run would have left it, valid from notBefore to notAfter.
func seed(t *testing.T, k *Keeper, notBefore, notAfter time.Time) *certRecord {
	t.Helper()
	c := k.certs[0]
	key, _ := keys.Generate(c.cfg.KeyType)
	sealed, err := k.opts.Sealer.SealKey(key, c.key)
	if err != nil {
		t.Fatal(err)
	}
	chain := chainFor(t, key.Public(), c.cfg.Names, notBefore, notAfter)
	leaf, err := checkIssued(chain, key.Public(), c.cfg.Names, notBefore.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rec := &certRecord{Names: c.cfg.Names, KeyType: string(c.cfg.KeyType), FirstSeen: notBefore,
		Fullchain: chain, SealedKey: string(sealed), Serial: leaf.SerialNumber.Text(16), Issuer: leaf.Issuer.CommonName,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, RenewAt: notAfter.Add(-notAfter.Sub(notBefore) / 3)}
	if err := storeRecord(context.Background(), k.opts.Storage, c.key, rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestKeeperIssuerUnreachable: with the issuer answering 503, the agent
// stores its key and CSR before sending it, sends that same CSR again on
// every retry (also after a restart), backs off with jitter from about a
// minute up to an hour (never sooner), and reports the failure.
func TestKeeperIssuerUnreachable(t *testing.T) {
	ctx := context.Background()
	f := startFaultyIssuer(t, down)
	e := newAgentEnv(t)
	k := e.keeper(t, f, false, "db1.example.com", "*.db1.example.com")
	now := time.Now()
	next := k.Pass(ctx, now, false)
	rec := record(t, k)
	if rec.Pending == nil || len(f.requests()) != 1 || !bytes.Equal(f.requests()[0], rec.Pending.CSR) {
		t.Fatalf("after the first pass: pending %+v, %d requests", rec.Pending, len(f.requests()))
	}
	if rec.Attempts != 1 || !strings.Contains(rec.LastError, "HTTP 503") || !strings.Contains(rec.LastError, "no healthy upstream") {
		t.Errorf("attempts %d, last error %q", rec.Attempts, rec.LastError)
	}
	if d := rec.RetryAt.Sub(now); d < 30*time.Second || d > time.Minute || !next.Equal(rec.RetryAt) {
		t.Errorf("first retry in %s (next pass %s), want 30s..1m", d, next.Sub(now))
	}
	if k.Pass(ctx, now.Add(10*time.Second), false); len(f.requests()) != 1 {
		t.Errorf("asked again before the backoff passed: %d requests", len(f.requests()))
	}
	csr := rec.Pending.CSR
	for i := 2; i <= 12; i++ {
		k = e.keeper(t, f, false, "db1.example.com", "*.db1.example.com") // a restart each time
		prev := now
		now = record(t, k).RetryAt
		if now.Sub(prev) < 30*time.Second {
			t.Fatalf("attempt %d only %s after the last", i, now.Sub(prev))
		}
		k.Pass(ctx, now, false)
		rec = record(t, k)
		if rec.Attempts != i || len(f.requests()) != i || !bytes.Equal(f.requests()[i-1], csr) {
			t.Fatalf("attempt %d: record says %d, %d requests, same CSR %v", i, rec.Attempts, len(f.requests()), bytes.Equal(f.requests()[i-1], csr))
		}
	}
	if d := rec.RetryAt.Sub(now); d < 30*time.Minute || d > time.Hour {
		t.Errorf("retry after 12 failures in %s, want 30m..1h", d)
	}
	st, err := AgentStatus(ctx, e.st, f.srv.URL, []KeptCert{k.certs[0].cfg}, now, tlspilot.WarnWindow{})
	if err != nil {
		t.Fatal(err)
	}
	if c := st[1]; c.State != tlspilot.StatePending || c.Attempts != 12 || !strings.Contains(c.LastError, "HTTP 503") || c.NextRenewal != rec.RetryAt {
		t.Errorf("status %+v", c)
	}
	if res := k.Once(ctx, 0); res[0].OK || !strings.Contains(res[0].Problem, "no certificate yet: ") {
		t.Errorf("once: %+v", res)
	}
	if len(f.requests()) != 13 {
		t.Errorf("--once did not ask despite the backoff: %d requests", len(f.requests()))
	}
}

// TestKeeperIssuerDownForAWeek: a 30-day certificate in service stays
// deployed while the issuer is down for the week its renewal falls in;
// the agent tries every 30 to 60 minutes, never in a tight loop; status says
// failing, then expiring once in the warning window (3 days before
// expiry) and while the certificate is still valid, then expired.
func TestKeeperIssuerDownForAWeek(t *testing.T) {
	ctx := context.Background()
	f := startFaultyIssuer(t, down)
	e := newAgentEnv(t)
	k := e.keeper(t, f, false, "db1.example.com")
	start := time.Now()
	rec := seed(t, k, start.Add(-time.Hour), start.Add(30*24*time.Hour-time.Hour))
	k.Pass(ctx, start, false)
	deployed, err := os.ReadFile(filepath.Join(e.dir, "fullchain.pem"))
	if err != nil || string(deployed) != rec.Fullchain || len(f.requests()) != 0 {
		t.Fatalf("first pass: deployed %v (%d bytes), %d requests", err, len(deployed), len(f.requests()))
	}
	status := func(at time.Time) tlspilot.CertStatus {
		st, err := AgentStatus(ctx, e.st, f.srv.URL, []KeptCert{k.certs[0].cfg}, at, tlspilot.WarnWindow{})
		if err != nil {
			t.Fatal(err)
		}
		return st[1]
	}
	if s := status(start); s.State != tlspilot.StateValid || s.Deploy.State != tlspilot.DeployDone || s.Deploy.Serial != rec.Serial {
		t.Errorf("at the start: %s, deploy %+v", s.State, s.Deploy)
	}
	warnFrom := rec.NotAfter.Add(-3 * 24 * time.Hour)
	sawFailing, sawExpiring := false, false
	now := rec.RenewAt
	for now.Before(rec.NotAfter.Add(24 * time.Hour)) {
		next := k.Pass(ctx, now, false)
		if next.Sub(now) < 30*time.Second {
			t.Fatalf("at %s the next pass is %s later", now, next.Sub(now))
		}
		s := status(now)
		switch {
		case !now.Before(rec.NotAfter):
			if s.State != tlspilot.StateExpired {
				t.Fatalf("%s after expiry: %s", now.Sub(rec.NotAfter), s.State)
			}
		case !now.Before(warnFrom):
			sawExpiring = sawExpiring || s.State == tlspilot.StateExpiring
			if s.State != tlspilot.StateExpiring {
				t.Fatalf("%s before expiry: %s, want expiring", rec.NotAfter.Sub(now), s.State)
			}
		default:
			sawFailing = sawFailing || s.State == tlspilot.StateFailing
		}
		now = next
	}
	days := rec.NotAfter.Add(24*time.Hour).Sub(rec.RenewAt).Hours() / 24
	if n := len(f.requests()); float64(n) > days*48+10 || float64(n) < days*24 {
		t.Errorf("%d requests in %.1f days of outage, want one every 30 to 60 minutes", n, days)
	}
	if !sawFailing || !sawExpiring {
		t.Errorf("states seen: failing %v, expiring %v", sawFailing, sawExpiring)
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "fullchain.pem")); string(b) != rec.Fullchain {
		t.Errorf("the last good certificate was not kept deployed")
	}
}

// TestKeeperProcessing: while the issuer answers "processing", the agent
// polls with the same CSR after RetryAfter, bounded to 1 s..5 min, counts
// no failure, and --once reports the certificate as not there yet.
func TestKeeperProcessing(t *testing.T) {
	ctx := context.Background()
	retry := 0
	f := startFaultyIssuer(t, func([]byte) (int, any) {
		return http.StatusOK, CertificateResponse{Status: CertProcessing, RetryAfter: retry}
	})
	e := newAgentEnv(t)
	k := e.keeper(t, f, false, "db1.example.com")
	now := time.Now()
	for i, tc := range []struct {
		retryAfter int
		want       time.Duration
	}{{0, time.Second}, {30, 30 * time.Second}, {86400, 5 * time.Minute}} {
		f.mu.Lock()
		retry = tc.retryAfter
		f.mu.Unlock()
		next := k.Pass(ctx, now, false)
		rec := record(t, k)
		if rec.Pending == nil || rec.Pending.PollAt.Sub(now) != tc.want || !next.Equal(rec.Pending.PollAt) || rec.Attempts != 0 {
			t.Fatalf("retry_after %d: pending %+v, next in %s, attempts %d", tc.retryAfter, rec.Pending, next.Sub(now), rec.Attempts)
		}
		if k.Pass(ctx, now.Add(tc.want/2), false); len(f.requests()) != i+1 {
			t.Fatalf("polled before retry_after: %d requests", len(f.requests()))
		}
		now = rec.Pending.PollAt
	}
	reqs := f.requests()
	if !bytes.Equal(reqs[0], reqs[1]) || !bytes.Equal(reqs[1], reqs[2]) {
		t.Errorf("the CSR changed between polls")
	}
	if s, _ := AgentStatus(ctx, e.st, f.srv.URL, []KeptCert{k.certs[0].cfg}, now, tlspilot.WarnWindow{}); !s[1].Renewing || s[1].State != tlspilot.StatePending {
		t.Errorf("status while processing: %+v", s[1])
	}
	if res := k.Once(ctx, 0); res[0].OK || !strings.Contains(res[0].Problem, "still working on it") {
		t.Errorf("once: %+v", res)
	}
}

// TestKeeperRefusals: a policy refusal (403) and a certificate that is
// not for the agent's key or names are failures with backoff, and the
// next attempt makes a new key and CSR; a "failed" answer keeps the CSR
// and waits at least its RetryAfter.
func TestKeeperRefusals(t *testing.T) {
	ctx := context.Background()
	f := startFaultyIssuer(t, func([]byte) (int, any) {
		return http.StatusForbidden, errorResponse{"policy: db2.example.com is not among this agent's names"}
	})
	e := newAgentEnv(t)
	k := e.keeper(t, f, false, "db2.example.com")
	now := time.Now()
	k.Pass(ctx, now, false)
	rec := record(t, k)
	if rec.Attempts != 1 || rec.Pending != nil || !strings.Contains(rec.LastError, "policy: db2.example.com") {
		t.Errorf("after a policy refusal: attempts %d, pending %v, error %q", rec.Attempts, rec.Pending != nil, rec.LastError)
	}

	f.setAnswer(func([]byte) (int, any) {
		return http.StatusOK, CertificateResponse{Status: CertFailed, Error: "dns-01: no TXT record", RetryAfter: 7200}
	})
	now = rec.RetryAt
	k.Pass(ctx, now, false)
	rec = record(t, k)
	if rec.Attempts != 2 || rec.Pending == nil || rec.RetryAt.Sub(now) < 2*time.Hour || !strings.Contains(rec.LastError, "no TXT record") {
		t.Errorf("after failed: attempts %d, pending %v, retry in %s, error %q", rec.Attempts, rec.Pending != nil, rec.RetryAt.Sub(now), rec.LastError)
	}
	if reqs := f.requests(); bytes.Equal(reqs[0], reqs[1]) {
		t.Errorf("the CSR refused by policy was sent again")
	}

	other, _ := keys.Generate(keys.ECDSAP256)
	otherChain := chainFor(t, other.Public(), []string{"db2.example.com"}, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	f.setAnswer(func([]byte) (int, any) {
		return http.StatusOK, CertificateResponse{Status: CertValid, Fullchain: otherChain}
	})
	now = rec.RetryAt
	k.Pass(ctx, now, false)
	rec = record(t, k)
	if rec.Attempts != 3 || rec.Pending != nil || rec.Fullchain != "" || !strings.Contains(rec.LastError, "not for this agent's key") {
		t.Errorf("after a certificate for another key: attempts %d, pending %v, error %q", rec.Attempts, rec.Pending != nil, rec.LastError)
	}
	f.setAnswer(func(csr []byte) (int, any) {
		req, err := x509.ParseCertificateRequest(csr)
		var chain string
		if err == nil {
			chain, err = testChain(req.PublicKey, []string{"db2.example.com", "extra.example.com"}, now.Add(-time.Hour), now.AddDate(0, 0, 30))
		}
		if err != nil {
			return http.StatusInternalServerError, errorResponse{err.Error()}
		}
		return http.StatusOK, CertificateResponse{Status: CertValid, Fullchain: chain}
	})
	now = rec.RetryAt
	k.Pass(ctx, now, false)
	if rec = record(t, k); rec.Attempts != 4 || rec.Fullchain != "" || !strings.Contains(rec.LastError, "the certificate names db2.example.com,extra.example.com, not db2.example.com") {
		t.Errorf("after a certificate for other names: attempts %d, error %q", rec.Attempts, rec.LastError)
	}
}

// TestKeeperRenewsClientCertificate: against the real issuer API, once a
// third of its client certificate's lifetime remains the agent gets a new
// one for a new key, stores it (the next Keeper loads it), and uses it;
// the old one stays accepted until it expires.
func TestKeeperRenewsClientCertificate(t *testing.T) {
	ctx := context.Background()
	is := startIssuer(t)
	old := is.enrol(t, "web1")
	e := newAgentEnv(t)
	if err := SaveIdentity(ctx, e.st, e.sealer, old); err != nil {
		t.Fatal(err)
	}
	opts := KeeperOptions{Storage: e.st, Sealer: e.sealer, Issuer: is.url, Roots: is.roots,
		Certificates: []KeptCert{{Names: []string{"web1.example.com"}, KeyType: keys.ECDSAP256}}}
	k, err := NewKeeper(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if next := k.renewIdentity(ctx, time.Now(), false); !next.Equal(old.RenewAt()) || !k.id.Certificate.Equal(old.Certificate) {
		t.Fatalf("renewed before it was due; next look at %s, want %s", next, old.RenewAt())
	}
	next := k.renewIdentity(ctx, old.RenewAt(), false)
	if k.id.Certificate.Equal(old.Certificate) || k.idAttempts != 0 || !next.Equal(k.id.RenewAt()) {
		t.Fatalf("not renewed at RenewAt: attempts %d", k.idAttempts)
	}
	loaded, err := LoadIdentity(ctx, e.st, e.sealer)
	if err != nil || !loaded.Certificate.Equal(k.id.Certificate) || loaded.Host != "web1" {
		t.Fatalf("stored identity: %v", err)
	}
	if a, err := k.client.Agent(ctx); err != nil || a.Host != "web1" {
		t.Errorf("a call with the new client certificate: %+v, %v", a, err)
	}
	if _, err := is.client(t, old).Agent(ctx); err != nil {
		t.Errorf("the old client certificate, still valid, refused: %v", err)
	}
	k2, err := NewKeeper(ctx, opts)
	if err != nil || !k2.id.Certificate.Equal(k.id.Certificate) {
		t.Errorf("a restarted keeper does not use the new identity: %v", err)
	}
}

// TestKeeperDeployRetry: a reload that fails leaves the files in place,
// is owed and retried after its backoff (10 s at first), not before;
// status reports the deployment failing (CRITICAL: the software has not
// loaded any certificate of the agent yet). Deployed files removed by
// someone are written again, and reloaded, at the next pass.
func TestKeeperDeployRetry(t *testing.T) {
	ctx := context.Background()
	f := startFaultyIssuer(t, down)
	e := newAgentEnv(t)
	marker := filepath.Join(e.dir, "reloaded")
	keeper := func(reload ...string) *Keeper {
		d, err := deploy.New(deploy.Options{Fullchain: filepath.Join(e.dir, "fullchain.pem"), Privkey: filepath.Join(e.dir, "privkey.pem"), Reload: reload})
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(f.srv.Certificate())
		k, err := NewKeeper(ctx, KeeperOptions{Storage: e.st, Sealer: e.sealer, Issuer: f.srv.URL, Roots: roots,
			Certificates: []KeptCert{{Names: []string{"db1.example.com"}, KeyType: keys.ECDSAP256, Deployer: d}}})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := keeper("false")
	now := time.Now()
	rec := seed(t, k, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	next := k.Pass(ctx, now, false)
	got := record(t, k).Deploy
	if got.Attempts != 1 || !got.ReloadOwed || !strings.Contains(got.LastError, "reload false") || got.RetryAt.Sub(now) < 5*time.Second || !next.Equal(got.RetryAt) {
		t.Fatalf("after a failed reload: %+v, next pass in %s", got, next.Sub(now))
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "fullchain.pem")); string(b) != rec.Fullchain {
		t.Errorf("the files were not written before the reload")
	}
	st, _ := AgentStatus(ctx, e.st, f.srv.URL, []KeptCert{k.certs[0].cfg}, now, tlspilot.WarnWindow{})
	if ds := st[1].Deploy; ds == nil || ds.State != tlspilot.DeployFailing {
		t.Errorf("status: deploy %+v", ds)
	}
	if r := tlspilot.NewStatusReport(now, st, nil); r.ExitCode != tlspilot.ExitCritical {
		t.Errorf("status: exit %d, want CRITICAL (no certificate loaded yet)", r.ExitCode)
	}

	k = keeper("sh", "-c", "echo >> "+marker)
	k.Pass(ctx, now.Add(time.Second), false)
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("reloaded again before the backoff passed")
	}
	k.Pass(ctx, got.RetryAt, false)
	if b, _ := os.ReadFile(marker); string(b) != "\n" {
		t.Errorf("the owed reload did not run once at its retry: %q", b)
	}
	if got = record(t, k).Deploy; got.Attempts != 0 || got.ReloadOwed || got.Serial != rec.Serial {
		t.Errorf("after the reload: %+v", got)
	}

	if err := os.Remove(filepath.Join(e.dir, "privkey.pem")); err != nil {
		t.Fatal(err)
	}
	k.Pass(ctx, got.RetryAt.Add(time.Hour), false)
	if b, err := os.ReadFile(filepath.Join(e.dir, "privkey.pem")); err != nil || !strings.Contains(string(b), "PRIVATE KEY") {
		t.Errorf("the removed key file was not written again: %v", err)
	}
	if b, _ := os.ReadFile(marker); string(b) != "\n\n" {
		t.Errorf("no reload after the files were written again: %q", b)
	}
	if len(f.requests()) != 0 {
		t.Errorf("%d requests to the issuer for a certificate not due", len(f.requests()))
	}
}

// TestKeeperReuseKey: a renewal makes a new key by default, and keeps the
// key in service with reuse_key (and says so to the issuer).
func TestKeeperReuseKey(t *testing.T) {
	ctx := context.Background()
	f := startFaultyIssuer(t, down)
	for _, reuse := range []bool{false, true} {
		e := newAgentEnv(t)
		k := e.keeper(t, f, reuse, "db1.example.com")
		now := time.Now()
		rec := seed(t, k, now.Add(-20*24*time.Hour), now.Add(10*24*time.Hour))
		k.Pass(ctx, rec.RenewAt.Add(time.Minute), false)
		pending := record(t, k).Pending
		if pending == nil {
			t.Fatalf("reuse_key %v: no order in flight", reuse)
		}
		csr, err := x509.ParseCertificateRequest(pending.CSR)
		if err != nil {
			t.Fatal(err)
		}
		chain, _ := parseChain(rec.Fullchain)
		same := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey)
		f.mu.Lock()
		sent := f.reuse[len(f.reuse)-1]
		f.mu.Unlock()
		if same != reuse || sent != reuse {
			t.Errorf("reuse_key %v: the renewal's CSR has the key in service: %v; reuse_key sent: %v", reuse, same, sent)
		}
	}
}
