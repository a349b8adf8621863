package pgstore

import (
	"context"
	"fmt"
)

// Identity names the records this Store reads and writes, the same
// whatever URL, host name, port spelling or parameters reached them: the
// database cluster's system identifier, the database's object id and the
// object id of the tlspilot_kv table the search_path leads to. Two Stores
// with equal identities share their records (a streaming replica shares
// its primary's). It needs EXECUTE on pg_control_system(), which every
// role has unless an administrator revoked it; the error then says so.
func (s *Store) Identity(ctx context.Context) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT (SELECT system_identifier FROM pg_control_system())::text || '/' ||
		(SELECT oid FROM pg_database WHERE datname = current_database())::text || '/' ||
		'tlspilot_kv'::regclass::oid::text`).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("pgstore: identity: %w", err)
	}
	return id, nil
}
