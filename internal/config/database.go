package config

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tlspilot/tlspilot/internal/keys"
)

// IsDatabaseURL reports whether a storage setting names a PostgreSQL
// database (a postgres:// or postgresql:// URL) rather than a directory.
func IsDatabaseURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// StorageIsDatabase reports whether the storage is a PostgreSQL database.
func (c *Config) StorageIsDatabase() bool { return IsDatabaseURL(c.Storage) }

// databaseURL checks a PostgreSQL storage URL at path. A password in it
// is refused: the config is read by more people and programs than a
// passfile, and the URL shows up in logs and summaries. libpq's means
// (PGPASSWORD, ~/.pgpass or PGPASSFILE) supply it instead. Errors never
// quote the URL, which may hold that password.
func (d *decoder) databaseURL(path, s string) {
	u, err := url.Parse(s)
	if err != nil {
		d.errorf(path, "not a valid postgres:// URL (postgres://USER@HOST[:PORT]/DATABASE?sslmode=verify-full)")
		return
	}
	_, inline := u.User.Password()
	if inline || u.Query().Has("password") {
		d.errorf(path, "a password in the storage URL is refused: give it by PGPASSWORD or a passfile "+
			"(~/.pgpass of the user tlspilot runs as, or the file PGPASSFILE names), or use certificate or peer authentication")
		return
	}
	if err := driverParse(s); err != nil {
		d.errorf(path, "the database driver refuses this URL: %w", err)
	}
}

// driverParse parses a storage URL as storage/pgstore does when serve
// opens it (pgxpool.ParseConfig, with libpq's environment variables and
// files), without connecting, so that check refuses what serve would.
// The error leaves out the connection string that pgx quotes. Only the
// URL's own syntax is judged: what pgx reads from files and the
// environment (a service file, TLS keys and certificates) is left out,
// since the config is loaded by whoever runs the command (root, before
// serve drops its privileges; an operator's shell with PGSERVICE set),
// not as the connection is made; serve reports those when it connects.
func driverParse(s string) error {
	_, err := pgxpool.ParseConfig(s)
	var pe *pgconn.ParseConfigError
	switch {
	case err == nil, errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.As(err, &pe):
		bare := *pe
		bare.ConnString = ""
		msg := strings.TrimPrefix(bare.Error(), "cannot parse ``: ")
		if fromEnvironment(msg) {
			return nil
		}
		return &driverError{msg: msg, err: pe.Unwrap()}
	default:
		return err
	}
}

// fromEnvironment reports whether a pgx parse error (its message) comes
// from files or the environment rather than from the URL: a service
// file, or TLS files (a bad sslmode is the URL's).
func fromEnvironment(msg string) bool {
	return strings.HasPrefix(msg, "failed to read service") ||
		strings.HasPrefix(msg, "failed to configure TLS") && !strings.Contains(msg, "sslmode is invalid")
}

// driverError is a pgconn.ParseConfigError without the connection string
// it quotes: its message, and its cause (nil when it has none).
type driverError struct {
	msg string
	err error
}

func (e *driverError) Error() string { return e.msg }
func (e *driverError) Unwrap() error { return e.err }

// kekFile resolves a kek_file setting and checks what can be checked at
// load: with a database storage the file must exist, since every node of a
// cluster must use the same key and a node creating its own would store
// keys the others cannot read; with a directory storage a missing file is
// created on first use, as the storage's default kek is.
func (d *decoder) kekFile(path, p string, database bool) string {
	if p == "" {
		d.errorf(path, "empty path")
		return ""
	}
	p = d.resolve(p)
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) && database:
		d.errorf(path, "%s does not exist: every node sharing a PostgreSQL storage must read the same key-encryption key, "+
			"so it is never created here: copy it from a node of the cluster (a new key would open none of the keys the database holds); "+
			"for a new cluster, make it once (head -c 32 /dev/urandom > %[1]s; chmod 0400 %[1]s) and copy it to every node", p)
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		d.fileError(path, p, err)
	case !fi.Mode().IsRegular():
		d.errorf(path, "%s is not a regular file", p)
	default:
		d.kekContent(path, p)
	}
	return p
}

// kekContent reads the existing key-encryption key file p with the rules
// the storage applies when it opens it (keys.CheckKEKFile: mode, size),
// so that check refuses it and serve refuses it at this line. A file
// this process may not read is passed over: check may run as another
// user than serve, whose access the command checks.
func (d *decoder) kekContent(path, p string) {
	if err := keys.CheckKEKFile(p); err != nil && !errors.Is(err, fs.ErrPermission) {
		d.errorf(path, "%w", err)
	}
}

// storageKEK checks that a database storage has a kek_file: the
// key-encryption key must not live in the database.
func (d *decoder) storageKEK(c *Config) {
	if c.StorageIsDatabase() && c.KEKFile == "" {
		d.errorf("storage", "a PostgreSQL storage needs kek_file, the key-encryption key file every node reads locally "+
			"(the database must never hold it, so that a dump of it yields no private key): add kek_file = \"/etc/tlspilot/kek\"")
	}
}
