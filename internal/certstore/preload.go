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
	bl, ok := st.s.(storage.BatchLoader)
	if !ok {
		return st, nil
	}
	keys := make([]string, 0, 2*len(ids))
	for _, id := range ids {
		keys = append(keys, certKey(id), stateKey(id))
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
