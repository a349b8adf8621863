package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/internal/devca"
)

const (
	// postgresUser is the superuser initdb creates; it logs in without a
	// password (trust) over loopback and the socket.
	postgresUser = "tlspilot"
	// postgresStartTimeout bounds how long the server may take to accept
	// connections.
	postgresStartTimeout = 60 * time.Second
	// nobody is the uid and gid the server runs as when the test runs as
	// root, which PostgreSQL refuses: nobody and nogroup on Debian.
	nobody = 65534
)

// Postgres is a PostgreSQL server started by StartPostgres for one test.
type Postgres struct {
	// URL connects to the database "tlspilot" as its owner, without a
	// password, over loopback TCP:
	// postgres://tlspilot@127.0.0.1:PORT/tlspilot?sslmode=disable.
	URL string
	// Port is the server's TCP port on 127.0.0.1.
	Port int
	// Dir holds the data directory ("data") and the socket directory
	// ("sock"); it is removed at cleanup.
	Dir string

	bin   string // directory of initdb and postgres
	cred  *syscall.Credential
	dbSeq atomic.Int64
	logw  *testLog

	mu   sync.Mutex
	stop func() // stops the running server; nil while stopped
}

// StartPostgres starts a PostgreSQL server for t and stops it in
// t.Cleanup: initdb in a fresh directory under os.TempDir(), then postgres
// on a free port of 127.0.0.1 (and a unix socket in Dir/sock), with trust
// authentication (see RequirePassword) and fsync off. It creates the database "tlspilot", which
// URL names.
//
// The binaries are looked for in /usr/lib/postgresql/*/bin (Debian's
// postgresql package; the newest version wins), then in PATH. A missing
// PostgreSQL fails the test: the storage tests need a real server.
//
// PostgreSQL refuses to run as root; when the test runs as root, initdb
// and the server run as uid and gid 65534 (nobody, nogroup), which own the
// directory.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	p := &Postgres{bin: bin}
	if os.Geteuid() == 0 {
		p.cred = &syscall.Credential{Uid: nobody, Gid: nobody}
	}
	p.makeDir(t)
	logw := &testLog{}
	p.logw = logw
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log:\n%s", logw.String())
		}
	})
	p.initdb(t, logw)
	p.start(t, logw)
	t.Cleanup(p.Stop)
	p.URL = p.createDatabase(t, "tlspilot")
	return p
}

// NewDatabase creates a new, empty database on the server and returns a
// URL like URL's that connects to it. Tests that need a fresh store each
// (storagetest.Run) call it once per store.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	return p.createDatabase(t, "t"+strconv.FormatInt(p.dbSeq.Add(1), 10))
}

// urlOf returns the URL of database name.
func (p *Postgres) urlOf(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", postgresUser, p.Port, name)
}

// adminURL returns a URL of database name over the unix socket, which
// stays trusted when RequirePassword is in force.
func (p *Postgres) adminURL(name string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d", postgresUser, name, url.QueryEscape(filepath.Join(p.Dir, "sock")), p.Port)
}

// RequirePassword gives the user of URL the password and makes the server
// ask for it (SCRAM-SHA-256) on every TCP connection from then on: URL
// connects only when the password comes from elsewhere (PGPASSWORD, a
// passfile). NewDatabase keeps working.
func (p *Postgres) RequirePassword(t testing.TB, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.adminURL("postgres"))
	if err != nil {
		t.Fatalf("postgres: connect: %v", err)
	}
	defer conn.Close(context.Background())
	// ALTER ROLE takes no parameters: quote the password as a literal.
	lit := "'" + strings.ReplaceAll(password, "'", "''") + "'"
	if _, err := conn.Exec(ctx, "ALTER ROLE "+postgresUser+" PASSWORD "+lit); err != nil {
		t.Fatalf("postgres: set password: %v", err)
	}
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(p.Dir, "data", "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatalf("postgres: reload: %v", err)
	}
}

// createDatabase creates database name and returns its URL.
func (p *Postgres) createDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.adminURL("postgres"))
	if err != nil {
		t.Fatalf("postgres: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("postgres: create database %s: %v", name, err)
	}
	return p.urlOf(name)
}

// postgresBinDir finds the directory holding initdb and postgres.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(initdb)
		if isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("no initdb and postgres in /usr/lib/postgresql/*/bin or PATH: install PostgreSQL (Debian: apt-get install postgresql)")
}

// versionOf returns the major version in /usr/lib/postgresql/VERSION/bin,
// or 0.
func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// isExecutable reports whether path is a regular file someone may execute.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// makeDir creates Dir and its socket directory, owned by the server's
// user, and removes them at cleanup. Dir is not under t.TempDir(), whose
// parents are private to the test's user.
func (p *Postgres) makeDir(t testing.TB) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tlspilot-pg-")
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p.Dir = dir
	sock := filepath.Join(dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if p.cred == nil {
		return
	}
	for _, d := range []string{dir, sock} {
		if err := os.Chown(d, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			t.Fatalf("postgres: %v", err)
		}
	}
}

// command returns a command running the PostgreSQL program name as the
// server's user, its output going to logw.
func (p *Postgres) command(name string, logw *testLog, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "PGTZ=UTC")
	cmd.Stdout, cmd.Stderr = logw, logw
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	dieWithParent(cmd.SysProcAttr)
	return cmd
}

// initdb creates the data directory.
func (p *Postgres) initdb(t testing.TB, logw *testLog) {
	t.Helper()
	cmd := p.command("initdb", logw, "-D", filepath.Join(p.Dir, "data"), "-U", postgresUser,
		"-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	if err := cmd.Run(); err != nil {
		t.Fatalf("postgres: initdb: %v\n%s", err, logw.String())
	}
}

// start runs the server until the end of the test and waits until it
// accepts connections. A port taken in between is retried on another.
func (p *Postgres) start(t testing.TB, logw *testLog) {
	t.Helper()
	var err error
	for range 3 {
		ports, perr := devca.FreePorts(1)
		if perr != nil {
			t.Fatalf("postgres: %v", perr)
		}
		p.Port = ports[0]
		if err = p.run(logw); err == nil {
			return
		}
	}
	t.Fatalf("postgres: %v\n%s", err, logw.String())
}

// run starts the server on p.Port and waits until it accepts connections,
// or returns why not. Stop stops a started server.
func (p *Postgres) run(logw *testLog) error {
	cmd := p.command("postgres", logw, "-D", filepath.Join(p.Dir, "data"),
		"-p", strconv.Itoa(p.Port), "-k", filepath.Join(p.Dir, "sock"),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=32MB")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	if err := p.waitReady(exited); err != nil {
		stop()
		return err
	}
	p.mu.Lock()
	p.stop = stop
	p.mu.Unlock()
	return nil
}

// Stop shuts the server down (fast shutdown: open connections are
// closed) and returns once it has exited; nothing listens on Port
// afterwards. Stopping a stopped server does nothing. The test's cleanup
// stops it too.
func (p *Postgres) Stop() {
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Start starts a server stopped by Stop again, on the same port and with
// the same data, and waits until it accepts connections. Starting a
// running server does nothing.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	running := p.stop != nil
	p.mu.Unlock()
	if running {
		return
	}
	var err error
	for range 50 { // the port may linger a moment after the stop
		if err = p.run(p.logw); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("postgres: restart on port %d: %v\n%s", p.Port, err, p.logw.String())
}

// waitReady waits until the server accepts a connection, or exited is
// closed, or postgresStartTimeout passes.
func (p *Postgres) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(postgresStartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, p.urlOf("postgres"))
		cancel()
		if err == nil {
			return conn.Close(context.Background())
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited before accepting connections on port %d", p.Port)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not accepting connections on %s after %v: %w",
				net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)), postgresStartTimeout, err)
		}
	}
}
