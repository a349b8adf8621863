package tlspilot

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// batchCounter is a pgstore that counts the Loads of certificate records
// and the LoadMany calls.
type batchCounter struct {
	storage.Storage
	pg                   *pgstore.Store
	recordLoads, batches atomic.Int32
}

func (c *batchCounter) Load(ctx context.Context, key string) ([]byte, error) {
	if strings.HasSuffix(key, "/cert.json") || strings.HasSuffix(key, "/state.json") {
		c.recordLoads.Add(1)
	}
	return c.Storage.Load(ctx, key)
}

func (c *batchCounter) LoadMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	c.batches.Add(1)
	return c.pg.LoadMany(ctx, keys)
}

var _ storage.BatchLoader = (*batchCounter)(nil)

// TestManageCertsBatchedLoad: over a storage that reads many keys at once
// (pgstore), ManageCerts reads the records of 300 certificates in batches
// of loadBatchSize, not one key at a time, and puts every stored one in
// service; a damaged record and a certificate never stored are pending,
// as when they are read one by one.
func TestManageCertsBatchedLoad(t *testing.T) {
	pg := testenv.StartPostgres(t)
	s, err := pgstore.New(t.Context(), pgstore.Options{URL: pg.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	st := &batchCounter{Storage: s, pg: s}
	cfg := Config{CA: benchCA, Storage: st, KeyFile: filepath.Join(t.TempDir(), "kek")}
	fx := newFixtureWith(t, cfg)
	const stored = 300
	specs, _ := fx.addCerts(t, stored, siteName)
	damaged := certstore.CertID([]string{siteName(7)}, keys.ECDSAP256)
	if err := s.Store(t.Context(), "certs/"+damaged+"/cert.json", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	specs = append(specs, Cert{Names: []string{"never-stored.example.test"}})

	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.recordLoads.Store(0)
	if err := m.ManageCerts(t.Context(), specs...); err != nil {
		t.Fatal(err)
	}
	want := int32((len(specs) + loadBatchSize - 1) / loadBatchSize)
	if n, b := st.recordLoads.Load(), st.batches.Load(); n != 0 || b != want {
		t.Errorf("records read with %d Loads and %d LoadMany, want 0 and %d", n, b, want)
	}
	serving := 0
	for _, c := range m.Status() {
		switch {
		case c.Serving:
			serving++
		case c.ID != damaged && !strings.HasPrefix(c.ID, "never-stored"):
			t.Errorf("%s not serving", c.ID)
		}
	}
	if serving != stored-1 {
		t.Errorf("%d certificates serving, want %d", serving, stored-1)
	}
}
