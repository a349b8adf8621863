package tlspilot

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// countingStore counts the reads that reach a PostgreSQL storage: each
// Load and each LoadMany is one round trip.
type countingStore struct {
	storage.Storage
	pg             *pgstore.Store
	loads, batches atomic.Int64
}

func (c *countingStore) Load(ctx context.Context, key string) ([]byte, error) {
	c.loads.Add(1)
	return c.pg.Load(ctx, key)
}

func (c *countingStore) LoadMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	c.batches.Add(1)
	return c.pg.LoadMany(ctx, keys)
}

// TestReadStatusBatched: status over a PostgreSQL storage reads the
// certificates' records (certificate, renewal state, order progress) a
// batch at a time, not one query per record: 600 certificates (three
// batches) cost a handful of single reads, where they cost 1,800, and the
// report is the one reading them one by one gives.
func TestReadStatusBatched(t *testing.T) {
	pg := testenv.StartPostgres(t)
	s, err := pgstore.New(t.Context(), pgstore.Options{URL: pg.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	fx := newFixtureWith(t, Config{CA: benchCA, Storage: s, KeyFile: filepath.Join(t.TempDir(), "kek")})
	const n = 600
	specs, _ := fx.addCerts(t, n, siteName)
	// Some certificates also have a failed attempt, an order under way or
	// a deploy record, each read from its own record.
	ids, err := fx.store.ListCerts(t.Context())
	if err != nil || len(ids) != n {
		t.Fatalf("%d stored certificates, %v", len(ids), err)
	}
	now := time.Now()
	for i, id := range ids {
		if i%3 == 0 {
			err = errors.Join(err, fx.store.StoreState(t.Context(), id, certstore.State{Attempts: 2, LastError: "validation failed", RetryAt: now.Add(time.Hour)}))
		}
		if i%5 == 0 {
			err = errors.Join(err, fx.store.StoreDeployed(t.Context(), id, certstore.Deployed{Serial: "2", At: now}))
		}
		if i%7 == 0 {
			err = errors.Join(err, fx.store.StoreProgress(t.Context(), id, certstore.Progress{Names: []string{"x"}, OrderURL: "https://ca/order/1", Created: now}))
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Storage: s, pg: s}
	batched := ReadStatus(t.Context(), Config{CA: benchCA, Storage: cs, KeyFile: fx.cfg.KeyFile}, specs...)
	if len(batched.Certificates) != n || batched.ExitCode != ExitWarning {
		t.Fatalf("%d certificates, %s %s", len(batched.Certificates), batched.Status, batched.Error)
	}
	if b, l := cs.batches.Load(), cs.loads.Load(); b != 3 || l > 5 {
		t.Errorf("status read %d batches and %d single records for %d certificates; want 3 batches and a few single reads", b, l, n)
	}
	var failed, renewing, deployed int
	for _, c := range batched.Certificates {
		if c.Attempts == 2 {
			failed++
		}
		if c.Renewing {
			renewing++
		}
		if c.Deploy != nil {
			deployed++
		}
	}
	if failed != 200 || renewing != 86 || deployed != 120 {
		t.Errorf("batched report: %d failed, %d renewing, %d deployed; want 200, 86, 120", failed, renewing, deployed)
	}
	perKey := ReadStatus(t.Context(), Config{CA: benchCA, Storage: struct{ storage.Storage }{s}, KeyFile: fx.cfg.KeyFile}, specs...)

	for i := range batched.Certificates {
		// The renewal times are drawn afresh by each report.
		a, b := batched.Certificates[i], perKey.Certificates[i]
		a.NextRenewal, a.RenewAt = b.NextRenewal, b.RenewAt
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("certificate %d batched:\n%+v\nper key:\n%+v", i, a, b)
		}
	}
}
