package certstore

import (
	"context"
	"crypto"
	"time"
)

// Progress records how far an order has come, so that a process stopped
// at any moment resumes the same order instead of placing a new one. Each
// field is saved before the step that depends on it starts.
type Progress struct {
	Names      []string      `json:"names"`
	OrderURL   string        `json:"order_url"`
	Authzs     []string      `json:"authorizations,omitempty"`
	Finalize   string        `json:"finalize,omitempty"`
	Challenges []Challenge   `json:"challenges,omitempty"` // presented, to clean up
	SealedKey  string        `json:"sealed_key,omitempty"` // the key the CSR was (or will be) made with
	CSR        []byte        `json:"csr,omitempty"`        // a CSR given with the request (DER), once sent; none for our own key
	Finalized  bool          `json:"finalized,omitempty"`  // the CSR was sent
	CertURL    string        `json:"cert_url,omitempty"`
	Created    time.Time     `json:"created"`
	Key        crypto.Signer `json:"-"`
}

// Challenge is a presented challenge, kept so it can be cleaned up.
type Challenge struct {
	Type       string `json:"type"`
	Identifier string `json:"identifier"`
	Token      string `json:"token"`
	KeyAuth    string `json:"key_auth"` // public: it is what the CA is shown
}

// LoadProgress returns the order in progress for id. A missing record
// gives an error satisfying IsNotExist.
func (st *Store) LoadProgress(ctx context.Context, id string) (Progress, error) {
	var p Progress
	if err := st.loadJSON(ctx, orderKey(id), &p); err != nil {
		return Progress{}, err
	}
	if p.SealedKey != "" {
		k, err := st.open(p.SealedKey, orderKey(id))
		if err != nil {
			return Progress{}, err
		}
		p.Key = k
	}
	return p, nil
}

// ProgressCreated returns when the order in progress for id was placed,
// without opening its key (a status report has no key-encryption key).
// A missing record gives an error satisfying IsNotExist.
func (st *Store) ProgressCreated(ctx context.Context, id string) (time.Time, error) {
	var p struct {
		Created time.Time `json:"created"`
	}
	err := st.loadJSON(ctx, orderKey(id), &p)
	return p.Created, err
}

// StoreProgress saves the order progress, sealing p.Key if set.
func (st *Store) StoreProgress(ctx context.Context, id string, p Progress) error {
	if p.Key != nil {
		sealed, err := st.seal(p.Key, orderKey(id))
		if err != nil {
			return err
		}
		p.SealedKey = sealed
	}
	return st.storeJSON(ctx, orderKey(id), p)
}

// DeleteProgress removes the progress record once the order is done.
func (st *Store) DeleteProgress(ctx context.Context, id string) error {
	return st.s.Delete(ctx, orderKey(id))
}
