package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/storage"
)

// loadManySQL reads the rows of a set of keys; the key index serves it.
const loadManySQL = `SELECT key, value FROM tlspilot_kv WHERE key = ANY($1)`

// LoadMany returns the values of those of keys that exist, read in one
// statement (storage.BatchLoader). A missing key is left out of the map.
func (s *Store) LoadMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	for _, k := range keys {
		if err := storage.CheckKey(k); err != nil {
			return nil, fmt.Errorf("pgstore: load many: %w", err)
		}
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, loadManySQL, keys)
	if err != nil {
		return nil, fmt.Errorf("pgstore: load %d keys: %w", len(keys), err)
	}
	var key string
	var value []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &value}, func() error {
		if value == nil {
			value = []byte{}
		}
		out[key] = value
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: load %d keys: %w", len(keys), err)
	}
	return out, nil
}

var _ storage.BatchLoader = (*Store)(nil)
