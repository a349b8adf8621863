package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/pgstore"
	"github.com/tlspilot/tlspilot/storage/storagetest"
)

// open returns a Store on url with leases of ttl, renewed or not, closed
// at the end of the test.
func open(t *testing.T, url string, ttl time.Duration, renew bool) *pgstore.Store {
	t.Helper()
	opts := pgstore.Options{URL: url, LeaseTTL: ttl, PollInterval: 20 * time.Millisecond}
	if !renew {
		opts.RenewInterval = -1
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := pgstore.New(ctx, opts)
	if err != nil {
		t.Fatalf("pgstore.New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestPostgresContract runs the storage contract against a real
// PostgreSQL server, each subtest in a fresh database.
func TestPostgresContract(t *testing.T) {
	pg := testenv.StartPostgres(t)
	storagetest.Run(t, func(t *testing.T) storagetest.Backend {
		url := pg.NewDatabase(t)
		return storagetest.Backend{Open: func(t *testing.T, ttl time.Duration, renew bool) storage.Storage {
			return open(t, url, ttl, renew)
		}}
	})
}
