package main

import (
	"slices"
	"testing"

	"github.com/tlspilot/tlspilot/internal/config"
)

// TestSecretEnvHidesStoragePassword: with a PostgreSQL storage, whose
// password docs/config.md says to give by PGPASSWORD, the reload and
// notify commands do not inherit it (a PostgreSQL reload by psql would
// otherwise log in with it); with a directory storage PGPASSWORD is the
// administrator's own, for those commands, and passes.
func TestSecretEnvHidesStoragePassword(t *testing.T) {
	db := &config.Config{Storage: "postgres://tlspilot@db.example.test/tlspilot?sslmode=verify-full",
		DNS: &config.DNS{TSIGSecretEnv: "TSIG_SECRET"}}
	if got := secretEnv(db); !slices.Contains(got, "PGPASSWORD") || !slices.Contains(got, "TSIG_SECRET") {
		t.Errorf("database storage: hidden %q, want PGPASSWORD and TSIG_SECRET", got)
	}
	if got := secretEnv(&config.Config{Storage: "/var/lib/tlspilot"}); slices.Contains(got, "PGPASSWORD") {
		t.Errorf("directory storage: hidden %q", got)
	}
}
