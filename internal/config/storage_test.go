package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStorageNotADirectory: a storage value that is surely not a
// directory the user meant (a libpq key/value connection string, a URL of
// another scheme, a database address without its scheme, an unexpanded ~
// or $VAR, stray white space) is refused at its line, never taken as a
// relative directory, and a password in it is never echoed.
func TestStorageNotADirectory(t *testing.T) {
	f := newFixture(t)
	tests := []struct{ name, storage, want string }{
		{"libpq key/value", "host=127.0.0.1 port=55432 user=tlspilot password=s3cretPW dbname=tlspilot",
			"tlspilot.toml:2: storage: a libpq key/value connection string is not a storage: write it as a postgres:// URL: " +
				"storage = \"postgres://tlspilot@127.0.0.1:55432/tlspilot\", and give the password by PGPASSWORD or a passfile"},
		{"libpq key/value, quoted, socket", "dbname = 'tls pilot' host=/run/postgresql sslmode=disable password='s3cretPW x'",
			"write it as a postgres:// URL: storage = \"postgres:///tls%20pilot?host=%2Frun%2Fpostgresql&sslmode=disable\""},
		{"libpq key/value, unterminated", "dbname=tlspilot password='s3cretPW",
			"tlspilot.toml:2: storage: a libpq key/value connection string is not a storage: write it as a postgres:// URL (postgres://USER@HOST[:PORT]/DATABASE"},
		{"other scheme", "mysql://root:s3cretPW@db/tlspilot",
			"tlspilot.toml:2: storage: a mysql:// URL is not a storage: give a directory, or a postgres:// URL"},
		{"file URL", "file:///var/lib/tlspilot", "tlspilot.toml:2: storage: a file:// URL is not a storage"},
		{"address without scheme", "tlspilot:s3cretPW@db.example.com:5432/tlspilot",
			"tlspilot.toml:2: storage: this looks like a database address (USER@HOST) without its scheme: write a postgres:// URL"},
		{"tilde", "~/tlspilot", "tlspilot.toml:2: storage: ~ is not expanded in the config: write the whole path"},
		{"variable", "$HOME/tlspilot", "tlspilot.toml:2: storage: $HOME is not expanded in the config: write the whole path"},
		{"braced variable", "${XDG_DATA_HOME}/tlspilot", "tlspilot.toml:2: storage: ${XDG_DATA_HOME} is not expanded in the config"},
		{"white space", " /var/lib/tlspilot", "tlspilot.toml:2: storage: the path starts or ends with white space"},
		{"control character", "/var/lib/tls\tpilot", "tlspilot.toml:2: storage: the path holds a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The fixture directory is the config's: a relative storage
			// taken as a directory would land in it.
			_, err := f.parse(t, "email = \"a@b.example\"\nstorage = "+strconv.Quote(tt.storage)+"\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cretPW") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
	// Still directories: a name with = or @ further down, an absolute path.
	for _, s := range []string{"$DIR/state=1", "$DIR/user@host", "state", "/var/lib/tlspilot"} {
		c := f.mustParse(t, "storage = \""+s+"\"\n")
		if c.StorageIsDatabase() || !filepath.IsAbs(c.Storage) {
			t.Errorf("storage %q: Storage %q", s, c.Storage)
		}
	}
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "=") || strings.Contains(e.Name(), "@") {
			t.Errorf("parse created %s", e.Name())
		}
	}
}

// TestDatabaseURLSchemeCase: URL schemes are case-insensitive (RFC 3986
// §3.1), so POSTGRES:// is a PostgreSQL storage, kept with its scheme in
// lower case, as the database driver recognises it.
func TestDatabaseURLSchemeCase(t *testing.T) {
	f := newFixture(t)
	f.write(t, "kek", strings.Repeat("k", 32), 0o400)
	for in, want := range map[string]string{
		"POSTGRES://tlspilot@127.0.0.1:55432/tlspilot":                  "postgres://tlspilot@127.0.0.1:55432/tlspilot",
		"PostgreSQL://tlspilot@db.example.com/TlsPilot?sslmode=require": "postgresql://tlspilot@db.example.com/TlsPilot?sslmode=require",
	} {
		c := f.mustParse(t, "storage = \""+in+"\"\nkek_file = \"kek\"\n")
		if c.Storage != want || !c.StorageIsDatabase() {
			t.Errorf("storage %q: Storage %q, database %v; want %q", in, c.Storage, c.StorageIsDatabase(), want)
		}
	}
}

// TestDatabaseURLParameters: a storage URL is parsed as the database
// driver will parse it when serve opens it, so a parameter it refuses is
// refused at load, at the storage line, without the URL.
func TestDatabaseURLParameters(t *testing.T) {
	f := newFixture(t)
	f.write(t, "kek", strings.Repeat("k", 32), 0o400)
	t.Setenv("PGPASSWORD", "s3cretPW")
	for _, tt := range []struct{ query, want string }{
		{"sslmode=bogus", "tlspilot.toml:1: storage: the database driver refuses this URL: failed to configure TLS (sslmode is invalid)"},
		{"connect_timeout=abc", "tlspilot.toml:1: storage: the database driver refuses this URL: invalid connect_timeout"},
		{"pool_max_conns=many", "tlspilot.toml:1: storage: the database driver refuses this URL: cannot parse pool_max_conns"},
		{"target_session_attrs=whatever", "tlspilot.toml:1: storage: the database driver refuses this URL: unknown target_session_attrs value"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			_, err := f.parse(t, "storage = \"postgres://tlspilot@127.0.0.1:55432/tlspilot?"+tt.query+"\"\nkek_file = \"kek\"\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tt.want)
			}
			if s := err.Error(); strings.Contains(s, "s3cretPW") || strings.Contains(s, "127.0.0.1") {
				t.Errorf("the error repeats the URL or the password: %v", err)
			}
		})
	}
	f.mustParse(t, "storage = \"postgres://tlspilot@127.0.0.1:55432/tlspilot?sslmode=disable&connect_timeout=5&pool_max_conns=8\"\nkek_file = \"kek\"\n")

	// What the driver reads from files and the environment of whoever
	// loads the config (root before serve drops privileges, a shell with
	// PGSERVICE) is not the URL's fault: serve reports it when it
	// connects, as the user it runs as.
	f.write(t, "garbage.key", "not a key", 0o600)
	t.Setenv("PGSERVICE", "nosuchservice")
	t.Setenv("PGSERVICEFILE", f.dir+"/no-service-file")
	f.mustParse(t, "storage = \"postgres://tlspilot@127.0.0.1:55432/tlspilot\"\nkek_file = \"kek\"\n")
	t.Setenv("PGSERVICE", "")
	f.mustParse(t, "storage = \"postgres://tlspilot@127.0.0.1:55432/tlspilot?sslmode=verify-full&sslkey="+f.dir+"/garbage.key&sslcert="+f.dir+"/garbage.key\"\nkek_file = \"kek\"\n")
}

// TestKEKFileRules: an existing kek_file is read at load with the rules
// the storage applies when it opens it (keys.CheckKEKFile), and refused at
// the kek_file line; a missing one is left for serve or init to create
// with a directory storage.
func TestKEKFileRules(t *testing.T) {
	f := newFixture(t)
	f.write(t, "open-kek", strings.Repeat("k", 32), 0o644)
	f.write(t, "short-kek", strings.Repeat("k", 16), 0o400)
	f.write(t, "good-kek", strings.Repeat("k", 32), 0o400)
	for _, storage := range []string{"$DIR/state", "postgres://tlspilot@db.example.com/tlspilot"} {
		for _, tt := range []struct{ kek, want string }{
			{"open-kek", "tlspilot.toml:3: kek_file: keys: KEK file " + f.dir + "/open-kek: permissions 0644 are too open"},
			{"short-kek", "tlspilot.toml:3: kek_file: keys: KEK file " + f.dir + "/short-kek has 16 bytes, want 32"},
		} {
			_, err := f.parse(t, "email = \"a@b.example\"\nstorage = \""+storage+"\"\nkek_file = \""+tt.kek+"\"\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("storage %s: error = %v\nwant it to contain %q", storage, err, tt.want)
			}
		}
		f.mustParse(t, "storage = \""+storage+"\"\nkek_file = \"good-kek\"\n")
	}
	f.mustParse(t, "storage = \"$DIR/state\"\nkek_file = \"new-kek\"\n")
}
