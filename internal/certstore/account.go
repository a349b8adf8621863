package certstore

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

// Account is the stored record of an ACME account.
type Account struct {
	CA      string    `json:"ca"`
	URL     string    `json:"url"`
	Contact []string  `json:"contact,omitempty"`
	Created time.Time `json:"created"`
	// Status is the account's state as the CA last reported it
	// ("valid", "deactivated", "revoked"); empty means valid.
	Status string `json:"status,omitempty"`
	// Replaces lists the URLs of earlier accounts of this contact that
	// the CA deactivated or revoked, oldest first; their keys are kept
	// under accounts/<id>/retired/.
	Replaces []string `json:"replaces,omitempty"`
}

// AccountID names the account of one contact at one CA.
func AccountID(directory string, contact []string) string {
	h := sha256.Sum256([]byte(strings.Join(contact, ",")))
	return CAID(directory) + "/" + hex.EncodeToString(h[:6])
}

func accountKeyKey(id string) string { return "accounts/" + id + "/key" }
func accountRecKey(id string) string { return "accounts/" + id + "/account.json" }
func retiredKeyKey(id string, at time.Time) string {
	return "accounts/" + id + "/retired/" + strconv.FormatInt(at.UnixNano(), 10) + ".key"
}

// AccountLock is the lock name serialising account creation.
func AccountLock(id string) string { return "account/" + id }

// LoadAccountKey returns the account's private key; a missing key gives an
// error satisfying IsNotExist.
func (st *Store) LoadAccountKey(ctx context.Context, id string) (crypto.Signer, error) {
	b, err := st.s.Load(ctx, accountKeyKey(id))
	if err != nil {
		return nil, err
	}
	return st.open(string(b), accountKeyKey(id))
}

// CreateAccountKey stores a new account key. It refuses to replace an
// existing one: an account key is never rewritten once it exists. Callers
// hold AccountLock.
func (st *Store) CreateAccountKey(ctx context.Context, id string, k crypto.Signer) error {
	if _, err := st.s.Load(ctx, accountKeyKey(id)); err == nil {
		return fmt.Errorf("account key %s already exists; refusing to replace it", id)
	} else if !IsNotExist(err) {
		return err
	}
	sealed, err := st.seal(k, accountKeyKey(id))
	if err != nil {
		return fmt.Errorf("seal account key: %w", err)
	}
	return st.s.Store(ctx, accountKeyKey(id), []byte(sealed))
}

// LoadAccount returns the account record.
func (st *Store) LoadAccount(ctx context.Context, id string) (Account, error) {
	var a Account
	err := st.loadJSON(ctx, accountRecKey(id), &a)
	return a, err
}

// StoreAccount saves the account record.
func (st *Store) StoreAccount(ctx context.Context, id string, a Account) error {
	return st.storeJSON(ctx, accountRecKey(id), a)
}

// RetireAccountKey sets the account key aside, so that the next account
// for id starts with a new key: the CA deactivated or revoked the account
// of the current one. The key is sealed again under its new record name
// and stored before the current one is removed, so it is never lost; an
// account key is still never overwritten. It returns the retired key's
// record name. Callers hold AccountLock.
func (st *Store) RetireAccountKey(ctx context.Context, id string, at time.Time) (string, error) {
	k, err := st.LoadAccountKey(ctx, id)
	if err != nil {
		return "", fmt.Errorf("load account key %s: %w", id, err)
	}
	name := retiredKeyKey(id, at)
	if _, err := st.s.Load(ctx, name); err == nil {
		return "", fmt.Errorf("retired account key %s already exists", name)
	}
	sealed, err := st.seal(k, name)
	if err != nil {
		return "", fmt.Errorf("seal account key: %w", err)
	}
	if err := st.s.Store(ctx, name, []byte(sealed)); err != nil {
		return "", fmt.Errorf("store retired account key: %w", err)
	}
	if err := st.s.Delete(ctx, accountKeyKey(id)); err != nil {
		return "", fmt.Errorf("remove account key %s: %w", id, err)
	}
	return name, nil
}

// CheckAccountWritable reports whether this process may replace the
// account key and record of id, without writing anything: an
// administrator may have made them read-only to it (`tlspilot init
// --user`), and the account is then the administrator's to replace. It
// returns nil when the storage cannot tell (it is no
// storage.WriteChecker), and otherwise the storage's error, which names
// the path and the permission and wraps fs.ErrPermission.
func (st *Store) CheckAccountWritable(ctx context.Context, id string) error {
	wc, ok := st.s.(storage.WriteChecker)
	if !ok {
		return nil
	}
	for _, k := range []string{accountKeyKey(id), accountRecKey(id)} {
		if err := wc.CheckWrite(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
