// Package devca runs a local ACME test CA: Let's Encrypt's Pebble, inside
// the current process, on 127.0.0.1, with a challtestsrv DNS server that
// answers every A query with 127.0.0.1. It needs no network beyond
// loopback, so an ACME client can obtain certificates for any name, such as
// example.test, on a machine with no internet access.
//
// It is for examples, demos and tests only: Pebble forgets everything when
// it stops, and its certificates chain to a root generated at start. Start
// returns errors rather than failing a test; internal/testenv wraps it for
// tests. The tlspilot library never imports it.
package devca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"sync"

	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// CA is a running Pebble ACME server, with the DNS server its validation
// authority (VA) resolves names with. Its methods are safe for concurrent
// use.
type CA struct {
	// DirectoryURL is the URL of the ACME directory,
	// https://127.0.0.1:PORT/dir.
	DirectoryURL string
	// ManagementURL is the base URL of Pebble's management interface,
	// https://127.0.0.1:PORT, served with the same certificate.
	ManagementURL string
	// Roots trusts the TLS certificate of DirectoryURL and ManagementURL. It
	// does not trust the certificates Pebble issues; see IssuerRootsPEM.
	Roots *x509.CertPool
	// RootsPEM is the certificate in Roots, PEM-encoded.
	RootsPEM []byte
	// HTTPPort is the port on 127.0.0.1 where Pebble's VA fetches http-01
	// answers. It was free when Pebble started; the client must serve on it.
	HTTPPort int
	// TLSPort is the port on 127.0.0.1 where Pebble's VA does tls-alpn-01.
	TLSPort int
	// DNSAddr is the host:port of the DNS server Pebble's VA resolves names
	// with, over TCP.
	DNSAddr string
	// DNS is the challtestsrv behind DNSAddr; see DNSServer.Srv. It is nil
	// when Options.DNSServer was set.
	DNS *challtestsrv.ChallSrv

	authority *ca.CAImpl
	closeOnce sync.Once
	closers   []func() // run by Close, last first
}

// Start starts Pebble: an in-memory database, CA, VA and web front end,
// the ACME API and management interface each on its own new 127.0.0.1
// port over HTTPS with a certificate of a throwaway root (Roots), and,
// unless opts.DNS is set, a DNS server. ctx bounds the start only.
//
// Pebble reads some settings (see Options.Env) from the process's
// environment while it is built. Unless opts.KeepEnv is set, Start sets
// those variables with os.Setenv and restores their previous values before
// it returns. The environment is global to the process: Start must not run
// concurrently with another Start or with code that reads PEBBLE_*
// variables.
//
// One goroutine of Pebble's VA, which Pebble cannot stop, outlives Close;
// it holds no listener but may still write to opts.Log.
func Start(ctx context.Context, opts Options) (*CA, error) {
	c, err := start(ctx, opts)
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("devca: %w", err)
	}
	return c, nil
}

// start does the work of Start. On error, the returned CA, if not nil,
// holds what was started, for Close.
func start(ctx context.Context, opts Options) (*CA, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	cert, err := NewServerCert()
	if err != nil {
		return nil, err
	}
	c := &CA{Roots: cert.Roots, RootsPEM: cert.RootPEM}
	if err := c.startDNS(ctx, opts); err != nil {
		return c, err
	}
	ports, err := FreePorts(2)
	if err != nil {
		return c, err
	}
	c.HTTPPort, c.TLSPort = ports[0], ports[1]
	front, err := c.newPebble(opts)
	if err != nil {
		return c, err
	}
	api := front.Handler()
	if opts.Handler != nil {
		api = opts.Handler(api)
	}
	apiURL, err := c.serve(api, cert, opts.Log)
	if err != nil {
		return c, fmt.Errorf("serve ACME API: %w", err)
	}
	c.DirectoryURL = apiURL + wfe.DirectoryPath
	if c.ManagementURL, err = c.serve(front.ManagementHandler(), cert, opts.Log); err != nil {
		return c, fmt.Errorf("serve management interface: %w", err)
	}
	return c, nil
}

// startDNS starts the DNS server, or takes opts.DNSServer or opts.DNS.
func (c *CA) startDNS(ctx context.Context, opts Options) error {
	if opts.DNSServer != "" {
		c.DNSAddr = opts.DNSServer
		return nil
	}
	d := opts.DNS
	if d == nil {
		var err error
		if d, err = StartDNS(ctx, opts.Log); err != nil {
			return err
		}
		c.closers = append(c.closers, d.Close)
	}
	c.DNSAddr, c.DNS = d.Addr, d.Srv
	return nil
}

// newPebble builds Pebble's database, CA, VA and web front end, setting
// the environment around it unless opts.KeepEnv.
func (c *CA) newPebble(opts Options) (wfe.WebFrontEndImpl, error) {
	logger := log.New(opts.Log, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	for id, key := range opts.EAB {
		if err := store.AddExternalAccountKeyByID(id, key); err != nil {
			return wfe.WebFrontEndImpl{}, fmt.Errorf("EAB key %q: %w", id, err)
		}
	}
	if opts.KeepEnv {
		if err := checkEnv(opts.Env()); err != nil {
			return wfe.WebFrontEndImpl{}, err
		}
	} else {
		restore, err := setEnv(opts.Env())
		if err != nil {
			return wfe.WebFrontEndImpl{}, err
		}
		defer restore()
	}
	c.authority = ca.New(logger, store, "", KeyAlgorithm, 0, 1, opts.PebbleProfiles())
	validator := va.New(logger, c.HTTPPort, c.TLSPort, false, c.DNSAddr, store)
	return wfe.New(logger, store, validator, c.authority, []string{CAAIdentity},
		false, len(opts.EAB) > 0, 0, opts.RetryAfterOrder), nil
}

// IssuerRootsPEM returns Pebble's issuing root, PEM-encoded, to verify the
// certificates it issues. The root is generated when Pebble starts, so it
// differs between CAs. It is the certificate Pebble's management interface
// serves at /roots/0.
func (c *CA) IssuerRootsPEM() ([]byte, error) {
	if c.authority == nil || c.authority.GetNumberOfRootCerts() == 0 {
		return nil, errors.New("devca: Pebble has no issuing root")
	}
	root := c.authority.GetRootCert(0)
	if root == nil {
		return nil, errors.New("devca: Pebble has no issuing root")
	}
	return root.PEM(), nil
}

// IssuerRoots returns a pool holding Pebble's issuing root; see
// IssuerRootsPEM.
func (c *CA) IssuerRoots() (*x509.CertPool, error) {
	pemBytes, err := c.IssuerRootsPEM()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("devca: issuing root does not parse")
	}
	return pool, nil
}

// Close stops Pebble and the DNS server it started: afterwards nothing
// listens at DirectoryURL, ManagementURL or DNSAddr (unless the DNS server
// came from Options.DNS). It waits up to 5 seconds for requests in
// progress. Close may be called more than once.
func (c *CA) Close() {
	c.closeOnce.Do(func() {
		for i := len(c.closers) - 1; i >= 0; i-- {
			c.closers[i]()
		}
	})
}
