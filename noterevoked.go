package tlspilot

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"time"
)

// NoteRevoked tells the Manager that leaf was found revoked at `at` by a
// source other than Manager.Revoke: an OCSP responder's answer, as OCSP
// stapling gets it (RFC 6960). If leaf is the certificate one of the
// Manager's names has in service, it is treated as a revocation made
// with Revoke: the state becomes revoked (StateRevoked, CRITICAL in the
// status), the revocation is recorded in storage and noted as a change so
// every Manager sharing the storage takes it up, an EventRevoked is sent,
// and a replacement is ordered at once (retried with backoff like any
// renewal). It reports whether leaf was in service here; a second call
// for the same certificate changes nothing. The error is a storage
// failure; the certificate is renewed all the same.
func (m *Manager) NoteRevoked(ctx context.Context, leaf *x509.Certificate, at time.Time) (bool, error) {
	e := m.entryServing(leaf)
	if e == nil {
		return false, nil
	}
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	var serr error
	st, err := m.store.LoadState(ctx, e.id)
	if err == nil && st.RevokedAt.IsZero() {
		st.RevokedAt = at
		err = m.store.StoreState(ctx, e.id, st)
		if err == nil {
			err = m.store.NoteChange(ctx, e.id)
		}
	}
	if err != nil {
		serr = fmt.Errorf("record revocation of %s: %w", e.id, err)
	}
	if !e.takeRevocation(at) {
		return true, serr
	}
	meta := e.snapshot().meta
	m.log.Error("certificate in service reported revoked, ordering a replacement", "cert", e.id,
		"names", e.site.names, "serial", meta.serial, "revoked_at", at)
	m.emit(Event{Type: EventRevoked, CertID: e.id, Names: e.site.names, KeyType: e.keyType, NotAfter: meta.notAfter})
	m.reschedule(e, time.Now())
	return true, serr
}

// entryServing returns the entry whose certificate in service is leaf.
func (m *Manager) entryServing(leaf *x509.Certificate) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if tc := e.cur.Load(); tc != nil && len(tc.Certificate) > 0 && bytes.Equal(tc.Certificate[0], leaf.Raw) {
			return e
		}
	}
	return nil
}
