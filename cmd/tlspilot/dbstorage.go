package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// dbOpenTimeout bounds connecting to a PostgreSQL storage and migrating
// its schema.
const dbOpenTimeout = 30 * time.Second

// storageConfig points mc at the storage and key-encryption key the
// config names: a directory (the library opens it) or a PostgreSQL
// database, opened here, with the KEK from kek_file. The connection pool
// lives as long as the process. An error names the config line.
func storageConfig(cfg *config.Config, mc *tlspilot.Config, logger *slog.Logger) error {
	mc.KeyFile = cfg.KEKFile
	if !cfg.StorageIsDatabase() {
		mc.StorageDir = cfg.Storage
		return nil
	}
	s, err := openDatabase(cfg, logger)
	if err != nil {
		return err
	}
	mc.Storage, mc.StorageDir = s, ""
	return nil
}

// openDatabase opens the PostgreSQL storage of cfg, creating or migrating
// its tables.
func openDatabase(cfg *config.Config, logger *slog.Logger) (*pgstore.Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dbOpenTimeout)
	defer cancel()
	s, err := pgstore.New(ctx, pgstore.Options{URL: cfg.Storage, Logger: logger.With("component", "storage")})
	if err != nil {
		return nil, cfg.Errorf("storage", "%w%s", err, passwordHint(err))
	}
	return s, nil
}

// passwordHint explains a refused password authentication when this
// process found no password to send: the config refuses one in the URL,
// so it comes from PGPASSWORD or a passfile, which the driver looks for
// in the home of the user the process runs as.
func passwordHint(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" || os.Getenv("PGPASSWORD") != "" {
		return ""
	}
	passfile := os.Getenv("PGPASSFILE")
	if passfile == "" {
		home, herr := os.UserHomeDir()
		if herr != nil {
			return ""
		}
		passfile = filepath.Join(home, ".pgpass")
	}
	if _, serr := os.Stat(passfile); serr == nil {
		return "" // the password in it is wrong, or no line of it matches
	}
	return fmt.Sprintf(" (no password was sent: PGPASSWORD is not set and there is no passfile %s for uid %d; "+
		"give the password in one of them, never in the URL)", passfile, os.Getuid())
}

// probeKEK refuses at start, at the kek_file line, a key-encryption key
// this process cannot read: with a database storage it is the only local
// file tlspilot needs. It runs after privileges are dropped.
func probeKEK(cfg *config.Config) error {
	f, err := os.Open(cfg.KEKFile)
	if err != nil {
		hint := ""
		if cfg.User != "" {
			hint = fmt.Sprintf(" (serve runs as user %q after binding its ports and must read it: chown root:GROUP, chmod 0440, with group the group it runs as)", cfg.User)
		}
		return cfg.Errorf("kek_file", "%w%s", errors.Unwrap(err), hint)
	}
	return f.Close()
}

// checkKEK says whether the user serve runs as may read kek_file, from
// permission bits alone.
func checkKEK(cfg *config.Config) error {
	uid, gid, err := runAs(cfg)
	if err != nil {
		return err
	}
	if err := accessible(cfg.KEKFile, uid, gid, 4); err != nil {
		return cfg.Errorf("kek_file", "%w", err)
	}
	return nil
}

// kekKey returns the config key a key-encryption key file problem err
// belongs to: kek_file when the config names that file, storage when the
// file is the storage directory's "kek" and the config names the
// storage. ok is false for other errors.
func kekKey(cfg *config.Config, err error) (key string, ok bool) {
	var fe *keys.FileError
	switch {
	case !errors.As(err, &fe):
		return "", false
	case cfg.KEKFile != "":
		return "kek_file", fe.Path == cfg.KEKFile
	case cfg.Storage != "" && !cfg.StorageIsDatabase():
		return "storage", fe.Path == filepath.Join(cfg.Storage, "kek")
	}
	return "", false
}

// unavailable is the storage of a status report when the database could
// not be opened: every method fails with why, so the report is UNKNOWN
// and says it.
type unavailable struct{ err error }

func (u unavailable) Load(context.Context, string) ([]byte, error)        { return nil, u.err }
func (u unavailable) Store(context.Context, string, []byte) error         { return u.err }
func (u unavailable) Delete(context.Context, string) error                { return u.err }
func (u unavailable) List(context.Context, string) ([]string, error)      { return nil, u.err }
func (u unavailable) Lock(context.Context, string) (storage.Lease, error) { return nil, u.err }

var _ storage.Storage = unavailable{}
