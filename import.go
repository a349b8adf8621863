package tlspilot

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
)

// Imported is a certificate another ACME client obtained (certbot), for
// the Manager to keep from now on without a new order.
type Imported struct {
	// Names the certificate covers, as they will be managed.
	Names []string
	// ChainPEM is the leaf and its chain; Key is the leaf's private key.
	ChainPEM []byte
	Key      crypto.Signer
	// CA is the directory URL of the CA that issued it.
	CA string
	// SameAccount says that the Manager's account ordered it (see
	// ImportAccount), so that its renewal may name it in "replaces"
	// (RFC 9773): a CA such as Let's Encrypt refuses to let an account
	// replace another account's certificate. Without it the renewal is
	// a plain new order, timed by the certificate's lifetime. A
	// certificate whose CA is not Config.CA is replaced at once, as after
	// Config.CA changes.
	SameAccount bool
}

// ImportResult says what Import or ImportAccount did.
type ImportResult string

// Import results.
const (
	// ImportStored: the certificate or account is now in storage.
	ImportStored ImportResult = "stored"
	// ImportUnchanged: storage already held it (an earlier import).
	ImportUnchanged ImportResult = "already stored"
	// ImportKept: storage holds a newer certificate, or another account
	// key, which is kept (an account key is never replaced).
	ImportKept ImportResult = "kept what storage holds"
)

// Import stores c as the certificate of its names and key type, as if
// the Manager had obtained it: a Manager managing those names serves,
// deploys and renews it from then on (processes sharing the storage see
// it within their next change check). It places no order. A stored
// certificate that is the same or newer is kept. The key must be the
// leaf's, the leaf must cover every name (it may name others, and may
// have expired: it is then renewed at once), and the chain must be PEM
// certificates only, each signed by the next.
func (m *Manager) Import(ctx context.Context, c Imported) (ImportResult, error) {
	names, err := normalizeAll(c.Names)
	if err != nil {
		return "", err
	}
	kt, err := keys.TypeOf(c.Key)
	if err != nil {
		return "", fmt.Errorf("import %v: %w", names, err)
	}
	rec, err := issuance.CheckImported(c.ChainPEM, c.Key, names)
	if err != nil {
		return "", fmt.Errorf("import %v: %w", names, err)
	}
	rec.Names, rec.KeyType, rec.CA, rec.Obtained = names, kt, c.CA, rec.NotBefore
	if !c.SameAccount || c.CA != m.cfg.CA {
		rec.ARIID = ""
	}
	id := certstore.CertID(names, kt)
	lease, err := m.store.Storage().Lock(ctx, certstore.IssueLock(id))
	if err != nil {
		return "", fmt.Errorf("import %v: lock: %w", names, err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	ctx = storage.WithLease(ctx, lease)
	old, err := m.store.LoadCertInfo(ctx, id)
	switch {
	case err == nil && serialOfPEM(old.ChainPEM) == serialOfPEM(rec.ChainPEM):
		return ImportUnchanged, nil
	case err == nil && old.NotBefore.After(rec.NotBefore):
		return ImportKept, nil
	case err != nil && !certstore.IsNotExist(err):
		return "", fmt.Errorf("import %v: %w", names, err)
	}
	if err := m.store.StoreCert(ctx, id, rec); err != nil {
		return "", fmt.Errorf("import %v: %w", names, err)
	}
	if err := m.store.NoteChange(ctx, id); err != nil {
		m.log.Warn("note imported certificate", "cert", id, "error", err)
	}
	m.log.Info("certificate imported", "cert", id, "names", names, "not_after", rec.NotAfter)
	return ImportStored, nil
}

// normalizeAll normalises names, refusing an empty list.
func normalizeAll(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, errors.New("import: no names")
	}
	out := make([]string, len(names))
	for i, n := range names {
		var err error
		if out[i], err = NormalizeName(n); err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
	}
	return out, nil
}

// ImportAccount makes the account another ACME client registered at the
// Manager's CA, with key at url, the Manager's account for its contact,
// when storage holds none yet. An existing account key is never
// replaced: ImportKept then says the Manager goes on with its own.
func (m *Manager) ImportAccount(ctx context.Context, key crypto.Signer, url string) (ImportResult, error) {
	if url == "" {
		return "", errors.New("import account: no account URL")
	}
	id, contact := m.accountID()
	m.acctMu.Lock()
	defer m.acctMu.Unlock()
	lease, err := m.store.Storage().Lock(ctx, certstore.AccountLock(id))
	if err != nil {
		return "", fmt.Errorf("import account: lock: %w", err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	ctx = storage.WithLease(ctx, lease)
	have, err := m.store.LoadAccountKey(ctx, id)
	switch {
	case err == nil && samePublicKey(have.Public(), key.Public()):
		return ImportUnchanged, nil
	case err == nil:
		return ImportKept, nil
	case !certstore.IsNotExist(err):
		return "", fmt.Errorf("import account: %w", err)
	}
	if err := m.store.CreateAccountKey(ctx, id, key); err != nil {
		return "", fmt.Errorf("import account: %w", err)
	}
	rec := certstore.Account{CA: m.cfg.CA, URL: url, Contact: contact, Created: time.Now().UTC()}
	if err := m.store.StoreAccount(ctx, id, rec); err != nil {
		return "", fmt.Errorf("import account: %w", err)
	}
	m.acct = nil
	m.log.Info("ACME account imported", "ca", m.cfg.CA, "account", url)
	return ImportStored, nil
}

// samePublicKey reports whether two public keys are equal.
func samePublicKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
