package certstore

import (
	"context"
	"crypto"
	"fmt"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/keys"
)

// Cert is an issued certificate with its private key. It is written once
// per issuance and never updated in place.
type Cert struct {
	Names     []string      `json:"names"`
	KeyType   keys.Type     `json:"key_type"`
	ChainPEM  string        `json:"chain_pem"`
	SealedKey string        `json:"sealed_key"`
	NotBefore time.Time     `json:"not_before"`
	NotAfter  time.Time     `json:"not_after"`
	Issuer    string        `json:"issuer"`
	CA        string        `json:"ca"`
	URL       string        `json:"url,omitempty"`
	ARIID     string        `json:"ari_id,omitempty"`
	Obtained  time.Time     `json:"obtained"`
	Key       crypto.Signer `json:"-"`
	// RenewalInfo is the CA's renewal window as it was when the
	// certificate was downloaded; it is not stored with the certificate
	// (the Manager keeps it in State), so it is nil when loaded.
	RenewalInfo *acmeclient.RenewalInfo `json:"-"`
}

// State is what tlspilot knows about a certificate's renewal: the CA's
// renewal window, and how the latest attempts went. It changes often and
// is kept apart from the certificate.
type State struct {
	ARIStart      time.Time `json:"ari_start,omitzero"`
	ARIEnd        time.Time `json:"ari_end,omitzero"`
	ARICheckAfter time.Time `json:"ari_check_after,omitzero"`
	ARIFor        string    `json:"ari_for,omitempty"` // ARIID the window belongs to
	Attempts      int       `json:"attempts,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	LastProblem   string    `json:"last_problem,omitempty"`
	LastAttempt   time.Time `json:"last_attempt,omitzero"`
	RetryAt       time.Time `json:"retry_at,omitzero"`
	RenewAt       time.Time `json:"renew_at,omitzero"`   // the time drawn inside the renewal window
	RenewFor      string    `json:"renew_for,omitempty"` // the certificate and window RenewAt was drawn for
	// ARICheckedAt is when the CA last answered (or failed to answer) a
	// renewal information request for ARIFor, in whichever process asked:
	// processes sharing a storage take up an answer newer than their own
	// instead of asking again. Zero in states stored before it was kept.
	ARICheckedAt time.Time `json:"ari_checked_at,omitzero"`
	// PendingSince is when the certificate was first managed without a
	// certificate from the CA; zero once it has one.
	PendingSince time.Time `json:"pending_since,omitzero"`
	// WarnedAt is when the last "expiring" warning was sent for the
	// certificate in service.
	WarnedAt time.Time `json:"warned_at,omitzero"`
	// ExpiredFor is the NotAfter of the certificate an "expired" notice
	// was sent for.
	ExpiredFor time.Time `json:"expired_for,omitzero"`
	// RevokedAt is when the certificate stored under this id was revoked.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// ARIPastWhenGiven is set when the window ARIStart–ARIEnd had
	// already ended when the CA first gave it: the CA asks for renewal at
	// once (RFC 9773 §4.2), as it does before revoking. A window that
	// passes while waiting (renewal failing, the process down) is not.
	ARIPastWhenGiven bool `json:"ari_past_when_given,omitempty"`
	// ARIRushed is set on a certificate that replaced its predecessor at
	// once because the CA gave that one a window already past
	// (ARIPastWhenGiven); a window given past for this certificate then
	// waits a while (entry.ariFloorLocked), so that a CA that says so of
	// every certificate does not get one order after another.
	ARIRushed bool `json:"ari_rushed,omitempty"`
}

func certKey(id string) string  { return "certs/" + id + "/cert.json" }
func stateKey(id string) string { return "certs/" + id + "/state.json" }
func orderKey(id string) string { return "certs/" + id + "/order.json" }

// IssueLock is the lock name taken before ordering the certificate id.
func IssueLock(id string) string { return "issue/" + id }

// NoticeLock is the lock name taken while deciding whether the expiry
// notice of certificate id is due, so that processes sharing the storage
// send it once between them.
func NoticeLock(id string) string { return "notice/" + id }

// LoadCert returns the stored certificate with its key opened. A missing
// certificate gives an error satisfying IsNotExist; a key that does not
// open, or is not the key of the certificate, one wrapping ErrDamaged.
func (st *Store) LoadCert(ctx context.Context, id string) (Cert, error) {
	var c Cert
	if err := st.loadJSON(ctx, certKey(id), &c); err != nil {
		return Cert{}, err
	}
	k, err := st.open(c.SealedKey, certKey(id))
	if err != nil {
		return Cert{}, err
	}
	if err := keys.CheckMatch([]byte(c.ChainPEM), k); err != nil {
		return Cert{}, fmt.Errorf("%s: %w: %w", certKey(id), ErrDamaged, err)
	}
	c.Key = k
	return c, nil
}

// LoadCertInfo returns the stored certificate without opening its
// private key (Key is nil), so that it needs no key-encryption key: for
// status reports by a user who can only read the storage.
func (st *Store) LoadCertInfo(ctx context.Context, id string) (Cert, error) {
	var c Cert
	err := st.loadJSON(ctx, certKey(id), &c)
	c.SealedKey = ""
	return c, err
}

// HasProgress reports whether an order for id is in progress (its
// progress record exists).
func (st *Store) HasProgress(ctx context.Context, id string) bool {
	_, err := st.s.Load(ctx, orderKey(id))
	return err == nil
}

// StoreCert seals c.Key and saves the certificate.
func (st *Store) StoreCert(ctx context.Context, id string, c Cert) error {
	sealed, err := st.seal(c.Key, certKey(id))
	if err != nil {
		return err
	}
	c.SealedKey = sealed
	return st.storeJSON(ctx, certKey(id), c)
}

// LoadState returns the renewal state; a missing state is the zero State.
func (st *Store) LoadState(ctx context.Context, id string) (State, error) {
	var s State
	err := st.loadJSON(ctx, stateKey(id), &s)
	if IsNotExist(err) {
		return State{}, nil
	}
	return s, err
}

// StoreState saves the renewal state.
func (st *Store) StoreState(ctx context.Context, id string, s State) error {
	return st.storeJSON(ctx, stateKey(id), s)
}

// ListCerts returns the ids of every stored certificate.
func (st *Store) ListCerts(ctx context.Context) ([]string, error) {
	ids, _, err := st.ListCertsWith(ctx, "")
	return ids, err
}

// ListCertsWith returns the ids of every stored certificate, and, from the
// same listing, the ids of the certificates, stored or not, that have a
// record named file in their folder ("answers-left.json"); with is nil
// when file is "".
func (st *Store) ListCertsWith(ctx context.Context, file string) (ids, with []string, err error) {
	keys, err := st.s.List(ctx, "certs")
	if err != nil {
		return nil, nil, err
	}
	for _, k := range keys {
		if id, ok := certFolder(k, "cert.json"); ok {
			ids = append(ids, id)
		}
		if id, ok := certFolder(k, file); ok && file != "" {
			with = append(with, id)
		}
	}
	return ids, with, nil
}

// certFolder returns the certificate id of key when key is
// "certs/<id>/<file>".
func certFolder(key, file string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "certs/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/"+file)
	return id, ok && id != ""
}

// DeleteCert removes every record of the certificate id: the
// certificate, its renewal state, the progress of an order, and whatever
// else is kept under its folder. Accounts and the key-encryption key are
// elsewhere and never touched.
func (st *Store) DeleteCert(ctx context.Context, id string) error {
	keys, err := st.s.List(ctx, "certs/"+id)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := st.s.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
