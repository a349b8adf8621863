// Command demo runs `tlspilot serve` end to end with nothing but loopback:
// it starts a local ACME test CA (Pebble, through internal/devca), writes a
// config with three sites (static files, a reverse proxy to a small
// upstream, a redirect), builds and starts the tlspilot binary on it, waits
// until every site is served with a certificate from the test CA, and
// prints how to reach the sites with curl. It keeps serving until
// interrupted, or exits at once with -check.
//
//	go run ./examples/demo [-check] [-dir DIR]
//	go run ./examples/demo -ca-only [-dir DIR]
//
// With -ca-only it starts the test CA alone and prints what a config
// needs to use it (ca, ca_root, the ports it validates challenges on),
// to try `tlspilot certs` or `tlspilot serve` by hand against it.
//
// Run it from the repository root: it builds ./cmd/tlspilot. The test CA
// is a separate program from the tlspilot binary it runs.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/tlspilot/tlspilot/internal/devca"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// The demo's names, one per kind of site.
const (
	staticSite   = "static.example.test"
	proxySite    = "app.example.test"
	redirectSite = "old.example.test"
)

func siteNames() []string { return []string{staticSite, proxySite, redirectSite} }

func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	check := fs.Bool("check", false, "exit once every site is served (for tests)")
	caOnly := fs.Bool("ca-only", false, "run only the test CA, and print how a config uses it")
	dir := fs.String("dir", "", "work directory (default: a new temporary one, removed on exit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	work, err := workDir(*dir)
	if err != nil {
		return err
	}
	if *caOnly {
		if *dir == "" {
			defer os.RemoveAll(work)
		}
		return caAlone(ctx, work, *check, stdout)
	}
	if *dir == "" {
		// A temporary work directory holds a 14 MB binary: remove it,
		// but keep it when the demo failed, for its log.
		defer func() {
			if err == nil {
				_ = os.RemoveAll(work)
			}
		}()
	}
	return demo(ctx, work, *check, stdout)
}

// demo starts the test CA, the upstream and tlspilot serve in work, and
// serves until ctx ends (or, with check, until every site is served).
func demo(ctx context.Context, work string, check bool, stdout io.Writer) error {
	ca, err := devca.Start(ctx, devca.Options{})
	if err != nil {
		return fmt.Errorf("start test CA: %w", err)
	}
	defer ca.Close()
	upstream, err := startUpstream()
	if err != nil {
		return err
	}
	defer upstream.Close()
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	conf, err := writeFiles(work, ca, upstream.Addr().String(), admin)
	if err != nil {
		return err
	}
	bin := filepath.Join(work, "tlspilot")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tlspilot").CombinedOutput(); err != nil {
		return fmt.Errorf("build tlspilot (run the demo from the repository root): %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(work, "tlspilot.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	c, err := startServe(bin, conf, logf)
	if err != nil {
		return err
	}
	defer c.stop()
	start := time.Now()
	if err := waitSites(ctx, ca, c); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logf.Name())
	}
	report(stdout, ca, work, c.cmd.Process.Pid, time.Since(start))
	fmt.Fprintf(stdout, "\nStatus page: http://%s/ (metrics at /metrics)\n", admin)
	if check {
		return nil
	}
	fmt.Fprintln(stdout, "\nServing until Ctrl-C.")
	select {
	case <-ctx.Done():
		return nil
	case <-c.done:
		// Ctrl-C reaches the whole process group: serve may see it
		// first and stop cleanly, which is no error.
		if c.err != nil {
			return fmt.Errorf("tlspilot serve exited: %w (log: %s)", c.err, logf.Name())
		}
		return nil
	}
}

// caAlone runs the test CA until ctx ends (with check, returns once it
// is up), having written its roots to work and printed how a config uses
// it.
func caAlone(ctx context.Context, work string, check bool, stdout io.Writer) error {
	ca, err := devca.Start(ctx, devca.Options{})
	if err != nil {
		return fmt.Errorf("start test CA: %w", err)
	}
	defer ca.Close()
	if err := writeRoots(work, ca); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `Test CA (Pebble) running. In a tlspilot config:

ca = %q
ca_root = %q   # trusts the CA's API
agree_terms = true

It resolves every name to 127.0.0.1 and validates http-01 on port %d
(http_listen, a [[certificate]]'s standalone, or a web server answering
/.well-known/acme-challenge/ from a challenge_dir) and tls-alpn-01 on
port %d (https_listen). Certificates it issues chain to %s
(give it to curl --cacert). Its certificates and accounts vanish when it stops.
`, ca.DirectoryURL, filepath.Join(work, "ca-api-root.pem"), ca.HTTPPort, ca.TLSPort, filepath.Join(work, "ca-root.pem"))
	if check {
		return nil
	}
	fmt.Fprintln(stdout, "\nRunning until Ctrl-C.")
	<-ctx.Done()
	return nil
}

// writeRoots writes the CA's API root (ca-api-root.pem, for ca_root) and
// the root its certificates chain to (ca-root.pem) into work.
func writeRoots(work string, ca *devca.CA) error {
	root, err := ca.IssuerRootsPEM()
	if err != nil {
		return err
	}
	for name, content := range map[string][]byte{"ca-api-root.pem": ca.RootsPEM, "ca-root.pem": root} {
		if err := os.WriteFile(filepath.Join(work, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// child is the running tlspilot serve. done is closed once it has
// exited, after err is set, so any number of callers may wait for it.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startServe starts `bin serve --config conf` with its output on log.
func startServe(bin, conf string, log io.Writer) (*child, error) {
	cmd := exec.Command(bin, "serve", "--config", conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func workDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "tlspilot-demo-")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// startUpstream serves the proxied application on a free loopback port.
func startUpstream() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from the upstream app: %s %s (X-Forwarded-For %s)\n", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-For"))
	})
	go func() { _ = http.Serve(l, h) }()
	return l, nil
}

// freeAddr returns a loopback address with a port free at the moment,
// for the admin listener (its default port may be taken).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// writeFiles writes the site root, the CA roots and the config file.
func writeFiles(work string, ca *devca.CA, upstream, admin string) (string, error) {
	if err := writeRoots(work, ca); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(work, "www"), 0o755); err != nil {
		return "", err
	}
	index := "<!doctype html><title>tlspilot demo</title><h1>Served by tlspilot</h1>\n"
	if err := os.WriteFile(filepath.Join(work, "www", "index.html"), []byte(index), 0o644); err != nil {
		return "", err
	}
	conf := fmt.Sprintf(`# tlspilot demo: three sites, certificates from a local test CA.
email = "demo@example.test"
ca = %q
ca_root = "ca-api-root.pem"
agree_terms = true
storage = "storage"
http_listen = "127.0.0.1:%d"
https_listen = "127.0.0.1:%d"
admin_listen = %q

[[site]]
names = [%q]
root = "www"
hsts = true

[[site]]
names = [%q]
proxy = "http://%s"

[[site]]
names = [%q]
redirect = "https://%s:%d{uri}"
`, ca.DirectoryURL, ca.HTTPPort, ca.TLSPort, admin, staticSite, proxySite, upstream, redirectSite, staticSite, ca.TLSPort)
	path := filepath.Join(work, "tlspilot.toml")
	return path, os.WriteFile(path, []byte(conf), 0o644)
}

// waitSites waits until every site is served with a certificate that
// verifies against the test CA's root.
func waitSites(ctx context.Context, ca *devca.CA, serve *child) error {
	roots, err := ca.IssuerRoots()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	addr := "127.0.0.1:" + strconv.Itoa(ca.TLSPort)
	for _, name := range siteNames() {
		for {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-serve.done:
				return fmt.Errorf("tlspilot serve exited: %v", serve.err)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not served with a certificate from the test CA after 60s: %v", name, err)
			}
		}
	}
	return nil
}

func report(w io.Writer, ca *devca.CA, work string, pid int, took time.Duration) {
	port := strconv.Itoa(ca.TLSPort)
	fmt.Fprintf(w, "tlspilot serve obtained certificates for %d sites from a local test CA in %v.\n\n", len(siteNames()), took.Round(time.Millisecond))
	fmt.Fprintf(w, "work directory  %s (config tlspilot.toml, log tlspilot.log)\n", work)
	fmt.Fprintf(w, "tlspilot serve  pid %d (kill -HUP %d reloads the config)\n", pid, pid)
	fmt.Fprintf(w, "test CA         %s\n\n", ca.DirectoryURL)
	fmt.Fprintln(w, "Try them (the test CA's root is ca-root.pem):")
	for _, name := range siteNames() {
		fmt.Fprintf(w, "  curl --resolve %s:%s:127.0.0.1 --cacert %s https://%s:%s/\n",
			name, port, filepath.Join(work, "ca-root.pem"), name, port)
	}
}

// stop stops tlspilot serve gracefully, killing it if it has not exited
// after 10 s. It returns at once if serve has already exited.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}
