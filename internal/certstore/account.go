package certstore

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Account is the stored record of an ACME account.
type Account struct {
	CA      string    `json:"ca"`
	URL     string    `json:"url"`
	Contact []string  `json:"contact,omitempty"`
	Created time.Time `json:"created"`
}

// AccountID names the account of one contact at one CA.
func AccountID(directory string, contact []string) string {
	h := sha256.Sum256([]byte(strings.Join(contact, ",")))
	return CAID(directory) + "/" + hex.EncodeToString(h[:6])
}

func accountKeyKey(id string) string { return "accounts/" + id + "/key" }
func accountRecKey(id string) string { return "accounts/" + id + "/account.json" }

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
