package tlspilot

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestClean: certificates from Pebble that are no longer configured are
// removed once expired or obtained more than OlderThan ago, with every
// record under their folder; configured ones, the account and the
// key-encryption key stay; a dry run changes nothing.
func TestClean(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{Validity: 5 * time.Second})
	cfg := testConfig(t, p, nil)
	ctx := context.Background()
	keep, gone, fresh := Cert{Names: []string{"keep.example.test"}}, Cert{Names: []string{"gone.example.test"}}, Cert{Names: []string{"fresh.example.test"}}
	obtain(t, p, cfg, keep, gone)
	before := readTree(t, cfg.StorageDir)

	// Nothing unmanaged is old enough yet.
	if got, err := Clean(ctx, cfg, CleanOptions{OlderThan: 30 * 24 * time.Hour}, keep); err != nil || len(got) != 0 {
		t.Fatalf("Clean(30d): %v %+v, want nothing removed", err, got)
	}
	// A dry run names what would go and removes nothing.
	got, err := Clean(ctx, cfg, CleanOptions{OlderThan: time.Nanosecond, DryRun: true}, keep)
	if err != nil || len(got) != 1 || !slices.Equal(got[0].Names, gone.Names) || got[0].Reason != "obtained 0d ago" {
		t.Fatalf("dry run: %v %+v, want gone.example.test", err, got)
	}
	if after := readTree(t, cfg.StorageDir); len(after) != len(before) {
		t.Errorf("dry run changed the storage: %d files, then %d", len(before), len(after))
	}

	// Once gone's certificate has expired it goes; fresh, obtained
	// later, stays.
	time.Sleep(time.Until(got[0].NotAfter) + 100*time.Millisecond)
	obtain(t, p, cfg, fresh)
	got, err = Clean(ctx, cfg, CleanOptions{OlderThan: 30 * 24 * time.Hour}, keep)
	if err != nil || len(got) != 1 || !slices.Equal(got[0].Names, gone.Names) || got[0].Reason != "expired" {
		t.Fatalf("Clean after expiry: %v %+v, want gone.example.test expired", err, got)
	}
	ids, err := storedIDs(ctx, mustStore(t, cfg))
	if err != nil || len(ids) != 2 || slices.Contains(ids, got[0].ID) {
		t.Errorf("stored after Clean: %v %v, want keep and fresh", ids, err)
	}
	// With --older-than shorter than its age, fresh goes too; keep, the
	// account and the key-encryption key stay.
	if got, err = Clean(ctx, cfg, CleanOptions{OlderThan: time.Nanosecond}, keep); err != nil || len(got) != 1 || !slices.Equal(got[0].Names, fresh.Names) {
		t.Fatalf("Clean(1ns): %v %+v, want fresh.example.test", err, got)
	}
	after := readTree(t, cfg.StorageDir)
	for path := range before {
		rel, _ := filepath.Rel(cfg.StorageDir, path)
		_, kept := after[path]
		if removable := strings.Contains(rel, "/certs/gone.example.test-"); kept == removable {
			t.Errorf("%s: kept %v", rel, kept)
		}
	}
}

// obtain runs a Manager on cfg until certs are obtained.
func obtain(t *testing.T, p *testenv.Pebble, cfg Config, certs ...Cert) {
	t.Helper()
	t.Run("obtain", func(t *testing.T) {
		m := startManager(t, p, cfg)
		if err := m.ManageCerts(context.Background(), certs...); err != nil {
			t.Fatal(err)
		}
		waitServing(t, m, 30*time.Second)
	})
}

// mustStore opens cfg's storage as Clean does.
func mustStore(t *testing.T, cfg Config) *certstore.Store {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	st, err := cleanStore(cfg, true)
	if err != nil || st == nil {
		t.Fatalf("open storage: %v", err)
	}
	return st
}

// TestCleanOCSP: Clean removes the OCSP responses serve stored (ocsp/…)
// once stale for over a day, and unreadable ones, and keeps fresh ones;
// a dry run only names them. Each renewal leaves the old certificate's
// response behind, so without this they piled up for good.
func TestCleanOCSP(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "storage")
	st, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	issuerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test issuer"},
		NotBefore: now.Add(-30 * 24 * time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &issuerKey.PublicKey, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := x509.ParseCertificate(der)
	cache := ocspclient.NewCache(ocspclient.CacheOptions{Storage: st})
	// put stores a response about a new leaf, valid from thisUpdate for a day.
	put := func(serial int64, thisUpdate time.Time) string {
		leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: now.Add(-10 * 24 * time.Hour), NotAfter: now.Add(10 * 24 * time.Hour)}
		lder, err := x509.CreateCertificate(rand.Reader, leafTmpl, issuer, &issuerKey.PublicKey, issuerKey)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(lder)
		raw, err := ocsp.CreateResponse(issuer, issuer, ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber,
			ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(24 * time.Hour)}, issuerKey)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ocspclient.Parse(raw, leaf, issuer, thisUpdate.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		cache.Put(ctx, r)
		return r.ID.StorageKey()
	}
	fresh := put(2, now.Add(-time.Hour))      // good until tomorrow
	recent := put(3, now.Add(-36*time.Hour))  // stale for 12 hours: kept a while
	stale := put(4, now.Add(-5*24*time.Hour)) // stale for 4 days
	if err := st.Store(ctx, "ocsp/0123456789abcdef", []byte("not a record")); err != nil {
		t.Fatal(err)
	}
	cfg := Config{StorageDir: dir, Email: "ops@example.test"}

	got, err := Clean(ctx, cfg, CleanOptions{DryRun: true})
	reasons := map[string]string{}
	for _, c := range got {
		reasons[c.ID] = c.Reason
	}
	if err != nil || len(got) != 2 || reasons["ocsp/0123456789abcdef"] != "OCSP response unreadable" ||
		!strings.HasPrefix(reasons[stale], "OCSP response stale since ") {
		t.Fatalf("dry run: %v %+v; want the unreadable and the 4-day stale records", err, got)
	}
	if keys, _ := st.List(ctx, "ocsp"); len(keys) != 4 {
		t.Errorf("dry run removed records: %v", keys)
	}
	if got, err = Clean(ctx, cfg, CleanOptions{}); err != nil || len(got) != 2 {
		t.Fatalf("Clean: %v %+v", err, got)
	}
	keys, _ := st.List(ctx, "ocsp")
	slices.Sort(keys)
	want := []string{fresh, recent}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("left %v, want the fresh and the recently stale %v", keys, want)
	}
}
