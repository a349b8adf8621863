package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStartPostgres starts a server, connects to its database and to a
// new one, and checks each new database is a separate, empty one.
func TestStartPostgres(t *testing.T) {
	p := StartPostgres(t)
	ctx := t.Context()
	for _, url := range []string{p.URL, p.NewDatabase(t), p.NewDatabase(t)} {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect %s: %v", url, err)
		}
		defer conn.Close(context.Background())
		var db string
		var tables int
		err = conn.QueryRow(ctx, `SELECT current_database(),
			(SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public')`).Scan(&db, &tables)
		if err != nil {
			t.Fatalf("query %s: %v", url, err)
		}
		if tables != 0 {
			t.Errorf("database %s has %d tables, want a fresh one", db, tables)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE probe (x int)"); err != nil {
			t.Errorf("create table in %s: %v", db, err)
		}
		t.Logf("%s: database %s", url, db)
	}
}
