package stapler

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// crossSigned returns a copy of ca's certificate (same subject, same key,
// same key identifier) signed by a new root of another name: the
// cross-signed intermediate a CA offers in an alternative chain.
func crossSigned(t *testing.T, ca *testenv.OpenSSLCA) *x509.Certificate {
	t.Helper()
	rk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rder, err := x509.CreateCertificate(rand.Reader, rootT, rootT, &rk.PublicKey, rk)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rder)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), RawSubject: ca.Cert.RawSubject, SubjectKeyId: ca.Cert.SubjectKeyId,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, ca.Cert.PublicKey, rk)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReviewCrossSignedChainsOneItem: two sites serve one leaf, one with
// the intermediate, the other with its cross-signed copy (same name and
// key: the OCSP CertID, the request and the answer are the same). keyOf
// hashes the DER of the second certificate, so the leaf gets two items:
// two fetch schedules and backoffs, a warning per item for each failed
// fetch, and two Status entries with the same serial and name, which
// admin's /metrics exports as duplicate series (the registry refuses to
// gather a label set twice).
func TestReviewCrossSignedChainsOneItem(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "a.test", DNSNames: []string{"a.test"}})
	startFakeResponder(t, ca, "tryLater")
	recs := &logRecords{}
	s := newStaplerOpts(t, recs, Options{})
	a := loadPair(t, leaf)
	x := crossSigned(t, ca)
	if err := leaf.Cert.CheckSignatureFrom(x); err != nil {
		t.Fatalf("the cross-signed copy does not verify the leaf: %v", err)
	}
	b := &tls.Certificate{Certificate: [][]byte{a.Certificate[0], x.Raw}, PrivateKey: a.PrivateKey}
	s.Prepare(a)
	s.Prepare(b)
	waitFor(t, "a failed fetch", func() bool {
		for _, st := range s.Status() {
			if st.Failures > 0 {
				return true
			}
		}
		return false
	})
	time.Sleep(200 * time.Millisecond) // a second item's fetch would be made meanwhile
	if st := s.Status(); len(st) != 1 {
		t.Errorf("Status = %+v: %d entries for one leaf (same serial and name: duplicate /metrics series), want 1", st, len(st))
	}
	if n := len(recs.messages()); n != 1 {
		t.Errorf("logged %q, want one warning", recs.messages())
	}
}

// TestReviewStapleConcurrentSweep: handshakes on many values of one
// certificate (reloads), Prepare and sweeps that drop every holder, at
// once, under -race; after them, still one item, stapling. Pins what
// held.
func TestReviewStapleConcurrentSweep(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	s := newStaplerOpts(t, &logRecords{}, Options{})
	first := loadPair(t, leaf)
	s.Prepare(first)
	waitFor(t, "a staple", func() bool { return s.Staple(first).OCSPStaple != nil })
	values := []*tls.Certificate{first, loadPair(t, leaf), loadPair(t, leaf), loadPair(t, leaf)}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 300 {
				tc := values[(i+j)%len(values)]
				if j%50 == 0 {
					s.Prepare(tc)
				}
				if got := s.Staple(tc); got == nil {
					t.Error("Staple returned nil")
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			s.sweepAt(time.Now().Add(DefaultIdle + time.Hour)) // every holder idle
		}
	})
	wg.Wait()
	waitFor(t, "a staple after the sweeps", func() bool { return s.Staple(values[1]).OCSPStaple != nil })
	if st := s.Status(); len(st) != 1 {
		t.Errorf("Status = %+v, want one entry", st)
	}
}

// TestReviewStapleNoAllocs pins BenchmarkStaple's claim on the real path
// (holders made by Prepare, the item's staple set): a handshake with a
// staple at hand allocates nothing once the copy is made.
func TestReviewStapleNoAllocs(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	s := newStaplerOpts(t, &logRecords{}, Options{})
	tc := loadPair(t, leaf)
	s.Prepare(tc)
	now := time.Now()
	s.holder(tc).it.staple.Store(&ocspclient.Response{Raw: []byte("staple"), ThisUpdate: now, NextUpdate: now.Add(time.Hour)})
	s.Staple(tc)
	if n := testing.AllocsPerRun(1000, func() { s.Staple(tc) }); n != 0 {
		t.Errorf("Staple allocates %v times per call, want 0", n)
	}
}

// TestReviewReloadReleasesOldValues: serve loads a cert_file site's
// files into a new *tls.Certificate at every reload. Before 53d3706 the
// new value took over the old one's item and the old value was dropped
// at once (takeOver: items.Delete(old.src)); now each value stays a
// holder, with its private key, chain, parsed leaf and stapled copy,
// until it has gone unused for Options.Idle (7 days): a sweep two hours
// after five reloads still holds all six. A holder costs one SHA-256 to
// make again, so it need not outlive a sweep period unused.
func TestReviewReloadReleasesOldValues(t *testing.T) {
	ca := newIntermediate(t)
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "www.test"})
	startFakeResponder(t, ca, "good")
	s := newStaplerOpts(t, &logRecords{}, Options{})
	old := []*tls.Certificate{loadPair(t, leaf)}
	s.Prepare(old[0])
	waitFor(t, "a staple", func() bool { return s.Staple(old[0]).OCSPStaple != nil })
	for range 5 {
		tc := loadPair(t, leaf) // a reload
		s.Prepare(tc)
		s.Staple(tc)
		old = append(old, tc)
	}
	s.sweepAt(time.Now().Add(2 * time.Hour)) // no handshake since, on any of them
	kept := 0
	for _, tc := range old[:len(old)-1] {
		if _, ok := s.values.Load(tc); ok {
			kept++
		}
	}
	if kept > 0 {
		t.Errorf("%d of the 5 replaced values still held after a sweep 2h later (released only after %v unused)", kept, DefaultIdle)
	}
}
