package tlspilot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestCleanDecidesUnderLock: Clean decides whether a record goes under
// the certificate's issue lock, where a Manager ordering it cannot
// change it. A serve still running an older config (the name not yet
// removed from it) that re-obtains a damaged record, or renews an old
// one, holds that lock while it stores the new certificate; Clean, which
// had read the record before waiting for the lock, removed the
// certificate just obtained: "damaged", or "obtained 40d ago", no longer
// true of what it deleted.
func TestCleanDecidesUnderLock(t *testing.T) {
	cfg := noCAConfig(t)
	ctx := t.Context()
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir})
	if err != nil {
		t.Fatal(err)
	}
	st := certstore.New(fs, nil)
	old := certstore.Cert{Names: []string{"old.example.test"}, KeyType: ECDSAP256,
		NotAfter: time.Now().Add(50 * 24 * time.Hour), Obtained: time.Now().Add(-40 * 24 * time.Hour)}
	if err := fs.Store(ctx, "certs/a-damaged/cert.json", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	storeCertJSON(t, fs, "b-old", old)

	// What the lock holder stored before it let go, for each id.
	fresh := old
	fresh.Obtained = time.Now()
	fresh.NotAfter = time.Now().Add(90 * 24 * time.Hour)
	cfg.Storage = &renewedUnderLock{Storage: fs, t: t, store: func(id string) { storeCertJSON(t, fs, id, fresh) }}

	got, err := Clean(ctx, cfg, CleanOptions{OlderThan: 30 * 24 * time.Hour})
	if err != nil || len(got) != 0 {
		t.Errorf("Clean: %v, removed %+v; want nothing: each record was renewed under its lock", err, got)
	}
	for _, id := range []string{"a-damaged", "b-old"} {
		if c, err := st.LoadCertInfo(ctx, id); err != nil || !c.Obtained.Equal(fresh.Obtained) {
			t.Errorf("%s after Clean: %v; want the certificate stored under the lock", id, err)
		}
	}
}

// renewedUnderLock is a storage whose issue locks are granted once
// store(id) ran: the process that held the lock stored a new
// certificate before letting go.
type renewedUnderLock struct {
	storage.Storage
	t     *testing.T
	store func(id string)
}

func (s *renewedUnderLock) Lock(ctx context.Context, name string) (storage.Lease, error) {
	if id, ok := cutIssueLock(name); ok {
		s.store(id)
	}
	return s.Storage.Lock(ctx, name)
}

// cutIssueLock returns the certificate id of an issue lock's name.
func cutIssueLock(name string) (string, bool) {
	const prefix = "issue/"
	if len(name) > len(prefix) && name[:len(prefix)] == prefix {
		return name[len(prefix):], true
	}
	return "", false
}

// storeCertJSON stores c as certificate id's record, without a key
// (Clean reads no key).
func storeCertJSON(t *testing.T, st storage.Storage, id string, c certstore.Cert) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Store(context.Background(), "certs/"+id+"/cert.json", b); err != nil {
		t.Fatal(err)
	}
}

// TestCleanStopsWhenCancelled: Clean goes on past a record it cannot
// read, but not past the end of its context (tlspilot clean interrupted
// with Ctrl-C): it stops there and says so once. It went on through
// every record left, each failing at once with the same error, printed
// one line per record.
func TestCleanStopsWhenCancelled(t *testing.T) {
	cfg := noCAConfig(t)
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		past := time.Now().Add(-24 * time.Hour)
		storeCertJSON(t, fs, id+"-gone", certstore.Cert{Names: []string{id + ".example.test"}, NotAfter: past, Obtained: past.Add(-time.Hour)})
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg.Storage = &cancelOnLoad{Storage: fs, cancel: cancel}
	_, err = Clean(ctx, cfg, CleanOptions{OlderThan: time.Hour})
	if !errors.Is(err, context.Canceled) || strings.Count(err.Error(), context.Canceled.Error()) != 1 {
		t.Errorf("Clean interrupted: %v; want context.Canceled, once", err)
	}

	// The same while going through the stored OCSP responses.
	cfg = noCAConfig(t)
	if fs, err = fsstore.New(fsstore.Options{Dir: cfg.StorageDir}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ocsp/a", "ocsp/b", "ocsp/c"} {
		if err := fs.Store(t.Context(), k, []byte("stale")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	cfg.Storage = &cancelOnLoad{Storage: fs, cancel: cancel}
	_, err = Clean(ctx, cfg, CleanOptions{OlderThan: time.Hour})
	if !errors.Is(err, context.Canceled) || strings.Count(err.Error(), context.Canceled.Error()) != 1 {
		t.Errorf("Clean interrupted among OCSP responses: %v; want context.Canceled, once", err)
	}
}

// cancelOnLoad is a storage that ends the caller's context at the
// first read of a record: an interrupt during the clean-up.
type cancelOnLoad struct {
	storage.Storage
	cancel context.CancelFunc
}

func (s *cancelOnLoad) Load(ctx context.Context, key string) ([]byte, error) {
	s.cancel()
	return s.Storage.Load(ctx, key)
}

// TestRevokeBesideDamagedRecord: a name managed with two key types,
// one of whose records is damaged, still has the other certificate
// revoked (a compromised key must not wait for a disk's repair), and
// Revoke's error names the record it could not read, as for any
// certificate it could not revoke. Before, the damaged record stopped
// Revoke before any revocation: nothing was revoked.
func TestRevokeBesideDamagedRecord(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	cfg.KeyTypes = []KeyType{ECDSAP256, RSA2048}
	const name = "half-damaged.example.test"
	obtain(t, p, cfg, Cert{Names: []string{name}})
	st := mustStore(t, cfg)
	ecdsaID, rsaID := certstore.CertID([]string{name}, ECDSAP256), certstore.CertID([]string{name}, RSA2048)
	c, err := st.LoadCertInfo(t.Context(), ecdsaID)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Store(t.Context(), "certs/"+rsaID+"/cert.json", []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ManageCerts(t.Context(), Cert{Names: []string{name}}); err != nil {
		t.Fatal(err)
	}
	err = m.Revoke(t.Context(), name, ReasonSuperseded)
	if err == nil || !strings.Contains(err.Error(), rsaID) || !errors.Is(err, certstore.ErrDamaged) {
		t.Errorf("Revoke beside a damaged record: %v; want an error naming the damaged %s", err, rsaID)
	}
	if got, _ := p.CertStatus(t, serialOfPEM(c.ChainPEM)); got != "Revoked" {
		t.Errorf("the readable certificate %s is %s at the CA, want Revoked", ecdsaID, got)
	}
}
