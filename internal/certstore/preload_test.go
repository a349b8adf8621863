package certstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// batchStore is an fsstore that also reads many keys at once, and counts
// the calls of each kind.
type batchStore struct {
	storage.Storage
	loads, batches atomic.Int32
}

func (b *batchStore) Load(ctx context.Context, key string) ([]byte, error) {
	b.loads.Add(1)
	return b.Storage.Load(ctx, key)
}

func (b *batchStore) LoadMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	b.batches.Add(1)
	out := map[string][]byte{}
	for _, k := range keys {
		if v, err := b.Storage.Load(ctx, k); err == nil {
			out[k] = v
		} else if !IsNotExist(err) {
			return nil, err
		}
	}
	return out, nil
}

var _ storage.BatchLoader = (*batchStore)(nil)

// TestPreload: a preloaded Store answers LoadCert and LoadState of the
// ids asked from one batch (a missing certificate IsNotExist, a missing
// state is the zero State), reads anything else from the storage, and a
// storage without LoadMany gets the Store itself back.
func TestPreload(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	fs, err := fsstore.New(fsstore.Options{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	bs := &batchStore{Storage: fs}
	st := New(bs, sealer)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.StoreCert(ctx, "a", Cert{Names: []string{"a.example"}, Key: key}); err != nil {
		t.Fatal(err)
	}
	if err := st.StoreState(ctx, "a", State{Attempts: 3}); err != nil {
		t.Fatal(err)
	}
	if err := st.StoreState(ctx, "unasked", State{Attempts: 5}); err != nil {
		t.Fatal(err)
	}
	bs.loads.Store(0)

	pre, err := st.Preload(ctx, []string{"a", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pre.LoadCert(ctx, "a")
	if err != nil || c.Names[0] != "a.example" || !key.Equal(c.Key) {
		t.Errorf("preloaded LoadCert(a) = %v, %v", c.Names, err)
	}
	if s, err := pre.LoadState(ctx, "a"); err != nil || s.Attempts != 3 {
		t.Errorf("preloaded LoadState(a) = %+v, %v", s, err)
	}
	if _, err := pre.LoadCert(ctx, "missing"); !IsNotExist(err) {
		t.Errorf("preloaded LoadCert(missing) error %v, want not exist", err)
	}
	if s, err := pre.LoadState(ctx, "missing"); err != nil || s != (State{}) {
		t.Errorf("preloaded LoadState(missing) = %+v, %v", s, err)
	}
	if n := bs.loads.Load(); n != 0 || bs.batches.Load() != 1 {
		t.Errorf("preloaded records read with %d Loads and %d batches, want 0 and 1", n, bs.batches.Load())
	}
	if s, err := pre.LoadState(ctx, "unasked"); err != nil || s.Attempts != 5 || bs.loads.Load() != 1 {
		t.Errorf("LoadState(unasked) = %+v, %v after %d Loads: want it read from the storage", s, err, bs.loads.Load())
	}

	plain := New(struct{ storage.Storage }{fs}, sealer)
	if got, err := plain.Preload(ctx, []string{"a"}); err != nil || got != plain {
		t.Errorf("Preload over a storage without LoadMany = %p, %v; want the Store itself", got, err)
	}
}
