// Package tlspilot obtains, renews and serves TLS certificates through
// ACME (RFC 8555) with no human in the loop.
//
// A Manager keeps certificates for the names it is told to manage: it
// serves them from memory through TLSConfig, answers the CA's challenges
// through HTTPHandler and TLSConfig, and renews each certificate on time
// in Run. Certificates, keys (encrypted) and the progress of every order
// live in a storage.Storage, so a restart resumes where it stopped and
// several processes may share one storage.
//
//	m, err := tlspilot.New(ctx, tlspilot.Config{Email: "ops@example.com", AgreeTerms: true})
//	if err != nil { ... }
//	if err := m.Manage(ctx, "example.com", "www.example.com"); err != nil { ... }
//	go m.Run(ctx)
//	go http.ListenAndServe(":80", m.HTTPHandler(nil))
//	srv := &http.Server{Addr: ":443", TLSConfig: m.TLSConfig()}
//	srv.ListenAndServeTLS("", "")
package tlspilot

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/renewal"
	"github.com/tlspilot/tlspilot/internal/solvers"
	"github.com/tlspilot/tlspilot/internal/tlsprofile"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// Manager obtains, renews and serves certificates. Its methods are safe
// for concurrent use.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	store   *certstore.Store
	client  *acmeclient.Client
	http01  *solvers.HTTP01
	alpn    *solvers.TLSALPN01
	dns     *solvers.DNS01 // nil without Config.DNSProvider
	names   *nameTable
	tempKey *ecdsa.PrivateKey
	intern  interner
	limiter *limiter
	workers chan struct{}
	backoff renewal.Backoff
	extras  extras // challenge directories and deployers (deploy.go)

	// manageMu makes ManageCerts' registering of names and scheduling of
	// entries one step, and Unmanage's undoing of both another, so that
	// the name table and entries agree whatever calls race.
	manageMu sync.Mutex

	acctMu      sync.Mutex
	acct        *acmeclient.Account
	acctStale   bool
	acctProblem string // why no order can be placed with the account, if so
	acctRefused error  // the account is unusable and read-only to this process: every order fails so

	mu        sync.Mutex
	entries   map[string]*entry
	heap      renewal.Heap[string]
	wake      chan struct{}
	ariSlot   time.Time // the last renewal information check slot handed out after loading
	changeSeq int64     // the last certificate change seen in storage (watch)

	health storageHealth // whether the storage answers (storagehealth.go)

	running atomic.Bool // a Run is under way
}

// New checks cfg, opens the storage and its key-encryption key, and
// returns a Manager. It does not contact the CA.
//
// A mistake in cfg is refused with an error starting "config: " that
// names the field (see Config). A key-encryption key file (KeyFile) that
// does not exist is created, unless the storage holds keys sealed under
// a key-encryption key: then New creates nothing and returns an error
// saying the file is missing, with the id of the key the storage needs
// (a new key would open none of them). A storage whose keys are sealed
// under another key-encryption key than KeyFile's is refused too.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.KeyFile == "" {
		return nil, errors.New("config: KeyFile is required with a custom Storage")
	}
	st := cfg.Storage
	if st == nil {
		fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir, LeaseTTL: cfg.LeaseTTL, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
		st = fs
	}
	_, kerr := os.Lstat(cfg.KeyFile)
	if errors.Is(kerr, fs.ErrNotExist) {
		// A new key-encryption key is made only for a storage without
		// sealed keys: made for one with them, it would open none.
		if err := certstore.RefuseNewKEK(ctx, st, cfg.KeyFile); err != nil {
			return nil, fmt.Errorf("open key-encryption key: %w", err)
		}
	}
	sealer, err := keys.LoadOrCreateSealer(cfg.KeyFile)
	if err != nil && errors.Is(kerr, fs.ErrNotExist) && errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("open key-encryption key: %s does not exist and this process (uid %d) may not create it: "+
			"the administrator creates it (`tlspilot init`): %w", cfg.KeyFile, os.Getuid(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("open key-encryption key: %w", err)
	}
	acfg := acmeclient.Config{Directory: cfg.CA, Roots: cfg.CARoots,
		Logger: cfg.Logger.With("component", "acme"), Transport: cfg.caTransport, UserAgent: cfg.UserAgent}
	if cfg.Metrics != nil {
		acfg.Observe = cfg.Metrics.ACMERequest
	}
	client, err := acmeclient.New(acfg)
	if err != nil {
		return nil, err
	}
	tk, err := newTempKey()
	if err != nil {
		return nil, err
	}
	store := certstore.New(st, sealer)
	if err := store.CheckKEK(ctx); errors.Is(err, certstore.ErrWrongKEK) {
		return nil, fmt.Errorf("key-encryption key %s: %w; every process on one storage needs the same key-encryption key (kek_file)", cfg.KeyFile, err)
	} else if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, fs.ErrPermission) {
			level = slog.LevelDebug // a read-only user of the storage (status)
		}
		cfg.Logger.Log(ctx, level, "key-encryption key not checked against the storage", "error", err)
	}
	m := &Manager{
		cfg:     cfg,
		log:     cfg.Logger,
		store:   store,
		client:  client,
		http01:  solvers.NewHTTP01(store, cfg.Logger),
		alpn:    solvers.NewTLSALPN01(store, cfg.Logger),
		names:   newNameTable(),
		tempKey: tk,
		limiter: newLimiter(cfg.OrderLimit, cfg.OrderWindow),
		workers: make(chan struct{}, cfg.Workers),
		backoff: renewal.Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax},
		entries: make(map[string]*entry),
		wake:    make(chan struct{}, 1),
	}
	if ch, ok := m.checkStorage(ctx); ok {
		m.changeSeq = ch.Seq
	}
	if cfg.DNSProvider != nil {
		if m.dns, err = solvers.NewDNS01(cfg.DNSProvider, cfg.DNSPropagation, cfg.Logger.With("component", "dns-01")); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return m, nil
}

// TLSConfig returns a TLS configuration whose GetCertificate serves the
// managed certificates from memory (never waiting on the CA) and answers
// tls-alpn-01 challenges. A name that is not managed gets no certificate.
// Versions, cipher suites and curves follow Mozilla's intermediate
// profile (TLS 1.2 with ECDHE and AEAD suites only, and TLS 1.3); set
// MinVersion to tls.VersionTLS13 for its modern profile (TLS 1.3 only).
func (m *Manager) TLSConfig() *tls.Config {
	c := &tls.Config{
		GetCertificate: m.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1", solvers.ALPNProto},
	}
	tlsprofile.Intermediate.Apply(c)
	return c
}

// ChallengeTLSConfig returns a TLS configuration for a listener that is
// there only to answer tls-alpn-01 challenges (RFC 8737), as the https
// port of `tlspilot renew` and `tlspilot certs` is when nothing else
// serves it: ALPN offers acme-tls/1 alone, and versions, cipher suites
// and curves follow the intermediate profile as TLSConfig's do, so a
// scanner finding the port open meets no weak suite.
func (m *Manager) ChallengeTLSConfig() *tls.Config {
	c := &tls.Config{GetCertificate: m.GetCertificate, NextProtos: []string{solvers.ALPNProto}}
	tlsprofile.Intermediate.Apply(c)
	return c
}

// errUnknownName is returned for a handshake naming no managed name.
var errUnknownName = errors.New("tlspilot: no certificate for this server name")

// GetCertificate returns the certificate for a ClientHello, for use as
// tls.Config.GetCertificate. It never waits on the CA, and serves every
// certificate from memory: a managed name whose first certificate has
// not arrived yet gets a temporary self-signed certificate (made again
// before it expires). As with autocert, the Leaf of a managed or
// temporary certificate is set (parsed once, when the certificate is put
// in service); the certificate is shared with every handshake and must
// not be modified. A name that is not managed gets an error.
//
// It also answers tls-alpn-01 challenges (RFC 8737), which the CA makes
// with "acme-tls/1" as its only ALPN protocol: a server whose tls.Config
// does not list "acme-tls/1" in NextProtos never sees them. TLSConfig
// and ChallengeTLSConfig list it; a tls.Config built by hand must add
// it. Such a handshake, for a managed name, reads the storage: it waits
// for the next listing of the stored answers (one at a time, at most one
// per 100ms however many handshakes arrive) and then loads the answer,
// so with a storage over the network (PostgreSQL) it waits on that
// network.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == solvers.ALPNProto {
		return m.alpnCert(hello)
	}
	name := hello.ServerName
	if name == "" {
		name = localIP(hello)
	}
	s := m.names.lookup(name)
	if s == nil {
		return nil, errUnknownName
	}
	return s.pick(hello).serving(m.tempKey)
}

func (m *Manager) alpnCert(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	id := solvers.ALPNIdentifier(hello.ServerName)
	if id == "" {
		id = localIP(hello)
	}
	if m.names.lookup(id) == nil {
		return nil, errUnknownName
	}
	ctx := hello.Context()
	return m.alpn.Certificate(ctx, id)
}

// localIP is the address a client without SNI connected to: IP
// certificates are asked for that way.
func localIP(hello *tls.ClientHelloInfo) string {
	if hello.Conn == nil {
		return ""
	}
	if a, ok := hello.Conn.LocalAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// HTTPHandler answers http-01 challenges under /.well-known/acme-challenge/
// and passes every other request to next (404 if next is nil). Every
// request under that path is answered here, never passed on: the key
// authorization of a token presented by this or another process sharing
// the storage, 404 for a token it does not know, 400 for a malformed one
// and 405 for a method other than GET and HEAD.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return m.http01.Handler(next)
}

// DNSWaiting reports how many dns-01 TXT records are not yet served by
// every authoritative server of their zone ("waiting for 3 of 8
// records"); zero without a DNS provider.
func (m *Manager) DNSWaiting() dns01.Waiting {
	if m.dns == nil {
		return dns01.Waiting{}
	}
	return m.dns.Waiting()
}

// emit sends ev, with its own copy of Names and Problem, to
// noticeDeploy and Config.OnEvent, so that a handler changing them
// changes nothing the Manager keeps.
func (m *Manager) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Names = slices.Clone(ev.Names)
	if ev.Problem != nil {
		p := *ev.Problem
		ev.Problem = &p
	}
	m.noticeDeploy(ev)
	if m.cfg.OnEvent != nil {
		m.cfg.OnEvent(ev)
	}
}

func jitter() float64 { return rand.Float64() }
