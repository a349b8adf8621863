package tlspilot

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
)

// RevocationReason is a CRLReason code (RFC 5280 §5.3.1) given with a
// revocation (RFC 8555 §7.6).
type RevocationReason int

// The revocation reasons a subscriber may give (those Let's Encrypt
// accepts). Revoke also sends the other codes RFC 5280 §5.3.1 defines
// (0 to 10 except 7), which a CA may refuse.
const (
	ReasonUnspecified          RevocationReason = 0
	ReasonKeyCompromise        RevocationReason = 1
	ReasonSuperseded           RevocationReason = 4
	ReasonCessationOfOperation RevocationReason = 5
)

// ParseRevocationReason reads a reason by its RFC 5280 name:
// "unspecified", "keyCompromise", "superseded" or "cessationOfOperation".
func ParseRevocationReason(s string) (RevocationReason, error) {
	for _, r := range subscriberReasons {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("revocation reason %q: want unspecified, keyCompromise, superseded or cessationOfOperation", s)
}

// subscriberReasons are the reasons ParseRevocationReason reads.
var subscriberReasons = []RevocationReason{ReasonUnspecified, ReasonKeyCompromise, ReasonSuperseded, ReasonCessationOfOperation}

// reasonNames are the CRLReason names of RFC 5280 §5.3.1, by code; code 7
// is not used.
var reasonNames = [...]string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", "", "removeFromCRL", "privilegeWithdrawn", "aACompromise"}

// String returns the reason's RFC 5280 name, or "reason N" for a code
// RFC 5280 does not define.
func (r RevocationReason) String() string {
	if r.valid() {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason %d", int(r))
}

// valid reports whether RFC 5280 §5.3.1 defines r.
func (r RevocationReason) valid() bool {
	return r >= 0 && int(r) < len(reasonNames) && reasonNames[r] != ""
}

// check returns an error naming the allowed reasons if r is not one.
func (r RevocationReason) check() error {
	if r.valid() {
		return nil
	}
	allowed := make([]string, 0, len(reasonNames))
	for code, n := range reasonNames {
		if n != "" {
			allowed = append(allowed, fmt.Sprintf("%d (%s)", code, n))
		}
	}
	return fmt.Errorf("revocation reason %d is not a CRLReason of RFC 5280 §5.3.1 (RFC 8555 §7.6); want one of %s",
		int(r), strings.Join(allowed, ", "))
}

// Revoke revokes at the CA (RFC 8555 §7.6, signed with the account key)
// every certificate in service for name, one per key type, and sends
// EventRevoked for each. A certificate the CA had revoked already
// (alreadyRevoked) counts as revoked. While name is managed and every
// revocation succeeded, each is replaced at once by a new certificate,
// whatever retry time a failed renewal left, so the revoked one is served
// no longer than the new order takes; a Run on the same storage in
// another process swaps it in within Config.StoragePoll. When such a Run
// took the revocation up and stored the replacement first, it is found
// under the issue lock and no second one is ordered. A name that is no longer
// managed has its stored certificates revoked and nothing replaced; so
// has a managed name whose managed certificates were never obtained (its
// key type changed since, say), and then the managed ones are obtained;
// and one whose managed records are damaged, each a failure.
//
// A reason RFC 5280 §5.3.1 does not define (7, or outside 0 to 10) is
// refused before the CA is contacted, with an error naming the allowed
// ones. It returns an error if no certificate for name exists. When a
// revocation fails, no replacement is ordered here and the failures are
// returned joined (a certificate revoked beside it is still recorded as
// revoked, and a Run serving it orders its replacement); a managed
// certificate whose stored record is damaged cannot be sent to the CA
// and is such a failure, the others being revoked. It returns a
// *ReplacementError when every certificate was revoked but the
// replacement failed.
func (m *Manager) Revoke(ctx context.Context, name string, reason RevocationReason) error {
	if err := reason.check(); err != nil {
		return fmt.Errorf("revoke %s: %w", name, err)
	}
	n, err := NormalizeName(name)
	if err != nil {
		return err
	}
	entries, _ := m.selectEntries([]string{n})
	ids, unread, err := m.revocable(ctx, name, n, entries)
	if err != nil {
		return err
	}
	errs := unread // failed like a refused revocation, the others revoked all the same
	for _, id := range ids {
		if err := m.revokeStored(ctx, id, reason); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	now := time.Now()
	for _, e := range entries {
		// Known revoked here even if storing the revocation failed.
		if slices.Contains(ids, e.id) {
			e.takeRevocation(now)
		}
	}
	if len(entries) > 0 {
		// Not forced: a Run on the same storage may have taken the
		// revocation up and stored a replacement already, and the
		// check under the issue lock then orders no second one.
		if err := m.renew(ctx, RenewOptions{Names: []string{n}}, obtainOptions{replaceRevoked: true}); err != nil {
			return &ReplacementError{Err: err}
		}
	}
	return nil
}

// revocable returns the ids of the certificates Revoke revokes for the
// normalised name n, whose managed certificates are entries, and the
// errors of those whose record is damaged (certstore.ErrDamaged): they
// cannot be sent to the CA, and must not keep the others from being
// revoked (a compromised key cannot wait for a disk's repair).
func (m *Manager) revocable(ctx context.Context, name, n string, entries []*entry) ([]string, []error, error) {
	ids := make([]string, 0, len(entries))
	var unread []error
	for _, e := range entries {
		// Only a certificate the CA issued can be revoked: a configured
		// name still waiting for its first one has none.
		switch _, err := m.store.LoadCertInfo(ctx, e.id); {
		case err == nil:
			ids = append(ids, e.id)
		case errors.Is(err, certstore.ErrDamaged):
			unread = append(unread, fmt.Errorf("revoke %s: %w", e.id, err))
		case !errors.Is(err, fs.ErrNotExist):
			return nil, nil, fmt.Errorf("revoke %s: %w", name, err)
		}
	}
	if len(ids) > 0 {
		return ids, unread, nil
	}
	// Not configured any more, or configured differently (another key
	// type) since its certificate was obtained: what is stored for it,
	// also when a configured record is damaged (the one stored may be
	// the one served, by a serve not restarted since).
	ids, err := m.storedFor(ctx, n)
	switch {
	case err != nil:
		return nil, nil, err
	case len(ids) == 0 && len(unread) > 0:
		return nil, nil, errors.Join(unread...)
	case len(ids) == 0 && len(entries) > 0:
		return nil, nil, fmt.Errorf("revoke %s: no certificate has been obtained for this name yet, so there is none to revoke", name)
	case len(ids) == 0:
		return nil, nil, fmt.Errorf("revoke %s: no certificate for this name", name)
	}
	return ids, unread, nil
}

// problemAlreadyRevoked is the ACME problem a CA answers a revocation of
// a certificate it revoked before (RFC 8555 §6.7).
const problemAlreadyRevoked = "urn:ietf:params:acme:error:alreadyRevoked"

// ReplacementError is what Revoke returns when every certificate it was
// to revoke is revoked but no replacement could be obtained yet: the
// revocation stands, and the replacement is retried as a failed renewal
// is (by Run, in this process or another on the same storage).
type ReplacementError struct {
	Err error // the failed renewal
}

func (e *ReplacementError) Error() string {
	return "revoked, but no replacement yet: " + e.Err.Error()
}

func (e *ReplacementError) Unwrap() error { return e.Err }

// storedFor returns the ids of stored certificates whose names include n.
func (m *Manager) storedFor(ctx context.Context, n string) ([]string, error) {
	all, err := m.store.ListCerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list stored certificates: %w", err)
	}
	var out []string
	for _, id := range all {
		if c, err := m.store.LoadCertInfo(ctx, id); err == nil && slices.Contains(c.Names, n) {
			out = append(out, id)
		}
	}
	return out, nil
}

// revokeStored revokes the stored certificate id and records it.
func (m *Manager) revokeStored(ctx context.Context, id string, reason RevocationReason) error {
	c, err := m.store.LoadCertInfo(ctx, id)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	b, _ := pem.Decode([]byte(c.ChainPEM))
	if b == nil {
		return fmt.Errorf("revoke %s: no certificate in the stored chain", id)
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	acct, err := m.account(ctx)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	if err := m.client.Revoke(ctx, acct, leaf, int(reason)); err != nil {
		if p := problemOf(err); p == nil || p.Type != problemAlreadyRevoked {
			if c.CA != "" && c.CA != m.cfg.CA {
				// The configured CA never issued it: say which did.
				return fmt.Errorf("revoke %s: obtained from %s, not the configured CA %s (revoke it with a config naming that CA): %w",
					id, c.CA, m.cfg.CA, err)
			}
			return fmt.Errorf("revoke %s: %w", id, err)
		}
		// Revoked before (an earlier run whose replacement failed): it
		// is recorded as revoked like one revoked now.
		m.log.Info("certificate already revoked at the CA", "cert", id)
	}
	st, err := m.store.LoadState(ctx, id)
	if err == nil {
		st.RevokedAt = time.Now().UTC()
		err = m.store.StoreState(ctx, id, st)
	}
	if err == nil {
		// Every Manager serving it takes the revocation up and orders a
		// replacement, even if this process's own attempt fails.
		err = m.store.NoteChange(ctx, id)
	}
	if err != nil {
		m.log.Warn("record revocation", "cert", id, "error", err)
	}
	m.log.Warn("certificate revoked", "cert", id, "names", c.Names, "serial", leaf.SerialNumber.Text(16), "reason", reason.String())
	m.emit(Event{Type: EventRevoked, CertID: id, Names: c.Names, KeyType: c.KeyType, NotAfter: c.NotAfter})
	return nil
}
