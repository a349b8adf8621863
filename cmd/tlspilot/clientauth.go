package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"

	"github.com/tlspilot/tlspilot/internal/clientauth"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/server"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// clientAuths are the revocation checkers of serve's sites with
// [site.client_auth]. A site whose client_auth (and CA file) did not
// change keeps its checker, and its caches, across reloads; the others
// get a new one, and the old are closed once the new table serves.
type clientAuths struct {
	log   *slog.Logger
	store func(*config.Config) (storage.Storage, error) // the checkers' cache storage; nil storage: memory only

	mu       sync.Mutex
	checkers map[string]*clientauth.Checker // by checkerKey
}

// newClientAuths keeps the checkers' caches in side, serve's storage
// opened for the caches (nil, or a storage that cannot be opened: memory
// only), so that answers survive a restart also when no site obtains a
// certificate from the CA (cert_file only, the usual set-up with a
// private client CA).
func newClientAuths(log *slog.Logger, side *lazyStorage) *clientAuths {
	c := &clientAuths{log: log, checkers: map[string]*clientauth.Checker{}}
	c.store = func(*config.Config) (storage.Storage, error) {
		if side == nil {
			return nil, nil
		}
		if _, err := side.get(); err != nil {
			return nil, nil // warned once by side: memory only
		}
		return side, nil
	}
	return c
}

// newSideStorage opens serve's storage a second time on first use, for
// the caches of the client-auth checkers and the OCSP stapler, warning
// once if it cannot be opened (the caches then stay in memory).
func newSideStorage(cfg *config.Config, log *slog.Logger) *lazyStorage {
	return &lazyStorage{open: func() (storage.Storage, error) {
		st, err := openCheckerStorage(cfg)
		if err != nil {
			log.Warn("storage unavailable: OCSP staples and client-certificate revocation answers kept in memory only", "error", err)
		}
		return st, err
	}}
}

// openCheckerStorage opens serve's storage a second time, for the
// checkers and the stapler: the directory (fsstore keeps each key in a file of its own,
// safe beside the Manager's handle), or the database.
func openCheckerStorage(cfg *config.Config) (storage.Storage, error) {
	if cfg.StorageIsDatabase() {
		return openDatabase(cfg, nil)
	}
	dir, err := storageDir(cfg)
	if err != nil {
		return nil, err
	}
	s, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		return nil, cfg.Errorf("storage", "%w", err)
	}
	return s, nil
}

// sites is serverSites with each site's client authentication, and the
// function to call once the server took them (ok) or refused them.
func (c *clientAuths) sites(cfg *config.Config, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) ([]server.Site, func(ok bool), error) {
	out := serverSites(cfg, getCert)
	next := map[string]*clientauth.Checker{}
	done := func(ok bool) { c.settle(next, ok) }
	for i, s := range cfg.Sites {
		if s.ClientAuth == nil {
			continue
		}
		ca, err := c.site(cfg, i, s, next)
		if err != nil {
			done(false)
			return nil, nil, err
		}
		out[i].ClientAuth = ca
	}
	return out, done, nil
}

// site builds the server's ClientAuth of cfg.Sites[i], with its checker
// (reused from the running config when unchanged) put in next.
func (c *clientAuths) site(cfg *config.Config, i int, s config.Site, next map[string]*clientauth.Checker) (*server.ClientAuth, error) {
	a := s.ClientAuth
	key := fmt.Sprintf("site[%d].client_auth", i+1)
	cas, err := clientauth.ReadCAFile(a.CAFile)
	if err != nil {
		return nil, cfg.Errorf(key+".ca", "%w", err)
	}
	ca := &server.ClientAuth{CAs: cas, Optional: a.Mode == config.ClientAuthOptional, VerifyDepth: a.VerifyDepth,
		HeaderPrefix: a.HeaderPrefix, RequirePaths: a.RequirePaths}
	if a.Revocation == config.RevocationOff {
		return ca, nil
	}
	id := checkerKey(s, cas)
	c.mu.Lock()
	chk := c.checkers[id]
	c.mu.Unlock()
	if chk == nil {
		st, err := c.store(cfg)
		if err != nil {
			return nil, err
		}
		chk, err = clientauth.New(policy(a, cas), clientauth.Options{Storage: st, Logger: c.log.With("component", "client_auth", "site", s.Names[0])})
		if err != nil {
			return nil, cfg.Errorf(key, "%w", err)
		}
	}
	next[id] = chk
	ca.Verifier = chk
	return ca, nil
}

// policy maps [site.client_auth] onto the checker's Policy.
func policy(a *config.ClientAuth, cas []*x509.Certificate) clientauth.Policy {
	return clientauth.Policy{
		CAs: cas, Mode: clientauth.Mode(a.Mode), VerifyDepth: a.VerifyDepth,
		Revocation: clientauth.Revocation(a.Revocation), CRLFiles: a.CRLFiles, CRLFetch: a.CRLFetch,
		OCSP: a.OCSP, OCSPResponder: a.OCSPResponder, Unknown: clientauth.Unknown(a.RevocationUnknown),
	}
}

// checkerKey identifies a site's checker: its first name and what the
// checker is made from (policy: the CA certificates read among it).
// What only the server does with a verified certificate (header_prefix,
// require_paths) is left out: a reload changing only that keeps the
// checker, so the server keeps the connections its handshakes checked.
func checkerKey(s config.Site, cas []*x509.Certificate) string {
	p := policy(s.ClientAuth, nil)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%+v\n", s.Names[0], p)
	for _, c := range cas {
		h.Write(c.Raw)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// settle makes next the running checkers when ok, closing those it does
// not keep; otherwise it closes the checkers of next made for it.
func (c *clientAuths) settle(next map[string]*clientauth.Checker, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	drop, keep := next, c.checkers
	if ok {
		drop, keep = c.checkers, next
		c.checkers = next
	}
	for id, chk := range drop {
		if keep[id] != chk {
			go chk.Close() // waits for its background refreshes
		}
	}
}

// close closes every checker when serve stops, waiting for their
// background work.
func (c *clientAuths) close() {
	c.mu.Lock()
	all := c.checkers
	c.checkers = map[string]*clientauth.Checker{}
	c.mu.Unlock()
	for _, chk := range all {
		chk.Close()
	}
}

// A Checker is the server's ClientVerifier: its refusals name their
// reason (clientauth.Refusal.RefusalReason).
var _ server.ClientVerifier = (*clientauth.Checker)(nil)
