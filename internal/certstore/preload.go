package certstore

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/tlspilot/tlspilot/storage"
)

// Preload returns a Store that answers LoadCert and LoadState of each of
// ids from one read of all their records made now, when the storage reads
// many keys at once (storage.BatchLoader), and st itself otherwise. Every
// other read, and every write, goes to the storage as through st; a
// record preloaded is read as it was at the time of Preload.
func (st *Store) Preload(ctx context.Context, ids []string) (*Store, error) {
	return st.preload(ctx, ids, certKey, stateKey)
}

// PreloadStatus is Preload for a status report: it also answers the
// reads of the order progress record (ProgressCreated) and of the deploy
// record (LoadDeployed) of each of ids from the same read.
func (st *Store) PreloadStatus(ctx context.Context, ids []string) (*Store, error) {
	return st.preload(ctx, ids, certKey, stateKey, orderKey, deployKey)
}

// preload is Preload of the records that keyOf names for each of ids.
func (st *Store) preload(ctx context.Context, ids []string, keyOf ...func(string) string) (*Store, error) {
	bl, ok := st.s.(storage.BatchLoader)
	if !ok {
		return st, nil
	}
	keys := make([]string, 0, len(keyOf)*len(ids))
	for _, id := range ids {
		for _, k := range keyOf {
			keys = append(keys, k(id))
		}
	}
	vals, err := bl.LoadMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	p := &preloaded{Storage: st.s, vals: vals, asked: make(map[string]bool, len(keys))}
	for _, k := range keys {
		p.asked[k] = true
	}
	return &Store{s: p, sealer: st.sealer}, nil
}

// preloaded is a Storage whose Load answers the keys asked by Preload from
// their values read then (a key asked and not found is missing), and
// passes everything else on.
type preloaded struct {
	storage.Storage
	vals  map[string][]byte
	asked map[string]bool
}

func (p *preloaded) Load(ctx context.Context, key string) ([]byte, error) {
	if v, ok := p.vals[key]; ok {
		return v, nil
	}
	if p.asked[key] {
		return nil, fmt.Errorf("load %s: %w", key, fs.ErrNotExist)
	}
	return p.Storage.Load(ctx, key)
}
