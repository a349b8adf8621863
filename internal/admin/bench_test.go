package admin_test

// Benchmarks of the admin listener over 10,000 stored certificates, the
// figures docs/benchmarks.md records: GET /status, GET /metrics and the
// page, through a real loopback connection to a Manager that manages
// them all. The fixture is built as the root package's start-up
// benchmark builds its own: certificates signed by one intermediate,
// written through the storage and key-encryption key the Manager opens.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/admin"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

const (
	benchCerts = 10_000
	// benchCA is a directory URL nothing listens on: the Manager never
	// runs, so it never contacts its CA.
	benchCA = "https://127.0.0.1:1/dir"
)

// BenchmarkAdmin10k serves the admin Handler of a Manager holding 10,000
// stored certificates (one in ten failing to renew, with an error) and
// measures each endpoint. status also reports the peak RSS of the process
// from the Manager's start to the end of the /status runs (the fixture's
// own garbage is returned to the OS and the peak reset before).
func BenchmarkAdmin10k(b *testing.B) {
	dir := b.TempDir()
	specs := storeCerts(b, dir, benchCerts)
	debug.FreeOSMemory()
	resetPeakRSS(b)
	m, err := tlspilot.New(b.Context(), tlspilot.Config{CA: benchCA, StorageDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.ManageCerts(b.Context(), specs...); err != nil {
		b.Fatal(err)
	}
	b.Logf("peak RSS from start to 10,000 certificates in service: %.1f MB", peakRSS(b)/1e6)
	h, err := admin.New(admin.Options{Source: m})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{"/status", "/metrics", "/"} {
		name := strings.Trim(path, "/")
		if name == "" {
			name = "page"
		}
		b.Run(name, func(b *testing.B) {
			var size int64
			for b.Loop() {
				size = fetch(b, srv.URL+path)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(size)/1e6, "MB/response")
			if path == "/status" {
				b.ReportMetric(peakRSS(b)/1e6, "peak-RSS-MB")
			}
		})
	}
}

// fetch GETs url, checks for 200, and returns the body's size.
func fetch(b *testing.B, url string) int64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return n
}

// resetPeakRSS resets the process's peak RSS (VmHWM) to its current RSS.
func resetPeakRSS(b testing.TB) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset peak RSS: %v", err)
	}
}

// peakRSS returns VmHWM from /proc/self/status, in bytes.
func peakRSS(b testing.TB) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// issuer signs the fixture's certificates.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

// storeCerts stores count certificates in dir as a Manager would have
// after obtaining them, and returns the specs that manage them.
func storeCerts(b *testing.B, dir string, count int) []tlspilot.Cert {
	b.Helper()
	fs, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(dir, "kek"))
	if err != nil {
		b.Fatal(err)
	}
	st := certstore.New(fs, sealer)
	iss := newIssuer(b)
	specs := make([]tlspilot.Cert, count)
	errs := make([]error, count)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 { // storing is bound by fsync, not by the cores
		wg.Go(func() {
			for i := range next {
				name := fmt.Sprintf("site%05d.example.test", i)
				specs[i] = tlspilot.Cert{Names: []string{name}}
				errs[i] = iss.store(b.Context(), st, name, i)
			}
		})
	}
	for i := range count {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return specs
}

func newIssuer(b *testing.B) *issuer {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlspilot bench intermediate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	return &issuer{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// store issues certificate i for name and stores it; one in ten also
// gets a renewal state with three failed attempts.
func (iss *issuer) store(ctx context.Context, st *certstore.Store, name string, i int) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(i) + 2), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Duration(30+i%60) * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, iss.cert, key.Public(), iss.key)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	ariID, err := acmeclient.CertID(leaf)
	if err != nil {
		return err
	}
	id := certstore.CertID([]string{name}, keys.ECDSAP256)
	err = st.StoreCert(ctx, id, certstore.Cert{
		Names: []string{name}, KeyType: keys.ECDSAP256,
		ChainPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + iss.pem,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Issuer: iss.cert.Subject.CommonName,
		CA: benchCA, ARIID: ariID, Obtained: now, Key: key,
	})
	if err != nil || i%10 != 0 {
		return err
	}
	return st.StoreState(ctx, id, certstore.State{
		Attempts: 3, LastAttempt: now, RetryAt: now.Add(time.Hour),
		LastError:   "obtain " + name + ": authorization: urn:ietf:params:acme:error:connection: 192.0.2.1: Fetching http://" + name + "/.well-known/acme-challenge/x: Timeout during connect (likely firewall problem)",
		LastProblem: "urn:ietf:params:acme:error:connection",
	})
}
