package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/tlspilot/tlspilot/internal/devca"
)

// managementRootPath is where Pebble's management interface serves its
// first issuing root.
const managementRootPath = wfe.RootCertPath + "0"

// PebbleOptions configures a test CA. The zero value gives a CA like the one of
// lego's end-to-end tests: 20% of good nonces rejected, no validation delays,
// no authorization reuse, one profile named "default" with 90-day
// certificates.
type PebbleOptions struct {
	// NonceReject is the percentage of good nonces that Pebble rejects as
	// badNonce. 0 means 20; a negative value means none.
	NonceReject int
	// Sleep keeps Pebble's random delay of 0 to 5 seconds before each
	// validation. By default it is off (PEBBLE_VA_NOSLEEP=1).
	Sleep bool
	// Validity is the validity of certificates issued under the "default"
	// profile, rounded up to whole seconds. 0 means Pebble's default, 90 days.
	Validity time.Duration
	// Profiles adds profiles: name to certificate validity (0 means 90 days).
	// An entry named "default" overrides Validity. Pebble gives an order
	// that names no profile a random one, so with extra profiles a client
	// should name the profile it wants.
	Profiles map[string]time.Duration
	// EAB maps external account binding key IDs to base64url-encoded (no
	// padding) HMAC keys. If it is not empty, Pebble requires external
	// account binding for new accounts.
	EAB map[string]string
	// AuthzReuse is the percentage of identifiers for which Pebble reuses a
	// valid authorization of the account. 0 means almost never: Pebble's
	// check is off by one and still reuses 1% of the time. A negative value
	// means Pebble's default, 50.
	AuthzReuse int
	// RetryAfterOrder is the Retry-After, in seconds, that Pebble sends with
	// orders being processed; 0 means none. Pebble randomly writes it either
	// as seconds or as an HTTP date.
	RetryAfterOrder int
	// DNSServer, if set (host:port), is the DNS server Pebble's VA resolves
	// names with, over TCP, instead of a challtestsrv: for dns-01, a BIND
	// instance (see StartBIND). Pebble.DNS is then nil.
	DNSServer string
}

// Pebble is a running Pebble ACME server, with the DNS server its validation
// authority (VA) resolves names with. Its methods are safe for concurrent use.
// Everything is stopped at the end of the test that started it.
type Pebble struct {
	// DirectoryURL is the URL of the ACME directory, https://127.0.0.1:PORT/dir.
	// It is the counting handler's address, so every request a client makes
	// goes through it.
	DirectoryURL string
	// Roots trusts the TLS certificate of Pebble's ACME API. It does not
	// trust the certificates Pebble issues; see IssuerRoots.
	Roots *x509.CertPool
	// RootsPEM is the certificate in Roots, PEM-encoded.
	RootsPEM []byte
	// HTTPPort is the port on 127.0.0.1 where Pebble's VA fetches http-01
	// answers. It was free when Pebble started; the test must serve on it.
	HTTPPort int
	// TLSPort is the port on 127.0.0.1 where Pebble's VA does tls-alpn-01.
	TLSPort int
	// DNSAddr is the host:port of the DNS server Pebble's VA resolves names
	// with, over TCP.
	DNSAddr string
	// DNS is the challtestsrv behind DNSAddr: every A query gets 127.0.0.1,
	// AAAA queries get nothing. Tests may add records, such as TXT records
	// for dns-01. Caveat: challtestsrv registers its handler in the global
	// mux of github.com/miekg/dns, so when several Pebbles live in one test
	// binary, all their DNS servers answer from the records of the one
	// started last; tests that add records must not run in parallel with
	// other Pebble tests. It is nil when PebbleOptions.DNSServer is set.
	DNS *challtestsrv.ChallSrv

	cert    *devca.ServerCert // of the process's listeners; nil in-process
	rec     *recorder
	mgmtURL string // base URL of Pebble's management interface

	closeOnce sync.Once
	closers   []func() // run by Close, last first
}

// StartPebble starts Pebble inside the test binary with devca: an
// in-memory database, CA, VA and web front end served over HTTPS on
// 127.0.0.1. It stops Pebble in t.Cleanup.
//
// Pebble reads its settings from PEBBLE_* environment variables, so
// StartPebble sets them with t.Setenv: the test and its parents must not be
// parallel (t.Setenv panics otherwise). Use StartPebbleProcess in parallel
// tests. One goroutine of Pebble's VA, which Pebble cannot stop, outlives
// the test; it holds no listener.
func StartPebble(t *testing.T, opts PebbleOptions) *Pebble {
	t.Helper()
	logw := newTestLog(t)
	for _, kv := range pebbleEnv(opts) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	rec := &recorder{}
	dopts := devcaOptions(opts)
	dopts.Log, dopts.KeepEnv = logw, true
	if opts.DNSServer == "" {
		dopts.DNS = startDNS(t, logw)
	}
	dopts.Handler = func(h http.Handler) http.Handler {
		rec.next = h
		return rec
	}
	c, err := devca.Start(t.Context(), dopts)
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	p := &Pebble{
		DirectoryURL: c.DirectoryURL,
		Roots:        c.Roots,
		RootsPEM:     c.RootsPEM,
		HTTPPort:     c.HTTPPort,
		TLSPort:      c.TLSPort,
		DNSAddr:      c.DNSAddr,
		DNS:          c.DNS,
		rec:          rec,
		mgmtURL:      c.ManagementURL,
		closers:      []func(){c.Close},
	}
	t.Cleanup(p.Close)
	return p
}

// startDNS starts a DNS server that answers every A query with 127.0.0.1
// and shuts it down in t.Cleanup.
func startDNS(t *testing.T, logw io.Writer) *devca.DNSServer {
	t.Helper()
	dns, err := devca.StartDNS(t.Context(), logw)
	if err != nil {
		t.Fatalf("challtestsrv: %v", err)
	}
	t.Cleanup(dns.Close)
	return dns
}

// Close stops Pebble: afterwards nothing listens at DirectoryURL. The DNS
// server keeps running until the test's cleanup. Close may be called more
// than once; it is also called in t.Cleanup.
func (p *Pebble) Close() {
	p.closeOnce.Do(func() {
		for i := len(p.closers) - 1; i >= 0; i-- {
			p.closers[i]()
		}
	})
}

// Requests returns how many requests reached the ACME API, faulted ones
// included. Requests Pebble refused with badNonce are not counted: a client
// sends each of them again, and Pebble refuses good nonces at random
// (PebbleOptions.NonceReject).
func (p *Pebble) Requests() int {
	return p.rec.count("")
}

// RequestsTo returns how many requests to the ACME API had a path starting
// with pathPrefix, such as "/order-plz" or "/nonce-plz". Faulted requests
// count; requests Pebble refused with badNonce do not (see Requests).
func (p *Pebble) RequestsTo(pathPrefix string) int {
	return p.rec.count(pathPrefix)
}

// Orders returns how many newOrder requests Pebble answered with 201 Created.
func (p *Pebble) Orders() int {
	return len(p.rec.orders())
}

// OrdersFor returns how many new orders answered 201 included the
// identifier (a DNS name or IP address as sent).
func (p *Pebble) OrdersFor(identifier string) int {
	return p.rec.ordersFor(identifier)
}

// PebbleFindsSerial reports whether Pebble v2.10.1 finds the order that
// issued leaf from leaf's ARI certificate id (RFC 9773 §4.1), as a new
// order's "replaces" names it. Pebble keys orders by the hex of
// SerialNumber.Bytes(), and the id carries the serial's DER integer
// bytes, which start with an extra 0x00 when the first byte is 0x80 or
// more (about one Pebble serial in 256): Pebble then answers
// serverInternal ("could not find an order for the given certificate"),
// and tlspilot orders again without replaces (internal/issuance).
func PebbleFindsSerial(leaf *x509.Certificate) bool {
	b := leaf.SerialNumber.Bytes()
	return len(b) == 0 || b[0] < 0x80
}

// Replaces returns the "replaces" field (the ARI certificate ID) of each
// newOrder request that Pebble answered with 201 Created, in the order the
// answers completed; "" for orders without one.
func (p *Pebble) Replaces() []string {
	return p.rec.orders()
}

// SetFault installs f in front of Pebble. f sees every request to the ACME
// API, with its own copy of the body; if it returns true it has answered
// the request itself (see WriteProblem) and Pebble does not see it. A nil f
// removes the fault. Faulted requests count in Requests and RequestsTo, not
// in Orders. f runs on the server's goroutines: it must not call t.Fatal.
func (p *Pebble) SetFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	p.rec.setFault(f)
}

// IssuerRoots returns Pebble's issuing root, fetched from its management
// interface, to verify the certificates it issues. The root is generated
// when Pebble starts, so it differs between Pebbles.
func (p *Pebble) IssuerRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	body := p.IssuerRootsPEM(t)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		t.Fatalf("pebble: no certificate in %s: %q", managementRootPath, body)
	}
	return pool
}

// IssuerRootsPEM returns Pebble's issuing root in PEM, as a file for
// clients such as curl.
func (p *Pebble) IssuerRootsPEM(t *testing.T) []byte {
	t.Helper()
	return p.management(t, http.MethodGet, managementRootPath, nil)
}

// SetARIWindow makes Pebble's renewal information for cert (which Pebble
// issued) suggest renewing between start and end, instead of its default
// window centred two thirds into the validity.
func (p *Pebble) SetARIWindow(t *testing.T, cert *x509.Certificate, start, end time.Time) {
	t.Helper()
	window := fmt.Sprintf(`{"suggestedWindow":{"start":%q,"end":%q}}`,
		start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	body, _ := json.Marshal(map[string]string{ // cannot fail: strings
		"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		"ariResponse": window,
	})
	p.management(t, http.MethodPost, "/set-renewal-info/", strings.NewReader(string(body)))
}

// management makes a request to Pebble's management interface, checks that
// the answer is 200 OK, and returns its body.
func (p *Pebble) management(t *testing.T, method, path string, body io.Reader) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, p.mgmtURL+path, body)
	if err != nil {
		t.Fatalf("pebble management: %v", err)
	}
	client := p.client()
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("pebble management: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("pebble management %s %s: read body: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble management %s %s: %s: %s", method, path, resp.Status, got)
	}
	return got
}

// client returns an HTTP client that trusts Roots.
func (p *Pebble) client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}},
		Timeout:   10 * time.Second,
	}
}

// devcaOptions returns the devca options that configure Pebble for opts.
func devcaOptions(opts PebbleOptions) devca.Options {
	return devca.Options{
		NonceReject:     opts.NonceReject,
		Sleep:           opts.Sleep,
		Validity:        opts.Validity,
		Profiles:        opts.Profiles,
		EAB:             opts.EAB,
		AuthzReuse:      opts.AuthzReuse,
		RetryAfterOrder: opts.RetryAfterOrder,
		DNSServer:       opts.DNSServer,
	}
}

// pebbleEnv returns the PEBBLE_* environment variables, as key=value, that
// configure Pebble for opts. Variables Pebble should ignore are set empty.
func pebbleEnv(opts PebbleOptions) []string {
	return devcaOptions(opts).Env()
}

// profiles returns Pebble's profiles for opts.
func profiles(opts PebbleOptions) map[string]ca.Profile {
	return devcaOptions(opts).PebbleProfiles()
}

// CertStatus returns what Pebble's management interface says of the
// certificate with serial (hex): "Valid" or "Revoked", with the CRLReason
// code of a revocation (-1 if none was given).
func (p *Pebble) CertStatus(t *testing.T, serial string) (status string, reason int) {
	t.Helper()
	var got struct {
		Status string
		Reason *int
	}
	body := p.management(t, http.MethodGet, "/cert-status-by-serial/"+serial, nil)
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("cert status of %s: %v (%s)", serial, err, body)
	}
	reason = -1
	if got.Reason != nil {
		reason = *got.Reason
	}
	return got.Status, reason
}
