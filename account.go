package tlspilot

import (
	"context"
	"fmt"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
)

// account returns the ACME account for the configured CA and contact,
// creating it once. The account key is made and stored before the account
// is registered, and never replaced afterwards.
func (m *Manager) account(ctx context.Context) (acmeclient.Account, error) {
	m.acctMu.Lock()
	defer m.acctMu.Unlock()
	if m.acct != nil {
		return *m.acct, nil
	}
	var contact []string
	if m.cfg.Email != "" {
		contact = []string{"mailto:" + m.cfg.Email}
	}
	id := certstore.AccountID(m.cfg.CA, contact)
	lease, err := m.store.Storage().Lock(ctx, certstore.AccountLock(id))
	if err != nil {
		return acmeclient.Account{}, fmt.Errorf("lock account: %w", err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	key, err := m.store.LoadAccountKey(ctx, id)
	if certstore.IsNotExist(err) {
		if key, err = keys.Generate(keys.ECDSAP256); err != nil {
			return acmeclient.Account{}, err
		}
		err = m.store.CreateAccountKey(ctx, id, key)
	}
	if err != nil {
		return acmeclient.Account{}, fmt.Errorf("account key: %w", err)
	}
	rec, err := m.store.LoadAccount(ctx, id)
	if err == nil && rec.URL != "" && rec.CA == m.cfg.CA && !m.acctStale {
		m.acct = &acmeclient.Account{URL: rec.URL, Key: key, Contact: rec.Contact}
		return *m.acct, nil
	}
	opts := acmeclient.RegisterOptions{Contact: contact, AgreeTerms: m.cfg.AgreeTerms}
	if m.cfg.EAB != nil {
		opts.EAB = &acmeclient.EAB{KeyID: m.cfg.EAB.KeyID, HMACKey: m.cfg.EAB.HMACKey}
	}
	a, err := m.client.Register(ctx, key, opts)
	if err != nil {
		return acmeclient.Account{}, err
	}
	rec = certstore.Account{CA: m.cfg.CA, URL: a.URL, Contact: a.Contact, Created: time.Now().UTC()}
	if err := m.store.StoreAccount(ctx, id, rec); err != nil {
		return acmeclient.Account{}, fmt.Errorf("store account: %w", err)
	}
	m.log.Info("ACME account ready", "ca", m.cfg.CA, "account", a.URL)
	m.acct, m.acctStale = &a, false
	return a, nil
}

// forgetAccount makes the next order look the account up again, after the
// CA said it does not know it.
func (m *Manager) forgetAccount() {
	m.acctMu.Lock()
	m.acct, m.acctStale = nil, true
	m.acctMu.Unlock()
}
