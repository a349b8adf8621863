package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestCertsPostgres: `certs --once` as root deploys PostgreSQL's
// server.crt and server.key into its data directory, the key owned by the
// server's user with mode 0600 as PostgreSQL demands, and reloads the
// server with SIGHUP through postmaster.pid (whose first line only is
// the process id); a client with sslmode=verify-full trusting only
// Pebble's root then gets the deployed certificate, and after a forced
// renewal the new one. The data directory is the server user's to
// write: a server.key that user made a symbolic link to another file
// holding the key is replaced, and the other file keeps its owner and
// mode (it used to be chowned to the server's user and chmodded).
func TestCertsPostgres(t *testing.T) {
	ce := newCertsEnv(t)
	serveOn(t, ce.http, http.StripPrefix("/.well-known/acme-challenge/", http.FileServer(http.Dir(ce.challenges))))
	pg := testenv.StartPostgres(t)
	data := filepath.Join(pg.Dir, "data")
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		uid, gid = 65534, 65534 // testenv runs PostgreSQL as nobody under root
	}
	key := filepath.Join(data, "server.key")
	conf := ce.config(fmt.Sprintf(`
[[certificate]]
names = ["pg.example.test"]
challenge_dir = %q
fullchain = %q
privkey = %q
owner = "%d"
group = "%d"
mode = "0600"
reload_signal = "HUP"
pidfile = %q
`, ce.challenges, filepath.Join(data, "server.crt"), key, uid, gid, filepath.Join(data, "postmaster.pid")))

	certsOnce(t, conf, tlspilot.ExitOK)
	if got := modeOwner(t, key); got != fmt.Sprintf("-rw------- %d:%d", uid, gid) {
		t.Errorf("server.key: %s", got)
	}
	pgExec(t, pg.URL, "ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()")
	c, _ := deployed(t, conf)
	waitPGSerial(t, ce, pg, c.Serial)

	if code, out, errOut := runBinary(t, "renew", "--force", "--config", conf); code != 0 {
		t.Fatalf("renew --force: exit %d\n%s%s", code, out, errOut)
	}
	certsOnce(t, conf, tlspilot.ExitOK)
	renewed, _ := deployed(t, conf)
	if renewed.Serial == c.Serial || renewed.Deploy.Serial != renewed.Serial {
		t.Fatalf("after renew --force: serial %s (was %s), deployed %s", renewed.Serial, c.Serial, renewed.Deploy.Serial)
	}
	waitPGSerial(t, ce, pg, renewed.Serial)
	checkKeyLinkReplaced(t, ce, conf, key)
}

// checkKeyLinkReplaced has the server's user make server.key a symbolic
// link to a root-owned copy of the key, 0644, and checks that `certs
// --once` leaves the copy as it was and puts a file of its own back.
func checkKeyLinkReplaced(t *testing.T, ce *certsEnv, conf, key string) {
	t.Helper()
	victim := filepath.Join(ce.dir, "victim.key")
	write(t, victim, readFile(t, key))
	if err := os.Chmod(victim, 0o644); err != nil {
		t.Fatal(err)
	}
	before := modeOwner(t, victim) + " " + stat(t, victim)
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, key); err != nil {
		t.Fatal(err)
	}
	certsOnce(t, conf, tlspilot.ExitOK)
	if after := modeOwner(t, victim) + " " + stat(t, victim); after != before {
		t.Errorf("the file server.key linked to went from %s to %s", before, after)
	}
	if fi, err := os.Lstat(key); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("server.key afterwards: %v, %v", fi, err)
	}
}

// modeOwner returns the mode and owner of the file at path, not
// following a symbolic link.
func modeOwner(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
}

// pgExec runs statements on the database at url.
func pgExec(t *testing.T, url string, stmts ...string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// waitPGSerial waits until PostgreSQL serves the certificate with serial
// to a client with sslmode=verify-full for pg.example.test that trusts
// only Pebble's root.
func waitPGSerial(t *testing.T, ce *certsEnv, pg *testenv.Postgres, serial string) {
	t.Helper()
	cfg, err := pgx.ParseConfig("postgres://tlspilot@127.0.0.1:" + strconv.Itoa(pg.Port) + "/tlspilot?sslmode=verify-full")
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSConfig = &tls.Config{ServerName: "pg.example.test", RootCAs: ce.roots}
	cfg.Fallbacks = nil
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := pgSerial(t, cfg)
		if err == nil && got == serial {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL serves serial %q (%v), want %s", got, err, serial)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pgSerial connects with cfg and returns the serial of the server's
// certificate.
func pgSerial(t *testing.T, cfg *pgx.ConnConfig) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	if !ok {
		return "", fmt.Errorf("connection without TLS: %T", conn.PgConn().Conn())
	}
	return tc.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}
