package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// query runs sql on url and returns the first column of every row.
func query[T any](t *testing.T, url, sql string, args ...any) []T {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// TestPostgresMigrateConcurrently starts several Stores on an empty
// database at once: each succeeds, and each schema version is applied
// once. Opening again changes nothing; a newer schema is refused.
func TestPostgresMigrateConcurrently(t *testing.T) {
	pg := testenv.StartPostgres(t)
	const nodes = 8
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() {
			s, err := pgstore.New(t.Context(), pgstore.Options{URL: pg.URL})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: New on an empty database: %v", i, err)
		}
	}
	versions := query[int32](t, pg.URL, `SELECT version FROM tlspilot_schema ORDER BY version`)
	if !slices.Equal(versions, []int32{1}) {
		t.Errorf("schema versions recorded = %v, want [1], each once", versions)
	}
	open(t, pg.URL, time.Second, true)
	if n := len(query[int32](t, pg.URL, `SELECT version FROM tlspilot_schema`)); n != 1 {
		t.Errorf("%d schema rows after opening a current database, want 1", n)
	}

	query[int32](t, pg.URL, `INSERT INTO tlspilot_schema (version) VALUES (99) RETURNING version`)
	_, err := pgstore.New(t.Context(), pgstore.Options{URL: pg.URL})
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
		t.Errorf("New on a database with a newer schema = %v, want it refused", err)
	}
}

// TestPostgresListWildcards checks that '_' and '.' in a List prefix are
// plain characters (no LIKE), and that keys sort byte by byte.
func TestPostgresListWildcards(t *testing.T) {
	pg := testenv.StartPostgres(t)
	s := open(t, pg.URL, time.Second, true)
	ctx := t.Context()
	for _, k := range []string{"a_b/1", "axb/1", "a_bc/1", "a_b/c/2", "a.b/1", "a-b/1", "a_b0", "a_b.x/1"} {
		if err := s.Store(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string][]string{
		"a_b": {"a_b/1", "a_b/c/2"},
		"a.b": {"a.b/1"},
		"a_":  nil,
		"":    {"a-b/1", "a.b/1", "a_b.x/1", "a_b/1", "a_b/c/2", "a_b0", "a_bc/1", "axb/1"},
	} {
		got, err := s.List(ctx, prefix)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, %v; want %q", prefix, got, err, want)
		}
	}
	if _, err := s.List(ctx, "a%"); err == nil {
		t.Errorf("List(\"a%%\") = nil error, want an invalid key")
	}
}

// TestPostgresLockDatabaseClock checks that the database's clock alone
// decides expiry: a lease that the holder's clock says runs for an hour
// is taken over at once when the database says it expired, and one that
// the database says is live is not taken over.
func TestPostgresLockDatabaseClock(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	a := open(t, pg.URL, time.Hour, true)
	b := open(t, pg.URL, time.Hour, true)
	la, err := a.Lock(ctx, "issue/clock")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(short, "issue/clock"); err == nil {
		t.Fatalf("lock taken over while the database says its lease runs")
	}
	// The database's clock passes the lease's expiry (as if the holder's
	// clock were an hour slow).
	query[string](t, pg.URL, `UPDATE tlspilot_locks SET expires = clock_timestamp() - interval '1 second' RETURNING name`)
	if time.Until(la.Expires()) < 50*time.Minute {
		t.Fatalf("holder's own expiry %v, want about an hour ahead", la.Expires())
	}
	lb, err := b.Lock(ctx, "issue/clock")
	if err != nil {
		t.Fatalf("Lock of a lease the database says expired: %v", err)
	}
	defer lb.Unlock(ctx)
	wantRejected(t, a.Store(storage.WithLease(ctx, la), "certs/clock", []byte("x")), "taken over")
}

// TestPostgresPasswordFromEnvironment: with a server that asks for a
// password, a URL without one connects when libpq's means supply it
// (PGPASSWORD, then a passfile named by PGPASSFILE), and not otherwise.
func TestPostgresPasswordFromEnvironment(t *testing.T) {
	pg := testenv.StartPostgres(t)
	const password = "correct horse"
	pg.RequirePassword(t, password)
	dir := t.TempDir()
	t.Setenv("PGPASSFILE", filepath.Join(dir, "absent"))
	t.Setenv("PGPASSWORD", "")
	newStore := func() error {
		s, err := pgstore.New(t.Context(), pgstore.Options{URL: pg.URL})
		if err == nil {
			s.Close()
		}
		return err
	}
	if err := newStore(); err == nil {
		t.Fatalf("New without a password succeeded: the server does not ask for one")
	} else if strings.Contains(err.Error(), password) {
		t.Errorf("error repeats the password: %v", err)
	}
	t.Setenv("PGPASSWORD", password)
	if err := newStore(); err != nil {
		t.Errorf("New with PGPASSWORD: %v", err)
	}
	t.Setenv("PGPASSWORD", "")
	passfile := filepath.Join(dir, "pgpass")
	line := fmt.Sprintf("127.0.0.1:%d:*:tlspilot:%s\n", pg.Port, password)
	if err := os.WriteFile(passfile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", passfile)
	if err := newStore(); err != nil {
		t.Errorf("New with a passfile: %v", err)
	}
	if url := pg.NewDatabase(t); url == "" {
		t.Errorf("NewDatabase after RequirePassword")
	}
}

// TestPostgresNoCreateHint: a role that may not create tables in the
// database's schema (PostgreSQL 15 and later give no one CREATE on public
// by default) gets an error that says which grant it lacks.
func TestPostgresNoCreateHint(t *testing.T) {
	url := testenv.StartPostgres(t).NewDatabase(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(t.Context(), `CREATE ROLE no_create LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	roleURL := strings.Replace(url, "://tlspilot@", "://no_create@", 1)
	if roleURL == url {
		t.Fatalf("unexpected database URL %s", url)
	}
	s, err := pgstore.New(t.Context(), pgstore.Options{URL: roleURL})
	if err == nil {
		s.Close()
		t.Fatal("a role without CREATE on the schema opened the storage")
	}
	if !strings.Contains(err.Error(), "GRANT CREATE ON SCHEMA public") || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("error: %v; want it to say which grant is lacking", err)
	}
}
