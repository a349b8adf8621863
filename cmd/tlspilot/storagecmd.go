package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

const migrateSummary = `Copies every record of one storage into another, byte for byte: a storage
directory into a PostgreSQL database (to grow one node into a cluster) or a
database into a directory. Certificates, private keys, ACME accounts, order
progress and challenge answers keep working: nothing is reissued, and
private keys stay sealed under the key-encryption key (KEK), which is never
copied: a database must not hold it. At the end it prints the kek_file and
storage lines every node's config needs.

Stop serve, certs and renew on the source first. Each certificate is
copied under its issue and deploy locks (each account under its lock), in
both storages, so no order, renewal or deployment runs through it
meanwhile; every copied value is then read back from both storages and
compared. Locks are not records and are not copied.

A destination that already holds records is refused unless --force, which
merges: records only in the destination stay; a record in both is replaced
by the source's, except a certificate whose copy in the destination is
newer (or whose source record does not decode) and an ACME account whose
key differs there (both kept and listed),
and the destination's change record (it is told of each certificate
copied instead). --dry-run prints what would be copied and writes nothing.

FROM and TO are a directory or a postgres:// (postgresql://) URL; give
the password by PGPASSWORD or a passfile, not in the URL; the source
under another name (a link, another URL of the same database) is refused.
Exit codes: 0
copied and verified (or, with --dry-run, planned); 1 refused or failed,
with the storage and the record; 2 usage. See docs/cluster.md.`

// migrateLockWait is the default bound of the wait for one lock: longer
// than a lease, so a lock left by a process that died is taken over, and
// short enough that a running serve is reported instead of waited for.
const migrateLockWait = 2 * time.Minute

// migrateOpenTimeout bounds connecting to a database and migrating its
// tables.
const migrateOpenTimeout = 30 * time.Second

// storageCmd runs "tlspilot storage SUBCOMMAND".
func storageCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "migrate" {
		return migrateCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help") {
		return migrateCmd(ctx, []string{"--help"}, stdout, stderr)
	}
	fmt.Fprintln(stderr, "tlspilot storage: name a subcommand: tlspilot storage migrate --from DIR|URL --to DIR|URL [--force] [--dry-run] [--kek FILE]")
	return 2
}

// migrateOptions are the flags of "storage migrate".
type migrateOptions struct {
	from, to string
	kek      string // the KEK file the keys are sealed under; "" for the default
	force    bool
	dryRun   bool
	lockWait time.Duration
}

// migrateCmd runs "tlspilot storage migrate".
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o migrateOptions
	fl := flag.NewFlagSet("storage migrate", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&o.from, "from", "", "the storage to copy: a directory or a postgres:// URL (required)")
	fl.StringVar(&o.to, "to", "", "the storage to copy into: a directory or a postgres:// URL (required)")
	fl.StringVar(&o.kek, "kek", "", "the key-encryption key file the private keys are sealed under (default: FROM/kek of a directory); never copied, only checked for and named in the config lines")
	fl.BoolVar(&o.force, "force", false, "merge into a destination that already holds records (a newer certificate there is kept)")
	fl.BoolVar(&o.dryRun, "dry-run", false, "print what would be copied, write nothing")
	fl.DurationVar(&o.lockWait, "lock-wait", migrateLockWait, "how long to wait for each lock held by another process before giving up")
	cf := &commandFlags{FlagSet: fl, stderr: stderr}
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "Usage: tlspilot storage migrate --from DIR|URL --to DIR|URL [--force] [--dry-run] [--kek FILE] [--lock-wait 2m]\n\n%s\n\n", migrateSummary)
		fl.PrintDefaults()
	}
	if code, ok := cf.parse(args, stdout); !ok {
		return code
	}
	if err := o.check(cf); err != nil {
		fmt.Fprintf(stderr, "tlspilot storage migrate: %v\n", err)
		return 2
	}
	m := &migration{opts: o, out: stdout, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if err := m.run(ctx); err != nil {
		fmt.Fprintf(stderr, "tlspilot storage migrate: %v\n", err)
		return 1
	}
	return 0
}

// check refuses missing, extra and self-defeating arguments.
func (o migrateOptions) check(cf *commandFlags) error {
	switch {
	case cf.NArg() > 0:
		return fmt.Errorf("unexpected argument %q (name the storages with --from and --to)", cf.Arg(0))
	case o.lockWait <= 0:
		return errors.New("--lock-wait must be positive")
	case o.from == "" || o.to == "":
		return errors.New("both --from and --to are required: tlspilot storage migrate --from DIR --to postgres://USER@HOST/DATABASE")
	case config.IsDatabaseURL(o.from) && config.IsDatabaseURL(o.to) && o.from == o.to:
		return fmt.Errorf("--from and --to name the same database %s", storageName(o.from))
	case !config.IsDatabaseURL(o.from) && !config.IsDatabaseURL(o.to):
		a, b := realPath(o.from), realPath(o.to)
		if a == b {
			return fmt.Errorf("--from %s and --to %s name the same storage (%s)", o.from, o.to, a)
		}
		if strings.HasPrefix(b, a+string(filepath.Separator)) || strings.HasPrefix(a, b+string(filepath.Separator)) {
			return fmt.Errorf("--from %s and --to %s overlap: copy into a directory outside the source", o.from, o.to)
		}
	}
	return nil
}

// realPath returns dir absolute, with the symbolic links of the part of
// it that exists resolved, so that two spellings of one directory (a
// link to it, a trailing slash, "..") compare equal.
func realPath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return filepath.Clean(dir)
	}
	rest := ""
	for p := abs; ; p = filepath.Dir(p) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		if filepath.Dir(p) == p {
			return abs
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// sameStorage refuses a destination that is the source under another
// name, which check cannot see from the names: a directory mounted at
// two places, a database reached by two URLs (pgstore.Store.Identity;
// a role that may not ask is warned about and let through). Taken for
// two storages, the run waited for its own locks and blamed a running
// serve.
func (m *migration) sameStorage(ctx context.Context) error {
	refuse := fmt.Errorf("--from %s and --to %s name the same storage: nothing to copy", m.from.name, m.to.name)
	if m.from.dir != "" && m.to.dir != "" {
		a, errA := os.Stat(filepath.Join(m.from.dir, "data"))
		b, errB := os.Stat(filepath.Join(m.to.dir, "data"))
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return refuse
		}
		return nil
	}
	type identified interface {
		Identity(ctx context.Context) (string, error)
	}
	a, okA := m.from.s.(identified)
	b, okB := m.to.s.(identified)
	if !okA || !okB {
		return nil
	}
	idA, errA := a.Identity(ctx)
	idB, errB := b.Identity(ctx)
	if err := errors.Join(errA, errB); err != nil {
		// A role refused the query: the check is left out, as before.
		m.log.Warn("cannot tell whether --from and --to are one database; make sure they are not", "error", err)
		return nil
	}
	if idA == idB {
		return refuse
	}
	return nil
}

// storageName is a storage location as messages show it: a directory as
// given, a URL without its password.
func storageName(loc string) string {
	if !config.IsDatabaseURL(loc) {
		return loc
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "the PostgreSQL database (URL not shown: it does not parse)"
	}
	return u.Redacted()
}

// endpoint is one side of a migration, opened.
type endpoint struct {
	name  string          // for messages (storageName)
	dir   string          // the directory, absolute; "" for a database
	s     storage.Storage // nil: a directory that does not exist yet (dry run)
	close func()
	// lockWait bounds the wait for one lock (--lock-wait).
	lockWait time.Duration
}

// endpointOptions say which storage openEndpoint opens, and how.
type endpointOptions struct {
	loc      string // a directory or a postgres:// URL
	source   bool   // the side copied from: it must exist and hold a storage
	readOnly bool   // a dry run: create nothing, lock nothing
	lockWait time.Duration
	logger   *slog.Logger
}

// openEndpoint opens the storage at o.loc. A source must exist and be a
// storage; a destination directory is created, unless o.readOnly (dry
// run), which opens nothing that is not there yet. A database's tables
// are created or migrated as any tlspilot node would.
func openEndpoint(ctx context.Context, o endpointOptions) (*endpoint, error) {
	loc, source, readOnly, logger := o.loc, o.source, o.readOnly, o.logger
	e := &endpoint{name: storageName(loc), lockWait: o.lockWait, close: func() {}}
	if config.IsDatabaseURL(loc) {
		octx, cancel := context.WithTimeout(ctx, migrateOpenTimeout)
		defer cancel()
		s, err := pgstore.New(octx, pgstore.Options{URL: loc, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		e.s, e.close = s, s.Close
		return e, nil
	}
	dir, err := filepath.Abs(loc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	e.dir = dir
	state, err := dirState(dir)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", loc, err)
	case source && state != dirStorage:
		return nil, fmt.Errorf("%s: not a tlspilot storage (no data folder in it)", loc)
	case !source && state == dirOther:
		return nil, fmt.Errorf("%s: exists, is not empty and is not a tlspilot storage: name a new or empty directory", loc)
	case readOnly && state != dirStorage:
		return e, nil // nothing there yet: an empty destination
	}
	s, err := fsstore.New(fsstore.Options{Dir: dir, ReadOnly: readOnly, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	e.s = s
	return e, nil
}

// What a directory holds, for openEndpoint.
const (
	dirMissing = iota // absent or empty
	dirStorage        // has a data folder
	dirOther          // anything else
)

// dirState says whether dir is missing or empty, a storage, or other.
func dirState(dir string) (int, error) {
	if fi, err := os.Stat(filepath.Join(dir, "data")); err == nil && fi.IsDir() {
		return dirStorage, nil
	}
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return dirMissing, nil
	case err != nil:
		return 0, err
	case len(ents) == 0:
		return dirMissing, nil
	}
	return dirOther, nil
}

// list returns every key of e; a storage not there yet has none.
func (e *endpoint) list(ctx context.Context) ([]string, error) {
	if e.s == nil {
		return nil, nil
	}
	keys, err := e.s.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("%s: list: %w", e.name, err)
	}
	return keys, nil
}

// load returns the value of key in e, or nil if it has none.
func (e *endpoint) load(ctx context.Context, key string) ([]byte, error) {
	if e.s == nil {
		return nil, nil
	}
	v, err := e.s.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: load %s: %w", e.name, key, err)
	}
	return v, nil
}

// lock takes the lock name in e, waiting at most e.lockWait.
func (e *endpoint) lock(ctx context.Context, name string) (storage.Lease, error) {
	lctx, cancel := context.WithTimeout(ctx, e.lockWait)
	defer cancel()
	l, err := e.s.Lock(lctx, name)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, fmt.Errorf("%s: lock %s: still held by another process after %v: is serve, certs or renew running on it? stop it first: %w",
			e.name, name, e.lockWait, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: lock %s: %w", e.name, name, err)
	}
	return l, nil
}
