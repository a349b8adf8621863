package tlspilot

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
)

// AccountStatus is the state of the Manager's ACME account.
type AccountStatus struct {
	CA  string `json:"ca"`            // directory URL
	URL string `json:"url,omitempty"` // account URL, empty until registered
	// State is "unregistered" before the first order, then the CA's word
	// for the account: "valid", "deactivated" or "revoked".
	State string `json:"state"`
	// Replaces lists earlier accounts of this contact that the CA
	// deactivated or revoked and that this one replaced, oldest first.
	Replaces []string `json:"replaces,omitempty"`
	// Problem says what is wrong with the account and what to do, when
	// no order can be placed with it; empty otherwise.
	Problem string `json:"problem,omitempty"`
}

// Account states reported in AccountStatus.State.
const (
	AccountUnregistered = "unregistered"
	AccountValid        = acmeclient.AccountValid
	AccountDeactivated  = acmeclient.AccountDeactivated
	AccountRevoked      = acmeclient.AccountRevoked
)

// AccountStatus reports the state of the ACME account as this Manager
// last saw it: from storage, updated whenever the CA answers about it.
func (m *Manager) AccountStatus(ctx context.Context) AccountStatus {
	out := storedAccount(ctx, m.store, m.cfg)
	m.acctMu.Lock()
	out.Problem = m.acctProblem
	m.acctMu.Unlock()
	return out
}

// accountID returns the storage id of cfg's account and its contact URIs.
func accountID(cfg Config) (string, []string) {
	var contact []string
	if cfg.Email != "" {
		contact = []string{"mailto:" + cfg.Email}
	}
	return certstore.AccountID(cfg.CA, contact), contact
}

// accountID returns the storage id of the account and its contact URIs.
func (m *Manager) accountID() (string, []string) { return accountID(m.cfg) }

// account returns the ACME account for the configured CA and contact,
// creating it once. The account key is made and stored before the account
// is registered, and never replaced afterwards (see replaceAccount for
// an account the CA deactivated).
func (m *Manager) account(ctx context.Context) (acmeclient.Account, error) {
	m.acctMu.Lock()
	defer m.acctMu.Unlock()
	if m.acct != nil {
		return *m.acct, nil
	}
	if m.acctRefused != nil {
		return acmeclient.Account{}, m.acctRefused
	}
	id, contact := m.accountID()
	lease, err := m.store.Storage().Lock(ctx, certstore.AccountLock(id))
	if err != nil {
		return acmeclient.Account{}, fmt.Errorf("lock account: %w", err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	ctx = storage.WithLease(ctx, lease)
	key, err := m.store.LoadAccountKey(ctx, id)
	if certstore.IsNotExist(err) {
		if werr := m.store.CheckAccountWritable(ctx, id); werr != nil {
			return acmeclient.Account{}, fmt.Errorf("no ACME account for %s in the storage, and this process may not create one "+
				"(run `tlspilot init` as the administrator): %w", m.cfg.CA, werr)
		}
		if key, err = keys.Generate(keys.ECDSAP256); err != nil {
			return acmeclient.Account{}, err
		}
		err = m.store.CreateAccountKey(ctx, id, key)
	}
	if err != nil {
		return acmeclient.Account{}, fmt.Errorf("account key: %w", err)
	}
	rec, err := m.store.LoadAccount(ctx, id)
	if err == nil && rec.URL != "" && rec.CA == m.cfg.CA && !m.acctStale && usable(rec.Status) {
		m.acct = &acmeclient.Account{URL: rec.URL, Key: key, Contact: rec.Contact}
		return *m.acct, nil
	}
	if err == nil && !usable(rec.Status) {
		// The CA deactivated or revoked the account of this key.
		if m.cfg.KeepDeactivatedAccount {
			return acmeclient.Account{}, m.accountUnusableError(rec.URL, rec.Status)
		}
		if werr := m.store.CheckAccountWritable(ctx, id); werr != nil {
			return acmeclient.Account{}, m.refuseAccount(rec.URL, rec.Status, werr)
		}
		if rec, err = m.retireLocked(ctx, id, rec); err != nil {
			return acmeclient.Account{}, err
		}
		if key, err = keys.Generate(keys.ECDSAP256); err != nil {
			return acmeclient.Account{}, err
		}
		if err := m.store.CreateAccountKey(ctx, id, key); err != nil {
			return acmeclient.Account{}, fmt.Errorf("account key: %w", err)
		}
	}
	return m.registerLocked(ctx, id, key, contact, rec.Replaces)
}

// registerLocked registers key with the CA (or looks its account up
// again) and records the account, unless the record is read-only to this
// process. Callers hold acctMu and the account lock.
func (m *Manager) registerLocked(ctx context.Context, id string, key crypto.Signer, contact, replaces []string) (acmeclient.Account, error) {
	opts := acmeclient.RegisterOptions{Contact: contact, AgreeTerms: m.cfg.AgreeTerms}
	if m.cfg.EAB != nil {
		opts.EAB = &acmeclient.EAB{KeyID: m.cfg.EAB.KeyID, HMACKey: m.cfg.EAB.HMACKey}
	}
	a, err := m.client.Register(ctx, key, opts)
	if err != nil {
		return acmeclient.Account{}, err
	}
	rec := certstore.Account{CA: m.cfg.CA, URL: a.URL, Contact: a.Contact, Created: time.Now().UTC(), Replaces: replaces}
	if werr := m.store.CheckAccountWritable(ctx, id); werr != nil {
		// The administrator's account, looked up again with its own key
		// (the CA forgot it, or init was interrupted): use it, but leave
		// the record as it is.
		m.log.Warn("ACME account record is read-only to this process: the account is used but not recorded (run `tlspilot init` as the administrator to record it)",
			"ca", m.cfg.CA, "account", a.URL, "error", werr)
	} else if err := m.store.StoreAccount(ctx, id, rec); err != nil {
		return acmeclient.Account{}, fmt.Errorf("store account: %w", err)
	}
	m.log.Info("ACME account ready", "ca", m.cfg.CA, "account", a.URL)
	m.acct, m.acctStale, m.acctProblem = &a, false, ""
	return a, nil
}

// usable reports whether a stored account status allows orders.
func usable(status string) bool { return status == "" || status == AccountValid }

// accountFailed looks into an order refused for an account-level reason
// (class BadAccount) and makes the next attempt able to succeed: it asks
// the CA for the account's state; an account the CA no longer knows is
// registered again with the same key; a deactivated or revoked one is
// replaced by a new account with a new key (the old key kept aside),
// unless Config.KeepDeactivatedAccount forbids it. It reports whether the
// order may be retried at once, and an error that says what to do when it
// may not.
func (m *Manager) accountFailed(ctx context.Context, acct acmeclient.Account, cause error) (bool, error) {
	status, err := m.client.AccountStatus(ctx, acct)
	var ae *acmeclient.Error
	switch {
	case err == nil && usable(status):
		// The account is fine (new terms to agree, an EAB problem): look it
		// up again next time, and let the cause speak for itself.
		m.forgetAccount()
		return false, cause
	case err == nil:
	case errors.As(err, &ae) && ae.ProblemShort() == "accountDoesNotExist":
		// The CA forgot the account: registering the same key again
		// creates it anew.
		m.forgetAccount()
		return true, cause
	case errors.As(err, &ae) && ae.Class == acmeclient.BadAccount:
		status = AccountDeactivated // the CA refuses the account itself
	default:
		return false, cause // could not ask: retry later with backoff
	}
	return m.retireUnusable(ctx, acct.URL, status, cause)
}

// retireUnusable records that the account at url is unusable (status)
// and replaces it, unless Config.KeepDeactivatedAccount forbids it or
// this process may not write the account (then nothing is written). It
// reports whether an order may be retried at once, and otherwise an
// error that says what to do, with cause.
func (m *Manager) retireUnusable(ctx context.Context, url, status string, cause error) (bool, error) {
	id, _ := m.accountID()
	if err := m.store.CheckAccountWritable(ctx, id); err != nil {
		m.acctMu.Lock()
		defer m.acctMu.Unlock()
		return false, fmt.Errorf("%w (%v)", m.refuseAccount(url, status, err), cause)
	}
	if err := m.markAccount(ctx, url, status); err != nil {
		return false, err
	}
	if m.cfg.KeepDeactivatedAccount {
		return false, fmt.Errorf("%w (%v)", m.accountUnusableError(url, status), cause)
	}
	if err := m.replaceAccount(ctx, url); err != nil {
		return false, err
	}
	return true, nil
}

// refuseAccount makes every later order fail at once with the error it
// returns: the account at url is unusable (status) and this process may
// not replace it (werr), so only the administrator can. Callers hold
// acctMu.
func (m *Manager) refuseAccount(url, status string, werr error) error {
	err := &acmeclient.Error{Op: "account", Class: acmeclient.BadAccount, Err: fmt.Errorf(
		"the ACME account %s at %s is %s: no certificate can be ordered with it, and this process may not replace it, "+
			"since the administrator made it read-only (%w): as the administrator, run `tlspilot init` to register a new account "+
			"(the old key is kept aside), then restart tlspilot", url, m.cfg.CA, statusWord(status), werr)}
	m.acct, m.acctRefused, m.acctProblem = nil, err, err.Error()
	m.log.Error("ACME account is "+statusWord(status)+" and read-only to this process; not replaced",
		"ca", m.cfg.CA, "account", url, "error", werr)
	return err
}

// markAccount records the account's state as the CA reported it.
func (m *Manager) markAccount(ctx context.Context, url, status string) error {
	id, _ := m.accountID()
	m.acctMu.Lock()
	defer m.acctMu.Unlock()
	rec, err := m.store.LoadAccount(ctx, id)
	if err != nil {
		return fmt.Errorf("load account record: %w", err)
	}
	if rec.URL != url {
		return nil // already replaced by another process
	}
	rec.Status = status
	if err := m.store.StoreAccount(ctx, id, rec); err != nil {
		return fmt.Errorf("store account record: %w", err)
	}
	m.acct = nil
	if !usable(status) {
		m.acctProblem = m.accountUnusableError(url, status).Error()
	}
	return nil
}

// replaceAccount sets the key of the unusable account at url aside, so
// that the next order registers a new account with a new key.
func (m *Manager) replaceAccount(ctx context.Context, url string) error {
	id, _ := m.accountID()
	m.acctMu.Lock()
	defer m.acctMu.Unlock()
	m.acct = nil
	lease, err := m.store.Storage().Lock(ctx, certstore.AccountLock(id))
	if err != nil {
		return fmt.Errorf("lock account: %w", err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	ctx = storage.WithLease(ctx, lease)
	rec, err := m.store.LoadAccount(ctx, id)
	if err != nil {
		return fmt.Errorf("load account record: %w", err)
	}
	if rec.URL != url || usable(rec.Status) {
		return nil // another process replaced it already
	}
	_, err = m.retireLocked(ctx, id, rec)
	return err
}

// retireLocked sets aside the key of the unusable account rec and returns
// the record of its successor, not registered yet. Callers hold acctMu
// and the account lock.
func (m *Manager) retireLocked(ctx context.Context, id string, rec certstore.Account) (certstore.Account, error) {
	retired, err := m.store.RetireAccountKey(ctx, id, time.Now())
	if err != nil {
		return rec, fmt.Errorf("set aside the key of account %s: %w", rec.URL, err)
	}
	next := certstore.Account{CA: rec.CA, Contact: rec.Contact, Replaces: append(rec.Replaces, rec.URL)}
	if err := m.store.StoreAccount(ctx, id, next); err != nil {
		return rec, fmt.Errorf("store account record: %w", err)
	}
	m.acctProblem = ""
	m.log.Warn("ACME account is "+statusWord(rec.Status)+"; a new account with a new key will be registered",
		"ca", m.cfg.CA, "account", rec.URL, "old_key", retired)
	return next, nil
}

func statusWord(s string) string {
	if s == "" {
		return "no longer usable"
	}
	return s
}

// accountUnusableError says that the account cannot order and what to
// do; its class is BadAccount.
func (m *Manager) accountUnusableError(url, status string) error {
	return &acmeclient.Error{Op: "account", Class: acmeclient.BadAccount, Err: fmt.Errorf(
		"the ACME account %s at %s is %s: no certificate can be ordered with it; "+
			"allow tlspilot to register a new account (keep_deactivated_account = false, Config.KeepDeactivatedAccount in the library), "+
			"or remove the account's directory from the storage so that a new one is made", url, m.cfg.CA, statusWord(status))}
}

// forgetAccount makes the next order look the account up again, after the
// CA said it does not know it.
func (m *Manager) forgetAccount() {
	m.acctMu.Lock()
	m.acct, m.acctStale = nil, true
	m.acctMu.Unlock()
}

// RegisterAccount makes sure the ACME account of the configured CA and
// contact exists and is usable, before any order: `tlspilot init` runs
// it as the administrator. When the storage holds no account it creates
// the key and registers it (agreeing to the terms if Config.AgreeTerms,
// with Config.EAB if set). Otherwise it asks the CA about the stored
// account: one the CA no longer knows is registered again with the same
// key, and one it deactivated or revoked is replaced by a new account
// with a new key, the old key kept aside (unless
// Config.KeepDeactivatedAccount). A usable account is never replaced. It
// returns the account's status afterwards.
func (m *Manager) RegisterAccount(ctx context.Context) (AccountStatus, error) {
	err := m.registerAccount(ctx)
	return m.AccountStatus(ctx), err
}

func (m *Manager) registerAccount(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		acct, err := m.account(ctx)
		if err != nil {
			return err
		}
		status, err := m.client.AccountStatus(ctx, acct)
		var ae *acmeclient.Error
		switch {
		case err == nil && usable(status):
			return nil
		case attempt > 0:
			return fmt.Errorf("account %s: not usable just after registration (status %q, %v)", acct.URL, status, err)
		case err == nil:
		case errors.As(err, &ae) && ae.ProblemShort() == "accountDoesNotExist":
			m.forgetAccount()
			continue
		case errors.As(err, &ae) && ae.Class == acmeclient.BadAccount:
			status = AccountDeactivated // the CA refuses the account itself
		default:
			return fmt.Errorf("ask the CA about account %s: %w", acct.URL, err)
		}
		if retry, err := m.retireUnusable(ctx, acct.URL, status, fmt.Errorf("the CA reports it %s", statusWord(status))); !retry {
			return err
		}
	}
}
