package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrationLock is the pg_advisory_xact_lock key held while the schema is
// migrated: "tlspilot" in ASCII.
const migrationLock int64 = 0x746c7370696c6f74

// migrations lists the statements of each schema version: version v is
// migrations[v-1]. Versions are only ever appended.
var migrations = [][]string{
	{ // 1: values, locks, fencing tokens
		`CREATE TABLE tlspilot_kv (
			key     text COLLATE "C" PRIMARY KEY
			        CHECK (key ~ '^[a-z0-9._-]+(/[a-z0-9._-]+)*$' AND octet_length(key) <= 512),
			value   bytea NOT NULL,
			token   bigint,
			updated timestamptz NOT NULL DEFAULT clock_timestamp()
		)`,
		`COMMENT ON COLUMN tlspilot_kv.token IS 'fencing token of the lease the last write was made under, if any'`,
		`CREATE TABLE tlspilot_locks (
			name    text COLLATE "C" PRIMARY KEY,
			owner   text NOT NULL,
			token   bigint NOT NULL,
			expires timestamptz NOT NULL
		)`,
		`CREATE SEQUENCE tlspilot_lock_tokens AS bigint`,
	},
}

// migrate brings the schema to the latest version. It reads the version
// first and changes nothing if it is current; otherwise it migrates in one
// transaction holding an advisory lock, so that nodes starting together
// apply each version once.
func (s *Store) migrate(ctx context.Context) error {
	v, err := s.schemaVersion(ctx, s.pool)
	if err != nil {
		return err
	}
	if v == len(migrations) {
		return nil
	}
	if v > len(migrations) {
		return tooNew(v)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS tlspilot_schema (
			version int PRIMARY KEY,
			applied timestamptz NOT NULL DEFAULT clock_timestamp())`); err != nil {
			return err
		}
		v, err := s.schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if v > len(migrations) {
			return tooNew(v)
		}
		for i := v; i < len(migrations); i++ {
			if err := applyVersion(ctx, tx, i+1); err != nil {
				return err
			}
			s.log.Info("pgstore: schema migrated", "version", i+1)
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
		return fmt.Errorf("migrate schema: %w (the role needs CREATE on its schema to make tlspilot's tables: "+
			"since PostgreSQL 15, `GRANT CREATE ON SCHEMA public TO ROLE` or a database it owns; docs/cluster.md)", err)
	}
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	return nil
}

// applyVersion runs the statements of schema version v and records it.
func applyVersion(ctx context.Context, tx pgx.Tx, v int) error {
	for _, stmt := range migrations[v-1] {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("version %d: %w", v, err)
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO tlspilot_schema (version) VALUES ($1)`, v)
	return err
}

// querier is a connection pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schemaVersion returns the latest schema version applied, 0 if none.
func (s *Store) schemaVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('tlspilot_schema') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM tlspilot_schema`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// tooNew is the error for a schema newer than this code knows.
func tooNew(v int) error {
	return fmt.Errorf("schema version %d is newer than this tlspilot knows (%d): upgrade tlspilot on this node", v, len(migrations))
}
