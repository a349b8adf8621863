package tlspilot

// Benchmarks of the figures docs/benchmarks.md records: the handshake
// path, memory and start-up over 10,000 stored certificates, and issuance
// of 100 certificates from a Pebble process. Their set-up (thousands of
// keys, a Pebble process) runs only under -bench.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// benchCerts is the number of stored certificates the in-memory
// benchmarks manage.
const benchCerts = 10_000

// benchCA is a directory URL nothing listens on: a Manager contacts its CA
// only in Run, which these benchmarks never call.
const benchCA = "https://127.0.0.1:1/dir"

// fixture is a storage directory holding certificates signed by one shared
// intermediate, written through the storage and key-encryption key that a
// Manager given cfg opens (files under StorageDir, or cfg.Storage).
type fixture struct {
	dir    string // StorageDir, "" over another storage
	cfg    Config // what a Manager over the fixture is given
	store  *certstore.Store
	issuer *x509.Certificate
	key    *ecdsa.PrivateKey
	pem    string // the issuer, PEM-encoded, appended to every chain
}

// newFixture creates an empty storage directory and the intermediate.
func newFixture(b *testing.B) *fixture {
	b.Helper()
	return newFixtureWith(b, Config{CA: benchCA, StorageDir: b.TempDir()})
}

// newFixtureWith creates the intermediate for a fixture over the storage
// that cfg names.
func newFixtureWith(b testing.TB, cfg Config) *fixture {
	b.Helper()
	m, err := New(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tlspilot bench intermediate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	return &fixture{
		dir:    cfg.StorageDir,
		cfg:    cfg,
		store:  m.store,
		issuer: issuer,
		key:    key,
		pem:    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}
}

// addCerts stores one ECDSA P-256 certificate for each name n(0..count-1)
// and returns the Cert specs that manage them and the leaves, in order.
func (fx *fixture) addCerts(b testing.TB, count int, n func(i int) string) ([]Cert, [][]byte) {
	b.Helper()
	specs := make([]Cert, count)
	leaves := make([][]byte, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	next := make(chan int)
	// Storing is bound by fsync, not by the cores.
	for range 16 {
		wg.Go(func() {
			for i := range next {
				specs[i] = Cert{Names: []string{n(i)}}
				leaves[i], errs[i] = fx.storeCert(b.Context(), n(i), int64(i))
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
	return specs, leaves
}

// storeCert issues a leaf for name and stores it as the Manager would
// after obtaining it. It returns the leaf.
func (fx *fixture) storeCert(ctx context.Context, name string, serial int64) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial + 2),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, fx.issuer, key.Public(), fx.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ariID, err := acmeclient.CertID(leaf)
	if err != nil {
		return nil, err
	}
	c := certstore.Cert{
		Names:     []string{name},
		KeyType:   keys.ECDSAP256,
		ChainPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + fx.pem,
		NotBefore: leaf.NotBefore,
		NotAfter:  leaf.NotAfter,
		Issuer:    fx.issuer.Subject.CommonName,
		CA:        benchCA,
		ARIID:     ariID,
		Obtained:  now,
		Key:       key,
	}
	return der, fx.store.StoreCert(ctx, certstore.CertID(c.Names, keys.ECDSAP256), c)
}

// newBenchManager returns a Manager over the fixture's storage.
func newBenchManager(b *testing.B, fx *fixture) *Manager {
	b.Helper()
	m, err := New(b.Context(), fx.cfg)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// manageWildcards manages each spec as a dns-01 certificate would be:
// ManageCerts refuses dns-01 until a provider exists, so the sites are
// built here as newSite builds them, and loaded and named as ManageCerts
// does.
func manageWildcards(b *testing.B, m *Manager, specs []Cert) {
	b.Helper()
	sites := make([]*site, len(specs))
	entries := make([]*entry, len(specs))
	for i, c := range specs {
		s := &site{names: c.Names}
		e := &entry{id: certstore.CertID(c.Names, ECDSAP256), site: s, keyType: ECDSAP256, challenge: DNS01}
		s.certs, s.ec = []*entry{e}, e
		sites[i], entries[i] = s, e
	}
	if err := m.loadAll(b.Context(), entries); err != nil {
		b.Fatal(err)
	}
	for _, s := range sites {
		if err := m.names.add(s); err != nil {
			b.Fatal(err)
		}
	}
}

// checkServing fails b unless m serves a stored certificate for each of
// its want certificates.
func checkServing(b *testing.B, m *Manager, want int) {
	b.Helper()
	st := m.Status()
	if len(st) != want {
		b.Fatalf("%d certificates managed, want %d", len(st), want)
	}
	for _, s := range st {
		if !s.Serving {
			b.Fatalf("%s is not serving", s.ID)
		}
	}
}

// hellos returns a TLS 1.3 ClientHello for each name n(0..count-1).
func hellos(count int, n func(i int) string) []*tls.ClientHelloInfo {
	out := make([]*tls.ClientHelloInfo, count)
	for i := range out {
		out[i] = &tls.ClientHelloInfo{
			ServerName:        n(i),
			SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256, tls.ECDSAWithP384AndSHA384, tls.PSSWithSHA384},
			SupportedVersions: []uint16{tls.VersionTLS13},
		}
	}
	return out
}

func siteName(i int) string      { return fmt.Sprintf("site%05d.example.test", i) }
func wildName(i int) string      { return fmt.Sprintf("*.wild%05d.example.test", i) }
func underWildName(i int) string { return fmt.Sprintf("www.wild%05d.example.test", i) }

// BenchmarkGetCertificate measures the handshake path with 10,000 exact
// and 10,000 wildcard names managed, cycling through every name. A hit
// must not allocate.
func BenchmarkGetCertificate(b *testing.B) {
	fx := newFixture(b)
	exact, exactLeaves := fx.addCerts(b, benchCerts, siteName)
	wild, wildLeaves := fx.addCerts(b, benchCerts, wildName)
	m := newBenchManager(b, fx)
	if err := m.ManageCerts(b.Context(), exact...); err != nil {
		b.Fatal(err)
	}
	manageWildcards(b, m, wild)
	cases := []struct {
		name   string
		hellos []*tls.ClientHelloInfo
		leaves [][]byte
	}{
		{"exact", hellos(benchCerts, siteName), exactLeaves},
		{"exact-mixedcase", hellos(benchCerts, func(i int) string { return fmt.Sprintf("Site%05d.Example.TEST", i) }), exactLeaves},
		{"wildcard", hellos(benchCerts, underWildName), wildLeaves},
		{"wildcard-mixedcase", hellos(benchCerts, func(i int) string { return fmt.Sprintf("WWW.Wild%05d.example.test", i) }), wildLeaves},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			for i, h := range bc.hellos {
				c, err := m.GetCertificate(h)
				if err != nil || string(c.Certificate[0]) != string(bc.leaves[i]) {
					b.Fatalf("GetCertificate(%q) did not return its stored certificate (error %v)", h.ServerName, err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := m.GetCertificate(bc.hellos[i]); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(bc.hellos) {
					i = 0
				}
			}
		})
	}
}

// heapAlloc returns the live heap after a collection. The second GC
// empties the victim caches of sync.Pools the first one left.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryPerCert reports the live heap a Manager holds per stored
// certificate it serves, at 10,000 certificates sharing one intermediate.
// Its ns/op is start-up plus two garbage collections: read B/cert.
func BenchmarkMemoryPerCert(b *testing.B) {
	fx := newFixture(b)
	specs, _ := fx.addCerts(b, benchCerts, siteName)
	var total float64
	for b.Loop() {
		before := heapAlloc()
		m := newBenchManager(b, fx)
		if err := m.ManageCerts(b.Context(), specs...); err != nil {
			b.Fatal(err)
		}
		after := heapAlloc()
		runtime.KeepAlive(m)
		total += (float64(after) - float64(before)) / benchCerts
	}
	b.ReportMetric(total/float64(b.N), "B/cert")
}

// BenchmarkStartup10k measures New plus ManageCerts over 10,000 stored
// certificates, until all of them are in service, as a restart: the
// first start, which also stores each certificate's renewal time, is
// made before timing (firstStart). cpu-ms/op is the CPU time this process
// used meanwhile (Linux only, see procCPU).
func BenchmarkStartup10k(b *testing.B) {
	fx := newFixture(b)
	specs, _ := fx.addCerts(b, benchCerts, siteName)
	firstStart(b, fx, specs)
	var cpu time.Duration
	for b.Loop() {
		cpu0 := procCPU("self")
		m := newBenchManager(b, fx)
		if err := m.ManageCerts(b.Context(), specs...); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += procCPU("self") - cpu0
		checkServing(b, m, benchCerts)
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/op")
	b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
}

// firstStart starts a Manager over fx once, untimed, so that the
// renewal state of every certificate is stored: each first start after
// a certificate was stored writes it (the renewal time drawn in its
// window), and later starts only read it.
func firstStart(b *testing.B, fx *fixture, specs []Cert) {
	b.Helper()
	if err := newBenchManager(b, fx).ManageCerts(b.Context(), specs...); err != nil {
		b.Fatal(err)
	}
}

// issue100Env makes TestIssue100Helper run when set to
// "<workers> <result file>".
const issue100Env = "TLSPILOT_BENCH_ISSUE100"

// issue100Result is what one issuance run reports to the benchmark.
type issue100Result struct {
	Seconds  float64 // from ManageCerts until all 100 certificates are served
	Requests int     // requests that reached the ACME API
	Failed   int     // failed attempts (EventFailed), each retried after a backoff
}

// BenchmarkIssue100 measures the wall time to obtain 100 single-name
// certificates from a Pebble process rejecting 20% of nonces, one order at
// a time (Workers 1) and with the default worker pool. Each iteration
// starts a fresh Pebble and storage. Read s/100certs: ns/op also counts
// starting Pebble.
func BenchmarkIssue100(b *testing.B) {
	for _, bc := range []struct {
		name    string
		workers int
	}{{"sequential", 1}, {"pool", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			var sum issue100Result
			for b.Loop() {
				r := runIssue100(b, bc.workers)
				sum.Seconds += r.Seconds
				sum.Requests += r.Requests
				sum.Failed += r.Failed
			}
			n := float64(b.N)
			b.ReportMetric(sum.Seconds/n, "s/100certs")
			b.ReportMetric(float64(sum.Requests)/n, "requests/op")
			b.ReportMetric(float64(sum.Failed)/n, "failures/op")
		})
	}
}

// runIssue100 runs TestIssue100Helper in a child process of the test
// binary and returns its result. The child exists because testenv's
// Pebble helpers take a *testing.T, which a benchmark does not have.
func runIssue100(b *testing.B, workers int) issue100Result {
	b.Helper()
	out := filepath.Join(b.TempDir(), "result.json")
	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestIssue100Helper$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), issue100Env+"="+strconv.Itoa(workers)+" "+out)
	if output, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("issuance run: %v\n%s", err, output)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var r issue100Result
	if err := json.Unmarshal(data, &r); err != nil {
		b.Fatal(err)
	}
	return r
}

// TestIssue100Helper is one run of BenchmarkIssue100; without the
// environment variable the benchmark sets, it returns at once (it is
// the benchmark's child process, not a test).
func TestIssue100Helper(t *testing.T) {
	spec := os.Getenv(issue100Env)
	if spec == "" {
		return
	}
	ws, out, _ := strings.Cut(spec, " ")
	workers, err := strconv.Atoi(ws)
	if err != nil || out == "" {
		t.Fatalf("%s=%q: want \"<workers> <result file>\"", issue100Env, spec)
	}
	p := testenv.StartPebbleProcess(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.Workers = workers
	m := startManager(t, p, cfg)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	certs := make([]Cert, 100)
	for i := range certs {
		certs[i] = Cert{Names: []string{fmt.Sprintf("c%03d.r%s.example.test", i, run)}}
	}
	start := time.Now()
	if err := m.ManageCerts(t.Context(), certs...); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 5*time.Minute)
	r := issue100Result{Seconds: time.Since(start).Seconds(), Requests: p.Requests(), Failed: len(ev.of(EventFailed))}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkReadStatus10k measures what `tlspilot status --json` does over
// 10,000 stored certificates: ReadStatus from the storage and the JSON
// document. peak-MB is the largest heap in use during one run.
func BenchmarkReadStatus10k(b *testing.B) {
	fx := newFixture(b)
	specs, _ := fx.addCerts(b, benchCerts, siteName)
	cfg := Config{CA: benchCA, StorageDir: fx.dir}
	var peak uint64
	for b.Loop() {
		r := ReadStatus(b.Context(), cfg, specs...)
		if len(r.Certificates) != benchCerts || r.ExitCode == ExitUnknown {
			b.Fatalf("%d certificates, %s %s", len(r.Certificates), r.Status, r.Error)
		}
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
}
