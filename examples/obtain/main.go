// Command obtain shows tlspilot at work with nothing but loopback: it starts
// a local ACME test CA (Pebble, through internal/devca), has a tlspilot
// Manager obtain a certificate from it with http-01, connects to the
// Manager's TLS server as a client would, verifies what it is served
// against the test CA's issuing root, and prints a summary.
//
//	go run ./examples/obtain [-names a.test,b.test] [-key-type ecdsa-p256] [-dir DIR] [-keep]
//
// The test CA rejects 20% of good nonces, as lego's end-to-end tests do, so
// the run also exercises tlspilot's retries. Names need not exist: the test
// CA's DNS server resolves every name to 127.0.0.1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/devca"
)

// obtainTimeout bounds the wait for the first certificate.
const obtainTimeout = 60 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, errFlags): // the flag package has said why
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "obtain: %v\n", err)
		os.Exit(1)
	}
}

// errFlags wraps the errors of parsing the command line, which the flag
// package has already reported with the usage.
var errFlags = errors.New("bad flags")

// options are the command-line flags.
type options struct {
	names   []string
	keyType tlspilot.KeyType
	dir     string // "" for a new temporary directory
	keep    bool
}

// parseFlags parses args. Usage and flag errors go to stderr.
func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("obtain", flag.ContinueOnError)
	names := fs.String("names", "example.test,www.example.test", "comma-separated `names` of the certificate; the first is its primary name")
	keyType := fs.String("key-type", "ecdsa-p256", "certificate key `type`: ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096")
	var o options
	fs.StringVar(&o.dir, "dir", "", "storage `directory`, new or empty (default: a new temporary directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary storage directory at exit (a -dir is always kept)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errFlags, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q (names go in -names)", fs.Args())
	}
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			o.names = append(o.names, n)
		}
	}
	if len(o.names) == 0 {
		return o, errors.New("-names: no name given")
	}
	kt, err := tlspilot.ParseKeyType(*keyType)
	if err != nil {
		return o, fmt.Errorf("-key-type: %w", err)
	}
	o.keyType = kt
	return o, nil
}

// run is the program: it parses args, obtains a certificate from a local
// test CA and writes a summary to stdout. Logs go to stderr.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	start := time.Now()
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir, removeDir, err := storageDir(o)
	if err != nil {
		return err
	}
	defer removeDir()
	ca, err := devca.Start(ctx, devca.Options{NonceReject: 20})
	if err != nil {
		return fmt.Errorf("start test CA: %w", err)
	}
	defer ca.Close()
	caReady := time.Now()
	m, stopManager, err := startManager(ctx, ca, o, dir)
	if err != nil {
		return err
	}
	defer stopManager()
	if err := waitServing(ctx, m, obtainTimeout); err != nil {
		return err
	}
	obtained := time.Now()
	served, err := checkServed(ctx, ca, o.names)
	if err != nil {
		return err
	}
	st, err := scanStorage(dir)
	if err != nil {
		return err
	}
	sum := summary{ca: ca, served: served, storage: st, removed: o.dir == "" && !o.keep,
		caStart: caReady.Sub(start), obtain: obtained.Sub(caReady), total: time.Since(start)}
	sum.write(stdout)
	return st.err()
}

// storageDir returns the storage directory, creating it, and a function
// that removes it if it is a temporary one not to be kept.
func storageDir(o options) (string, func(), error) {
	if o.dir == "" {
		dir, err := os.MkdirTemp("", "tlspilot-obtain-")
		if err != nil {
			return "", nil, fmt.Errorf("storage directory: %w", err)
		}
		if o.keep {
			return dir, func() {}, nil
		}
		return dir, func() { _ = os.RemoveAll(dir) }, nil
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("storage directory: %w", err)
	}
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return "", nil, fmt.Errorf("storage directory: %w", err)
	}
	if len(entries) > 0 {
		// What an earlier run stored chains to a test CA that is gone.
		return "", nil, fmt.Errorf("storage directory %s is not empty: use a new or empty one (each run has a new test CA)", o.dir)
	}
	return o.dir, func() {}, nil
}

// newLogger returns the text logger on stderr, at Info.
func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
