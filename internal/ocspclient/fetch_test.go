package ocspclient

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestFetchOpenSSL asks a real openssl ocsp responder, signing with a
// delegated responder certificate and with the CA's key, before and
// after a revocation.
func TestFetchOpenSSL(t *testing.T) {
	ctx := t.Context()
	for _, byCA := range []bool{false, true} {
		name := map[bool]string{false: "delegated", true: "signed by CA"}[byCA]
		t.Run(name, func(t *testing.T) {
			ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
			leaf := ca.Issue(testenv.IssueOptions{CommonName: "leaf.test", DNSNames: []string{"leaf.test"}})
			ca.StartOCSP(testenv.OCSPResponderOptions{SignWithCA: byCA})
			r, err := Fetch(ctx, Options{}, leaf.Cert, ca.Cert)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if r.Status != Good || r.NextUpdate.IsZero() {
				t.Fatalf("status %v, nextUpdate %v; want good with a nextUpdate", r.Status, r.NextUpdate)
			}
			ca.Revoke(leaf.CertFile, "keyCompromise")
			r, err = Fetch(ctx, Options{}, leaf.Cert, ca.Cert)
			if err != nil {
				t.Fatalf("Fetch after revocation: %v", err)
			}
			if r.Status != Revoked || r.Reason != 1 || r.RevokedAt.IsZero() {
				t.Fatalf("after revocation: status %v reason %d at %v; want revoked, keyCompromise (1)", r.Status, r.Reason, r.RevokedAt)
			}
		})
	}
}

// TestFetchErrors covers no responder, a responder down, and answers
// that must be refused: another CA's, too large, not 200.
func TestFetchErrors(t *testing.T) {
	ctx := t.Context()
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	other := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "other CA"})
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "leaf.test"})
	noURL := ca.Issue(testenv.IssueOptions{CommonName: "nourl.test", NoOCSP: true})
	other.StartOCSP(testenv.OCSPResponderOptions{})

	if _, err := Fetch(ctx, Options{}, noURL.Cert, ca.Cert); !errors.Is(err, ErrNoResponder) {
		t.Errorf("no OCSP URL: %v, want ErrNoResponder", err)
	}
	if _, err := Fetch(ctx, Options{}, leaf.Cert, ca.Cert); err == nil {
		t.Error("responder down: no error")
	}
	// The other CA's responder, named as override, answers for its own
	// issuer (or not at all): never accepted for this leaf.
	if r, err := Fetch(ctx, Options{Responder: other.OCSPURL}, leaf.Cert, ca.Cert); err == nil {
		t.Errorf("other CA's responder: accepted status %v", r.Status)
	}
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", DefaultMaxBodySize+1)))
	}))
	defer big.Close()
	if _, err := Fetch(ctx, Options{Responder: big.URL}, leaf.Cert, ca.Cert); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("large body: %v", err)
	}
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	if _, err := Fetch(ctx, Options{Responder: notFound.URL}, leaf.Cert, ca.Cert); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	if _, err := Fetch(ctx, Options{Responder: "ftp://x/"}, leaf.Cert, ca.Cert); err == nil {
		t.Error("ftp responder accepted")
	}
}

// TestCacheSurvivesRestart stores a response, then reads it with a new
// Cache over the same directory while the responder is down.
func TestCacheSurvivesRestart(t *testing.T) {
	ctx := t.Context()
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	leaf := ca.Issue(testenv.IssueOptions{CommonName: "leaf.test"})
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	dir := t.TempDir()
	store, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCache(CacheOptions{Storage: store})
	if _, err := c.Cached(ctx, leaf.Cert, ca.Cert); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Cached before any fetch: %v, want fs.ErrNotExist", err)
	}
	first, err := c.Get(ctx, leaf.Cert, ca.Cert)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	ca.StopOCSP()

	store2, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c2 := NewCache(CacheOptions{Storage: store2})
	got, err := c2.Get(ctx, leaf.Cert, ca.Cert)
	if err != nil {
		t.Fatalf("Get after restart, responder down: %v", err)
	}
	if string(got.Raw) != string(first.Raw) {
		t.Error("response after restart differs from the stored one")
	}
	if _, err := c2.Refresh(ctx, leaf.Cert, ca.Cert); err == nil {
		t.Error("Refresh with the responder down: no error")
	}
	if _, err := c2.Cached(ctx, leaf.Cert, ca.Cert); err != nil {
		t.Errorf("failed Refresh dropped the cached response: %v", err)
	}
	// A stored response is verified again on load: for another issuer's
	// certificate with the same key it is refused.
	other := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{})
	c3 := NewCache(CacheOptions{Storage: store2})
	if _, err := c3.Cached(ctx, leaf.Cert, other.Cert); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Cached for another issuer: %v, want fs.ErrNotExist", err)
	}
}

// TestRefreshSingleflight checks that concurrent refreshes of one
// certificate share one fetch (a fake fetch that blocks: the bubble's
// Wait then knows every caller joined).
func TestRefreshSingleflight(t *testing.T) {
	ca := newTestCA(t, "CA")
	leaf, _ := ca.issue(t, 9)
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		raw := respond(t, ca.cert, ca.cert, ca.key, ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber,
			ThisUpdate: now, NextUpdate: now.Add(time.Hour)})
		release := make(chan struct{})
		fetches := 0
		c := NewCache(CacheOptions{})
		c.fetch = func(ctx context.Context, _ Options, leaf, issuer *x509.Certificate) (*Response, error) {
			fetches++
			<-release
			return Parse(raw, leaf, issuer, time.Now())
		}
		errs := make(chan error, 5)
		for range 5 {
			go func() {
				_, err := c.Refresh(t.Context(), leaf, ca.cert)
				errs <- err
			}()
		}
		synctest.Wait()
		close(release)
		for range 5 {
			if err := <-errs; err != nil {
				t.Errorf("Refresh: %v", err)
			}
		}
		if fetches != 1 {
			t.Errorf("%d fetches, want 1", fetches)
		}
	})
}

// TestLatestTakesStoredNewer: two caches over one storage (two nodes);
// the one whose memory holds an older response takes the newer stored
// by the other.
func TestLatestTakesStoredNewer(t *testing.T) {
	ctx := t.Context()
	ca := newTestCA(t, "CA")
	leaf, _ := ca.issue(t, 11)
	store, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	parse := func(thisUpdate time.Time) *Response {
		raw := respond(t, ca.cert, ca.cert, ca.key, ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber,
			ThisUpdate: thisUpdate, NextUpdate: now.Add(time.Hour)})
		r, err := Parse(raw, leaf, ca.cert, now)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	older, newer := parse(now.Add(-30*time.Minute)), parse(now.Add(-time.Minute))
	a, b := NewCache(CacheOptions{Storage: store}), NewCache(CacheOptions{Storage: store})
	a.Put(ctx, older)
	b.Put(ctx, newer)
	if r, err := a.Cached(ctx, leaf, ca.cert); err != nil || !r.ThisUpdate.Equal(older.ThisUpdate) {
		t.Fatalf("Cached: %v, %v; want the older response from memory", r, err)
	}
	r, err := a.Latest(ctx, leaf, ca.cert)
	if err != nil || !r.ThisUpdate.Equal(newer.ThisUpdate) {
		t.Fatalf("Latest: %v, %v; want the newer stored response", r, err)
	}
	b.Put(ctx, older) // not newer than b's memory: storage keeps the newer
	if r, err := a.Latest(ctx, leaf, ca.cert); err != nil || !r.ThisUpdate.Equal(newer.ThisUpdate) {
		t.Fatalf("Latest after an older Put: %v, %v", r, err)
	}
}
