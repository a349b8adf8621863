package fleet

import (
	"context"
	"errors"
	"log/slog"

	"github.com/tlspilot/tlspilot/storage"
)

// AuditTrail is an Auditor that holds resources until Close, as
// OpenAuditor returns it.
type AuditTrail interface {
	Auditor
	// Close releases what the trail holds (connections); the storage
	// passed to OpenAuditor stays open.
	Close()
}

// AuditOptions says where the issuer's audit trail is.
type AuditOptions struct {
	// DatabaseURL is the issuer's storage when it is a PostgreSQL
	// database (the config's storage = "postgres://..."): the trail is
	// then the table AuditTable in that database (PostgresAuditor).
	DatabaseURL string
	// Storage is the issuer's storage, used when DatabaseURL is empty:
	// the trail is then kept in it (StorageAuditor).
	Storage storage.Storage
	// Create and Logger are PostgresAuditOptions': the issuer sets both
	// at start, commands that only read set neither.
	Create bool
	Logger *slog.Logger
}

// OpenAuditor opens the issuer's audit trail: the PostgreSQL table when
// opts.DatabaseURL is set, else records in opts.Storage.
func OpenAuditor(ctx context.Context, opts AuditOptions) (AuditTrail, error) {
	if opts.DatabaseURL != "" {
		return NewPostgresAuditor(ctx, PostgresAuditOptions{URL: opts.DatabaseURL, Create: opts.Create, Logger: opts.Logger})
	}
	if opts.Storage == nil {
		return nil, errors.New("fleet: audit: no database URL and no storage")
	}
	return NewStorageAuditor(opts.Storage), nil
}
