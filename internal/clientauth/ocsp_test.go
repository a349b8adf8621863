package clientauth

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// ocspPolicy asks the responder each certificate names, and nothing else.
func ocspPolicy(ca *testenv.OpenSSLCA, rev Revocation) Policy {
	return Policy{CAs: []*x509.Certificate{rootOf(ca).Cert}, Revocation: rev, OCSP: true}
}

func TestOCSPLeaf(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	good, bad := client(ca, "good"), client(ca, "bad")
	ca.StartOCSP(testenv.OCSPResponderOptions{}) // reads index.txt: start it after issuing (Revoke restarts it)
	ca.Revoke(bad.CertFile, "keyCompromise")
	chk := newChecker(t, ocspPolicy(ca, RevocationLeaf), Options{})
	accept(t, chk, good)
	r := refused(t, chk, bad, ReasonRevoked)
	if !strings.Contains(r.Detail, "ocsp "+ca.OCSPURL) || !strings.Contains(r.Detail, "reason 1 (keyCompromise)") {
		t.Errorf("detail %q, want the responder and reason 1 (keyCompromise)", r.Detail)
	}
}

// TestOCSPSignedByCA: a response signed by the issuer itself, not a
// delegated responder, is taken too.
func TestOCSPSignedByCA(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	bad := client(ca, "bad")
	ca.StartOCSP(testenv.OCSPResponderOptions{SignWithCA: true})
	ca.Revoke(bad.CertFile, "")
	refused(t, newChecker(t, ocspPolicy(ca, RevocationLeaf), Options{}), bad, ReasonRevoked)
}

func TestOCSPChain(t *testing.T) {
	root := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	inter := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Parent: root})
	good, bad := client(inter, "good"), client(inter, "bad")
	root.StartOCSP(testenv.OCSPResponderOptions{})
	inter.StartOCSP(testenv.OCSPResponderOptions{})
	inter.Revoke(bad.CertFile, "")

	chk := newChecker(t, ocspPolicy(inter, RevocationChain), Options{})
	accept(t, chk, good)
	if r := refused(t, chk, bad, ReasonRevoked); r.Depth != 0 {
		t.Errorf("refused at depth %d, want 0 (the client's own)", r.Depth)
	}

	root.Revoke(inter.CertFile, "cACompromise")
	chain := newChecker(t, ocspPolicy(inter, RevocationChain), Options{})
	r := refused(t, chain, good, ReasonRevoked)
	if r.Depth != 1 || r.Subject != "CN="+inter.Name || !strings.Contains(r.Detail, root.OCSPURL) {
		t.Errorf("refusal %v, want the intermediate at depth 1, from %s", r, root.OCSPURL)
	}
	// leaf mode does not look above the client's own certificate.
	accept(t, newChecker(t, ocspPolicy(inter, RevocationLeaf), Options{}), good)
}

func TestOCSPResponderDown(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	p := ocspPolicy(ca, RevocationLeaf)
	r := refused(t, newChecker(t, p, Options{}), c, ReasonUnknown)
	if !strings.Contains(r.Error(), ca.OCSPURL) {
		t.Errorf("refusal %v, want the responder named", r)
	}
	p.Unknown = UnknownAllow
	accept(t, newChecker(t, p, Options{}), c)
}

// TestOCSPCachedAnswer: a fresh answer keeps answering while the
// responder is down, from memory and, after a restart, from storage.
func TestOCSPCachedAnswer(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	good, bad := client(ca, "good"), client(ca, "bad")
	ca.StartOCSP(testenv.OCSPResponderOptions{}) // reads index.txt: start it after issuing (Revoke restarts it)
	ca.Revoke(bad.CertFile, "")
	store := newStore(t)
	p := ocspPolicy(ca, RevocationLeaf)
	chk := newChecker(t, p, Options{Storage: store})
	accept(t, chk, good)
	refused(t, chk, bad, ReasonRevoked)

	ca.StopOCSP()
	accept(t, chk, good)
	refused(t, chk, bad, ReasonRevoked)

	restarted := newChecker(t, p, Options{Storage: store})
	accept(t, restarted, good)
	refused(t, restarted, bad, ReasonRevoked)

	refused(t, newChecker(t, p, Options{Storage: newStore(t)}), good, ReasonUnknown)
}

// TestOCSPRefreshAhead: an answer past half its validity answers while a
// newer one is fetched in the background.
func TestOCSPRefreshAhead(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	chk := newChecker(t, ocspPolicy(ca, RevocationLeaf), Options{})
	accept(t, chk, c)
	ca.Revoke(c.CertFile, "")
	accept(t, chk, c) // the first answer is fresh, and not yet due

	chain := verified(t, c)
	refreshAt := time.Now().Add(time.Hour) // past the first answer's RefreshAt
	if _, _, err := chk.ocsp.cached(context.Background(), chain[0], chain[1], refreshAt); err != nil {
		t.Fatal(err)
	}
	chk.wg.Wait() // for the background refresh
	refused(t, chk, c, ReasonRevoked)
}

// TestOCSPOverrideResponder: ocsp_responder is asked for a certificate
// that names no responder.
func TestOCSPOverrideResponder(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	bad := ca.Issue(testenv.IssueOptions{CommonName: "bad", Client: true, NoOCSP: true, NoCRL: true})
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	ca.Revoke(bad.CertFile, "")
	p := ocspPolicy(ca, RevocationLeaf)
	r := refused(t, newChecker(t, p, Options{}), bad, ReasonUnknown)
	if !errors.Is(r, errNoSource) {
		t.Errorf("refusal %v, want no source", r)
	}
	p.OCSPResponder = ca.OCSPURL
	refused(t, newChecker(t, p, Options{}), bad, ReasonRevoked)
}

// TestCRLBeforeOCSP: with both configured, a CRL that covers the issuer
// answers and the responder (down here) is not asked.
func TestCRLBeforeOCSP(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	good, bad := client(ca, "good"), client(ca, "bad")
	ca.Revoke(bad.CertFile, "")
	p := ocspPolicy(ca, RevocationLeaf)
	p.CRLFiles = []string{ca.CRLFile}
	chk := newChecker(t, p, Options{})
	accept(t, chk, good)
	refused(t, chk, bad, ReasonRevoked)
}

// TestOCSPHangingResponder: while a responder that accepts connections
// and never answers holds one client's check, another client whose
// answer is cached is checked at once; the held one is refused when the
// timeout ends.
func TestOCSPHangingResponder(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	cached, held := client(ca, "cached"), client(ca, "held")
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	store := newStore(t)
	accept(t, newChecker(t, ocspPolicy(ca, RevocationLeaf), Options{Storage: store}), cached)

	hang := hangingServer(t)
	p := ocspPolicy(ca, RevocationLeaf)
	p.OCSPResponder = "http://" + hang.addr + "/"
	chk := newChecker(t, p, Options{Storage: store, Timeout: 3 * time.Second})
	done := make(chan error, 1)
	heldChain := verified(t, held)
	go func() { done <- chk.Check(context.Background(), heldChain) }()
	<-hang.accepted // the held check's request reached the responder

	accept(t, chk, cached)
	select {
	case err := <-done:
		t.Fatalf("held check returned before the cached one was checked: %v", err)
	default:
	}
	r := wantRefusal(t, <-done, ReasonUnknown)
	if !errors.Is(r, context.DeadlineExceeded) {
		t.Errorf("held check: %v, want the timeout", r)
	}
}

// hanging is a TCP server that accepts connections and never answers.
type hanging struct {
	addr     string
	accepted chan struct{} // closed at the first connection
}

func hangingServer(t *testing.T) *hanging {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hanging{addr: ln.Addr().String(), accepted: make(chan struct{})}
	var (
		mu    sync.Mutex
		conns []net.Conn
		once  sync.Once
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			once.Do(func() { close(h.accepted) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return h
}

// TestHangingDistributionPoint: a distribution point that never answers
// leaves time for the OCSP responder to answer within the timeout.
func TestHangingDistributionPoint(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	bad := client(ca, "bad")
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	ca.Revoke(bad.CertFile, "")
	p := ocspPolicy(ca, RevocationLeaf)
	p.CRLFetch = true
	hc := &http.Client{Transport: hangCRLs{http.DefaultTransport}}
	r := refused(t, newChecker(t, p, Options{HTTPClient: hc, Timeout: 4 * time.Second}), bad, ReasonRevoked)
	if !strings.Contains(r.Detail, "ocsp") {
		t.Errorf("refusal %v, want the answer from OCSP", r)
	}
}

// hangCRLs holds every GET (a CRL download) until its request ends, and
// passes other requests on (fault injection).
type hangCRLs struct{ next http.RoundTripper }

func (h hangCRLs) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	return h.next.RoundTrip(req)
}

// TestOCSPUnknownAskedAgain: a responder that does not know a certificate
// yet (one issued after it read its index) answers "unknown"; once the
// responder knows it, a handshake after unknownRecheck asks again, and
// the client gets in (it was refused until the unknown answer's
// half-life, hours).
func TestOCSPUnknownAskedAgain(t *testing.T) {
	defer func(d time.Duration) { unknownRecheck = d }(unknownRecheck)
	unknownRecheck = 200 * time.Millisecond
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	late := client(ca, "late") // after the responder read index.txt
	chk := newChecker(t, ocspPolicy(ca, RevocationLeaf), Options{})
	refused(t, chk, late, ReasonUnknown)
	ca.StopOCSP()
	ca.StartOCSP(testenv.OCSPResponderOptions{}) // reads index.txt again: knows late
	time.Sleep(2 * unknownRecheck)
	refused(t, chk, late, ReasonUnknown) // still the stored answer; asks again in the background
	chk.wg.Wait()
	accept(t, chk, late)
}

// TestOCSPGarbageAnswer: an answer that is not an OCSP response is
// refused saying so, with the decoder's error wrapped; the bare ASN.1
// dump was all the log said.
func TestOCSPGarbageAnswer(t *testing.T) {
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c := client(ca, "c")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write([]byte("garbage!"))
	}))
	t.Cleanup(srv.Close)
	p := Policy{CAs: []*x509.Certificate{ca.Cert}, Revocation: RevocationLeaf, OCSP: true, OCSPResponder: srv.URL}
	r := refused(t, newChecker(t, p, Options{}), c, ReasonUnknown)
	var structural asn1.StructuralError
	if !strings.Contains(r.Error(), "ocsp "+srv.URL+": the responder's answer is not an OCSP response: ") || !errors.As(r, &structural) {
		t.Errorf("refusal %v, want it to say the answer is not an OCSP response, the asn1 error wrapped", r)
	}
}

// TestOCSPFailureWordedInBackoff: a failed fetch says what was wrong in
// ocspclient.Problem's words, also when a check within failureBackoff
// gets the same failure without asking again (it got the bare error).
func TestOCSPFailureWordedInBackoff(t *testing.T) {
	ca := rvRoot(t, "OCSP CA")
	leaf := rvClient(t, ca, "erin")
	now := time.Now()
	other, err := ocsp.CreateResponse(ca.cert, ca.cert, ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(4242),
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(other)
	}))
	t.Cleanup(srv.Close)
	p := Policy{CAs: []*x509.Certificate{ca.cert}, VerifyDepth: 1, Revocation: RevocationLeaf, OCSP: true, OCSPResponder: srv.URL}
	chk := newChecker(t, p, Options{})
	chain := shortestChain(t, leaf, nil, ca.cert)
	for i := range 2 {
		r := wantRefusal(t, chk.Check(context.Background(), chain), ReasonUnknown)
		want := "ocsp " + srv.URL + ": answer for another serial: "
		if !strings.Contains(r.Error(), want) || !errors.Is(r, ocspclient.ErrWrongSerial) {
			t.Errorf("check %d: refusal %q, want it to say %q, ErrWrongSerial wrapped", i+1, r, want)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("responder asked %d times, want 1 (the second check within failureBackoff)", n)
	}
}
