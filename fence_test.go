package tlspilot

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// leaseRecorder is a Storage that notes, for each key written, whether
// the write carried a lease (storage.WithLease).
type leaseRecorder struct {
	storage.Storage
	mu     sync.Mutex
	leased map[string]bool // key -> every write of it carried a lease
}

func (r *leaseRecorder) note(ctx context.Context, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	had, seen := r.leased[key]
	r.leased[key] = storage.LeaseFrom(ctx) != nil && (had || !seen)
}

func (r *leaseRecorder) Store(ctx context.Context, key string, v []byte) error {
	r.note(ctx, key)
	return r.Storage.Store(ctx, key, v)
}

func (r *leaseRecorder) Delete(ctx context.Context, key string) error {
	r.note(ctx, key)
	return r.Storage.Delete(ctx, key)
}

// TestWritesUnderLockAreFenced: a certificate obtained into pgstore writes
// its certificate record, its order progress, the account and the changes
// record under the lease of the lock that guards them, so that pgstore
// checks each against the lease; the issuance succeeds with the checks on.
func TestWritesUnderLockAreFenced(t *testing.T) {
	pg := testenv.StartPostgres(t)
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pgs, err := pgstore.New(ctx, pgstore.Options{URL: pg.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pgs.Close)
	rec := &leaseRecorder{Storage: pgs, leased: map[string]bool{}}
	cfg := testConfig(t, p, nil)
	cfg.Storage, cfg.KeyFile, cfg.StorageDir = rec, t.TempDir()+"/kek", ""
	m := startManager(t, p, cfg)
	if err := m.Manage(ctx, "fenced.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 30*time.Second)
	verify(t, handshake(t, m, "fenced.example.test", nil), p.IssuerRoots(t), "fenced.example.test")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := map[string]bool{"cert.json": false, "account.json": false, "key": false, "changes.json": false}
	for key, leased := range rec.leased {
		base := key[strings.LastIndex(key, "/")+1:]
		if _, ok := want[base]; !ok {
			continue
		}
		want[base] = true
		if !leased {
			t.Errorf("%s written without the lease of its lock", key)
		}
	}
	for base, seen := range want {
		if !seen {
			t.Errorf("no %s written: %v", base, rec.leased)
		}
	}
	t.Logf("writes: %v", rec.leased)
}
