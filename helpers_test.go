package tlspilot

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/tlspilot/tlspilot/storage"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// testLogger logs through t.Log at debug level when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// events collects the events a Manager sends.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (ev *events) add(e Event) {
	ev.mu.Lock()
	ev.all = append(ev.all, e)
	ev.mu.Unlock()
}

func (ev *events) of(typ EventType) []Event {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var out []Event
	for _, e := range ev.all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// testConfig returns a Config that talks to p and keeps its files in a
// temporary directory.
func testConfig(t *testing.T, p *testenv.Pebble, ev *events) Config {
	t.Helper()
	cfg := Config{
		CA:         p.DirectoryURL,
		CARoots:    p.Roots,
		Email:      "ops@example.test",
		AgreeTerms: true,
		StorageDir: t.TempDir(),
		Logger:     testLogger(t),
		RetryMin:   time.Second,
		RetryMax:   5 * time.Second,
	}
	if ev != nil {
		cfg.OnEvent = ev.add
	}
	return cfg
}

// startManager creates a Manager for cfg, serves its http-01 and
// tls-alpn-01 answers on Pebble's validation ports, and runs it until the
// test ends.
func startManager(t *testing.T, p *testenv.Pebble, cfg Config) *Manager {
	t.Helper()
	m := startManager2(t, p, cfg)
	serveChallenges(t, p, m)
	return m
}

// serveChallenges serves m's http-01 handler and TLS config on the ports
// Pebble validates on.
func serveChallenges(t *testing.T, p *testenv.Pebble, m *Manager) {
	t.Helper()
	hl := listen(t, p.HTTPPort)
	hs := &http.Server{Handler: m.HTTPHandler(nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(hl) }()
	tl := listen(t, p.TLSPort)
	ts := &http.Server{Handler: http.NotFoundHandler(), TLSConfig: m.TLSConfig(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ts.ServeTLS(tl, "", "") }()
	t.Cleanup(func() {
		_ = hs.Close()
		_ = ts.Close()
	})
}

// listen binds 127.0.0.1:port, retrying briefly while an earlier test's
// listener is released.
func listen(t *testing.T, port int) net.Listener {
	t.Helper()
	var err error
	for range 50 {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("listen on port %d: %v", port, err)
	return nil
}

// waitServing waits until every certificate of m is CA-issued.
func waitServing(t *testing.T, m *Manager, timeout time.Duration) []CertStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := m.Status()
		ok := len(st) > 0
		for _, s := range st {
			if !s.Serving {
				ok = false
			}
		}
		if ok {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificates not obtained within %v: %+v", timeout, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// handshake connects to the Manager's TLS config in memory and returns the
// certificate chain the server presented.
func handshake(t *testing.T, m *Manager, serverName string, client *tls.Config) []*x509.Certificate {
	t.Helper()
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	srv := tls.Server(c2, m.TLSConfig())
	go func() { _ = srv.Handshake() }()
	if client == nil {
		client = &tls.Config{}
	}
	client = client.Clone()
	client.ServerName = serverName
	client.InsecureSkipVerify = true
	cl := tls.Client(c1, client)
	if err := cl.Handshake(); err != nil {
		t.Fatalf("handshake for %q: %v", serverName, err)
	}
	return cl.ConnectionState().PeerCertificates
}

// verify checks that chain is valid for name under roots.
func verify(t *testing.T, chain []*x509.Certificate, roots *x509.CertPool, name string) {
	t.Helper()
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("certificate for %s does not verify: %v", name, err)
	}
}

// helloFor is a ClientHello for name from a modern client.
func helloFor(name string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:        name,
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256},
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
	}
}

// storageStub satisfies storage.Storage and fails every call.
type storageStub struct{}

func (storageStub) Load(context.Context, string) ([]byte, error) { return nil, errStub }
func (storageStub) Store(context.Context, string, []byte) error  { return errStub }
func (storageStub) Delete(context.Context, string) error         { return errStub }
func (storageStub) List(context.Context, string) ([]string, error) {
	return nil, errStub
}
func (storageStub) Lock(context.Context, string) (storage.Lease, error) { return nil, errStub }

var errStub = errors.New("stub storage")

// startManager2 starts a further Manager for p that serves no challenge
// ports itself: it relies on another Manager on the same storage to answer
// its challenges, as processes sharing a storage do.
func startManager2(t *testing.T, p *testenv.Pebble, cfg Config) *Manager {
	t.Helper()
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	runManager(t, m)
	return m
}

// readTree returns the files below dir and their contents.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
