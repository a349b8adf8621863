package main

import (
	"context"
	"crypto/x509"
	"log/slog"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"github.com/tlspilot/tlspilot/internal/stapler"
	"github.com/tlspilot/tlspilot/storage"
)

// newStapler returns serve's OCSP stapler, or nil when no site staples
// (every site has ocsp_stapling = false). Staples are kept in side,
// serve's storage opened a second time, shared with the client-auth
// caches (and opened only once a certificate names a responder), so a
// restart staples at once without asking the responders; a storage that
// cannot be opened leaves them in memory, with a warning. A certificate
// the responder reports revoked is renewed at once when the Manager
// serves it (Manager.NoteRevoked); a cert_file certificate can only be
// reported, as an error.
func newStapler(ctx context.Context, cfg *config.Config, acme *acmeSide, side *lazyStorage, log *slog.Logger) (*stapler.Stapler, error) {
	if !anyStapling(cfg) {
		return nil, nil
	}
	copts := ocspclient.CacheOptions{Logger: log, Storage: side}
	return stapler.New(ctx, stapler.Options{Cache: ocspclient.NewCache(copts), Logger: log, OnRevoked: revokedHook(acme, log)})
}

// revokedHook is the stapler's OnRevoked: the Manager renews a revoked
// certificate it serves; any other is reported as an error. One that a
// reload kept serving for its old names (acmeSide.keepServing) is served
// no more: the temporary certificate is better than a revoked one.
func revokedHook(acme *acmeSide, log *slog.Logger) func(context.Context, *x509.Certificate, time.Time) {
	return func(ctx context.Context, leaf *x509.Certificate, at time.Time) {
		serial := leaf.SerialNumber.Text(16)
		acme.forget(leaf)
		if m := acme.manager(); m != nil {
			managed, err := m.NoteRevoked(ctx, leaf, at)
			if err != nil {
				log.Warn("ocsp stapling: recording the revocation", "serial", serial, "error", err)
			}
			if managed {
				return
			}
		}
		log.Error("ocsp stapling: a revoked certificate serve does not renew (cert_file, or already replaced): replace it", "serial", serial,
			"names", leaf.DNSNames, "revoked_at", at)
	}
}

// anyStapling reports whether some site keeps ocsp_stapling on.
func anyStapling(cfg *config.Config) bool {
	for _, s := range cfg.Sites {
		if !s.NoOCSPStapling {
			return true
		}
	}
	return false
}

// lazyStorage opens a storage on first use; every call fails with the
// error of that one attempt if it failed.
type lazyStorage struct {
	open func() (storage.Storage, error)
	once sync.Once
	st   storage.Storage
	err  error
}

func (l *lazyStorage) get() (storage.Storage, error) {
	l.once.Do(func() { l.st, l.err = l.open() })
	return l.st, l.err
}

// Load implements storage.Storage.
func (l *lazyStorage) Load(ctx context.Context, key string) ([]byte, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Load(ctx, key)
}

// Store implements storage.Storage.
func (l *lazyStorage) Store(ctx context.Context, key string, value []byte) error {
	st, err := l.get()
	if err != nil {
		return err
	}
	return st.Store(ctx, key, value)
}

// Delete implements storage.Storage.
func (l *lazyStorage) Delete(ctx context.Context, key string) error {
	st, err := l.get()
	if err != nil {
		return err
	}
	return st.Delete(ctx, key)
}

// List implements storage.Storage.
func (l *lazyStorage) List(ctx context.Context, prefix string) ([]string, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.List(ctx, prefix)
}

// Lock implements storage.Locker.
func (l *lazyStorage) Lock(ctx context.Context, name string) (storage.Lease, error) {
	st, err := l.get()
	if err != nil {
		return nil, err
	}
	return st.Lock(ctx, name)
}

var _ storage.Storage = (*lazyStorage)(nil)
