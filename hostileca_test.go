package tlspilot

// Adversarial tests: the CA is hostile or broken. A transport in front of
// the test Pebble (Config.caTransport) tampers with chosen answers, and a
// small in-memory CA produces what Pebble cannot (an order that stays
// "processing" with odd Retry-After values). Each test states what a
// careful client must do.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// hostileLimit is the most a careful client reads of one answer from the
// CA: a certificate chain is a few kilobytes, JSON objects smaller.
const hostileLimit = 16 << 20

// hostile is a transport to Pebble that hands every answer to tamper, if
// set, before the client sees it.
type hostile struct {
	base http.RoundTripper

	mu     sync.Mutex
	tamper func(req *http.Request, resp *http.Response) *http.Response
	hits   map[string]int // first path segment ("/certZ/") -> requests
}

func newHostile(p *testenv.Pebble) *hostile {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: p.Roots}
	return &hostile{base: t, hits: make(map[string]int)}
}

func (h *hostile) set(f func(req *http.Request, resp *http.Response) *http.Response) {
	h.mu.Lock()
	h.tamper = f
	h.mu.Unlock()
}

func (h *hostile) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[prefix]
}

func (h *hostile) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	seg := req.URL.Path
	if i := strings.Index(seg[1:], "/"); i >= 0 {
		seg = seg[:i+2]
	}
	h.mu.Lock()
	f := h.tamper
	h.hits[seg]++
	h.mu.Unlock()
	if f == nil {
		return resp, nil
	}
	return f(req, resp), nil
}

// setBody replaces the body of resp.
func setBody(resp *http.Response, body []byte) *http.Response {
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp
}

// editJSON rewrites the JSON object in resp's body with edit.
func editJSON(resp *http.Response, edit func(map[string]any)) *http.Response {
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return setBody(resp, b)
	}
	edit(m)
	out, _ := json.Marshal(m)
	return setBody(resp, out)
}

// countingBody is an endless-looking body of n bytes that counts what
// the client read of it.
type countingBody struct {
	prefix []byte
	left   int64
	read   *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.read.Add(int64(n))
		return n, nil
	}
	if c.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), c.left)
	for i := range p[:n] {
		p[i] = 'A'
	}
	c.left -= n
	c.read.Add(n)
	return int(n), nil
}

func (c *countingBody) Close() error { return nil }

// hostileManager starts a Manager whose requests to p go through h, and
// manages names.
func hostileManager(t *testing.T, p *testenv.Pebble, h *hostile, names ...string) (*Manager, *events) {
	t.Helper()
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.caTransport = h
	// A directory URL of this test's own: acmez caches directories
	// process-wide by URL, and a Pebble of an earlier test that had this
	// port left its good directory there, which a tampered one was then
	// never fetched in place of (TestHostileCADirectory obtained a
	// certificate through a "redirect loop").
	cfg.CA += "?test=" + url.QueryEscape(t.Name())
	m := startManager(t, p, cfg)
	if err := m.Manage(context.Background(), names...); err != nil {
		t.Fatal(err)
	}
	return m, ev
}

// outcome waits for the first obtained or failed event.
func outcome(t *testing.T, ev *events, timeout time.Duration) Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if e := ev.of(EventObtained); len(e) > 0 {
			return e[0]
		}
		if e := ev.of(EventFailed); len(e) > 0 {
			return e[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no obtained or failed event within %v", timeout)
	return Event{}
}

// servedSerial is the serial of the leaf m serves for name.
func servedSerial(t *testing.T, m *Manager, name string) string {
	t.Helper()
	return handshake(t, m, name, nil)[0].SerialNumber.String()
}

// forge issues a certificate from a throwaway issuer: for pub, names,
// valid from nb to na.
func forge(t *testing.T, pub crypto.PublicKey, names []string, nb, na time.Time) []byte {
	t.Helper()
	ik, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hostile issuer"},
		SubjectKeyId: []byte{1, 2, 3, 4}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: names,
		NotBefore: nb, NotAfter: na, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, issuer, pub, ik)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// splitChain returns the leaf of a PEM chain and the PEM that follows it.
func splitChain(chain []byte) (*x509.Certificate, []byte) {
	b, rest := pem.Decode(chain)
	if b == nil {
		return nil, nil
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, nil
	}
	return leaf, rest
}
