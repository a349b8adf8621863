package pgstore_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestTrialListSkipsForeignKeys: rows another database role wrote under
// keys tlspilot never makes and the table's CHECK lets through ("." and
// ".." segments, a segment longer than a file name) are not listed, as
// fsstore skips files whose names are not keys: listed, they failed every
// Load with ErrInvalidKey, which stopped `storage migrate` from the
// database (a directory could not hold them either) and read as a
// storage failure elsewhere.
func TestTrialListSkipsForeignKeys(t *testing.T) {
	url := testenv.StartPostgres(t).NewDatabase(t)
	s := open(t, url, time.Minute, true)
	if err := s.Store(t.Context(), "certs/ok/cert.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, k := range []string{"certs/../x", "certs/./cert.json", "certs/" + strings.Repeat("a", 300) + "/cert.json", ".."} {
		if _, err := conn.Exec(t.Context(), `INSERT INTO tlspilot_kv (key, value) VALUES ($1, '{}')`, k); err != nil {
			t.Fatalf("insert %q: %v", k, err)
		}
	}
	for _, prefix := range []string{"", "certs"} {
		keys, err := s.List(t.Context(), prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		if !slices.Equal(keys, []string{"certs/ok/cert.json"}) {
			t.Errorf("List(%q) = %q, want only the key tlspilot made", prefix, keys)
		}
		for _, k := range keys {
			if _, err := s.Load(t.Context(), k); err != nil {
				t.Errorf("Load of the listed %q: %v", k, err)
			}
		}
	}
}

// TestTrialIdentity: two URLs of one database give one identity, another
// database another, and a role without any grant may ask.
func TestTrialIdentity(t *testing.T) {
	pg := testenv.StartPostgres(t)
	a := open(t, pg.URL, time.Minute, true)
	b := open(t, "postgresql"+strings.TrimPrefix(pg.URL, "postgres")+"&application_name=other", time.Minute, true)
	c := open(t, pg.NewDatabase(t), time.Minute, true)
	conn, err := pgx.Connect(t.Context(), pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(t.Context(), `CREATE ROLE plain LOGIN; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO plain;
		GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO plain`)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d := open(t, strings.Replace(pg.URL, "://tlspilot@", "://plain@", 1), time.Minute, true)
	var ids []string
	for _, s := range []interface {
		Identity(context.Context) (string, error)
	}{a, b, c, d} {
		id, err := s.Identity(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] != ids[1] || ids[0] == ids[2] || ids[0] != ids[3] {
		t.Errorf("identities %q: want the first two and the fourth equal, the third another", ids)
	}
}
