package config

import (
	"strings"
	"testing"
)

// TestDatabaseStorage: a postgres:// or postgresql:// storage is kept as
// written (its scheme in lower case) and needs an existing kek_file; a password written in the URL is
// refused at its line, without echoing it.
func TestDatabaseStorage(t *testing.T) {
	f := newFixture(t)
	kek := f.write(t, "kek", strings.Repeat("k", 32), 0o400)
	for _, url := range []string{
		"postgres://tlspilot@db.example.com/tlspilot?sslmode=verify-full",
		"postgresql://tlspilot@db.example.com:5433/tlspilot",
		"POSTGRES://tlspilot@db.example.com/tlspilot",
	} {
		c := f.mustParse(t, "storage = \""+url+"\"\nkek_file = \"kek\"\n")
		if c.Storage != strings.Replace(url, "POSTGRES:", "postgres:", 1) || c.KEKFile != kek || !c.StorageIsDatabase() {
			t.Errorf("storage %q: Storage %q, KEKFile %q, database %v", url, c.Storage, c.KEKFile, c.StorageIsDatabase())
		}
		if s := c.Summary(); !strings.Contains(s, "key-encryption key: "+kek) {
			t.Errorf("summary does not name the key-encryption key:\n%s", s)
		}
	}
	c := f.mustParse(t, "storage = \"$DIR/state\"\nkek_file = \"$DIR/new-kek\"\n")
	if c.StorageIsDatabase() || c.KEKFile != f.dir+"/new-kek" {
		t.Errorf("directory storage with a kek_file to create: database %v, KEKFile %q", c.StorageIsDatabase(), c.KEKFile)
	}

	tests := []struct{ name, config, want string }{
		{"password in URL", "email = \"a@b.example\"\nstorage = \"postgres://tlspilot:s3cret@db.example.com/tlspilot\"\nkek_file = \"kek\"",
			"tlspilot.toml:2: storage: a password in the storage URL is refused: give it by PGPASSWORD or a passfile"},
		{"password parameter", "storage = \"postgresql://db.example.com/tlspilot?user=x&password=s3cret\"\nkek_file = \"kek\"",
			"tlspilot.toml:1: storage: a password in the storage URL is refused"},
		{"no kek_file", "\nstorage = \"postgres://tlspilot@db.example.com/tlspilot\"",
			"tlspilot.toml:2: storage: a PostgreSQL storage needs kek_file"},
		{"missing kek_file", "storage = \"postgres://tlspilot@db.example.com/tlspilot\"\nkek_file = \"$DIR/absent\"",
			"tlspilot.toml:2: kek_file: " + f.dir + "/absent does not exist: every node sharing a PostgreSQL storage must read the same key-encryption key"},
		{"kek_file a directory", "kek_file = \"$DIR/www\"",
			"tlspilot.toml:1: kek_file: " + f.dir + "/www is not a regular file"},
		{"bad URL", "storage = \"postgres://tlspilot:s3cret@db.example.com:port/x\"\nkek_file = \"kek\"",
			"tlspilot.toml:1: storage: not a valid postgres:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.parse(t, tt.config)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}
