package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/keys"
)

// checkStorageConfig writes a config with storage line 2 and kek_file
// line 3 (when kek is not empty) to a new directory and returns its path.
func checkStorageConfig(t *testing.T, storage, kek string) string {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf("ca = \"https://ca.example.test/dir\"\nstorage = %q\n", storage)
	if kek != "" {
		conf += fmt.Sprintf("kek_file = %q\n", kek)
	}
	// Should serve not refuse the config, it serves on loopback only, and
	// runWithin stops it.
	conf += "http_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"off\"\n"
	conf += "[[site]]\nnames = [\"a.example.test\"]\nredirect = \"https://example.org/\"\n"
	path := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, path, conf)
	return path
}

// runWithin is runCLI, but cancels the command after 20 seconds, for a
// serve that should have refused to start.
func runWithin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCheckRefusesWhatServeRefuses: check and serve refuse, at the file,
// line and key, a storage that is no directory the user meant (a libpq
// connection string, whose password they never echo and which is never
// made into a directory), database URL parameters the driver refuses, and
// a key-encryption key file too open or of the wrong size; check accepts
// an upper-case POSTGRES:// URL as PostgreSQL's.
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	dir := t.TempDir()
	goodKEK := filepath.Join(dir, "kek")
	openKEK := filepath.Join(dir, "open-kek")
	shortKEK := filepath.Join(dir, "short-kek")
	for p, mode := range map[string]os.FileMode{goodKEK: 0o400, openKEK: 0o644} {
		if err := os.WriteFile(p, make([]byte, 32), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(shortKEK, make([]byte, 16), 0o400); err != nil {
		t.Fatal(err)
	}
	const pgURL = "postgres://tlspilot@127.0.0.1:55432/tlspilot"
	cases := []struct{ name, storage, kek, want string }{
		{"libpq string", "host=127.0.0.1 port=55432 user=tlspilot password=s3cretPW dbname=tlspilot", "",
			"tlspilot.toml:2: storage: a libpq key/value connection string is not a storage: write it as a postgres:// URL: storage = \"" + pgURL + "\""},
		{"sslmode", pgURL + "?sslmode=bogus", goodKEK, "tlspilot.toml:2: storage: the database driver refuses this URL: failed to configure TLS (sslmode is invalid)"},
		{"connect_timeout", pgURL + "?connect_timeout=abc", goodKEK, "tlspilot.toml:2: storage: the database driver refuses this URL: invalid connect_timeout"},
		{"kek too open", pgURL, openKEK, "tlspilot.toml:3: kek_file: keys: KEK file " + openKEK + ": permissions 0644 are too open"},
		{"kek short", filepath.Join(dir, "s"), shortKEK, "tlspilot.toml:3: kek_file: keys: KEK file " + shortKEK + " has 16 bytes, want 32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("PGPASSWORD", "s3cretPW")
			conf := checkStorageConfig(t, c.storage, c.kek)
			for _, cmd := range []string{"check", "serve"} {
				code, out, errOut := runWithin(t, cmd, "--config", conf)
				if code != 1 || !strings.Contains(errOut, conf+":") || !strings.Contains(errOut, c.want) {
					t.Errorf("%s: exit %d\nstdout %q\nstderr %q\nwant exit 1 and %q", cmd, code, out, errOut, c.want)
				}
				if strings.Contains(out+errOut, "s3cretPW") {
					t.Errorf("%s repeats the password: %q %q", cmd, out, errOut)
				}
			}
			entries, err := os.ReadDir(filepath.Dir(conf))
			if err != nil || len(entries) != 1 {
				t.Errorf("the config's directory holds %v (%v), want only the config", entries, err)
			}
		})
	}
	t.Run("upper-case scheme", func(t *testing.T) {
		conf := checkStorageConfig(t, "POSTGRES://tlspilot@127.0.0.1:55432/tlspilot", goodKEK)
		code, out, errOut := runCLI(t, "check", "--config", conf)
		if code != 0 || !strings.Contains(out, "storage path: "+pgURL+"\n") {
			t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
		}
	})
}

// TestCheckStorageDirKEK: with no kek_file, check reads the storage
// directory's kek as serve would, and refuses one of the wrong size or
// too open at the storage line.
func TestCheckStorageDirKEK(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int
		mode os.FileMode
		want string
	}{
		{"short", 16, 0o400, "has 16 bytes, want 32"},
		{"too open", 32, 0o644, "permissions 0644 are too open"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storage := filepath.Join(t.TempDir(), "storage")
			if err := os.Mkdir(storage, 0o700); err != nil {
				t.Fatal(err)
			}
			kek := filepath.Join(storage, "kek")
			if err := os.WriteFile(kek, make([]byte, tt.size), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(kek, tt.mode); err != nil {
				t.Fatal(err)
			}
			conf := checkStorageConfig(t, storage, "")
			code, out, errOut := runCLI(t, "check", "--config", conf)
			want := conf + ":2: storage: keys: KEK file " + kek
			if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d\nstdout %q\nstderr %q\nwant %q and %q", code, out, errOut, want, tt.want)
			}
			// A config of [[certificate]] tables only (certs) too.
			pem := t.TempDir()
			certs := filepath.Join(t.TempDir(), "certs.toml")
			writeFile(t, certs, fmt.Sprintf("ca = \"https://ca.example.test/dir\"\nstorage = %q\n\n[[certificate]]\nnames = [\"c.example.test\"]\nfullchain = %q\nprivkey = %q\n",
				storage, filepath.Join(pem, "fullchain.pem"), filepath.Join(pem, "privkey.pem")))
			code, stdout, errOut := runCLI(t, "check", "--config", certs)
			if want := certs + ":2: storage: keys: KEK file " + kek; code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, tt.want) {
				t.Errorf("certificates only: exit %d\nstdout %q\nstderr %q\nwant %q and %q", code, stdout, errOut, want, tt.want)
			}
		})
	}
}

// TestConfigKEKErrorAtServeStart: a key-encryption key file that turns
// bad after the config was loaded (or that this user reads differently)
// is refused by serve's manager at the kek_file line, not only with the
// file name.
func TestConfigKEKErrorAtServeStart(t *testing.T) {
	dir := t.TempDir()
	kek := filepath.Join(dir, "kek")
	conf := checkStorageConfig(t, filepath.Join(dir, "storage"), kek)
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kek, make([]byte, 16), 0o400); err != nil {
		t.Fatal(err)
	}
	mc, err := managerConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tlspilot.New(context.Background(), mc)
	if err == nil {
		t.Fatal("tlspilot.New accepted a 16-byte key-encryption key")
	}
	want := conf + ":3: kek_file: open key-encryption key: keys: KEK file " + kek + " has 16 bytes, want 32"
	if got := newError(cfg, err).Error(); !strings.Contains(got, want) {
		t.Errorf("error %q\nwant %q", got, want)
	}
}

// TestWrongKEKAtItsLine: a command given another kek_file than the one
// the storage's keys are sealed under refuses at the kek_file line.
func TestWrongKEKAtItsLine(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	for _, k := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, "kek-"+k), bytes.Repeat([]byte(k), keys.KEKSize), 0o400); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, k+".toml"), fmt.Sprintf("ca = \"https://127.0.0.1:1/dir\"\nagree_terms = true\nstorage = %q\nkek_file = %q\n\n[[site]]\nnames = [\"kek.example.test\"]\n",
			storage, filepath.Join(dir, "kek-"+k)))
	}
	runCLI(t, "renew", "--config", filepath.Join(dir, "a.toml")) // the CA is not there: it only opens the storage with kek-a
	code, _, errOut := runCLI(t, "renew", "--config", filepath.Join(dir, "b.toml"))
	if want := filepath.Join(dir, "b.toml") + ":4: kek_file: "; code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "sealed under another key-encryption key") {
		t.Errorf("renew with another kek_file: exit %d, stderr %q; want 1 and the refusal at %q", code, errOut, want)
	}
}

// TestPasswordHint: a refused password (SQLSTATE 28P01) when no password
// was found to send says where tlspilot looks for one; with PGPASSWORD
// or a passfile there, or another error, it adds nothing.
func TestPasswordHint(t *testing.T) {
	refused := fmt.Errorf("connect: %w", &pgconn.PgError{Code: "28P01", Message: "password authentication failed for user \"tlspilot\""})
	dir := t.TempDir()
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", filepath.Join(dir, "missing"))
	if h := passwordHint(refused); !strings.Contains(h, "no password was sent") || !strings.Contains(h, filepath.Join(dir, "missing")) {
		t.Errorf("no password anywhere: hint %q", h)
	}
	write(t, filepath.Join(dir, "pgpass"), "*:*:*:tlspilot:wrong\n")
	t.Setenv("PGPASSFILE", filepath.Join(dir, "pgpass"))
	if h := passwordHint(refused); h != "" {
		t.Errorf("with a passfile: hint %q, want none", h)
	}
	t.Setenv("PGPASSFILE", filepath.Join(dir, "missing"))
	t.Setenv("PGPASSWORD", "wrong")
	if h := passwordHint(refused); h != "" {
		t.Errorf("with PGPASSWORD: hint %q, want none", h)
	}
	if h := passwordHint(errors.New("connection refused")); h != "" {
		t.Errorf("another error: hint %q", h)
	}
}
