package fleet

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

// identityRefusalKey is the record of the issuer's last refusal of the
// agent's client certificate, kept until an exchange with that
// certificate succeeds, so that status reports it (the identity record
// itself is only written by enrolment and renewal: a refusal written
// into it could overwrite a new enrolment).
const identityRefusalKey = "agent/identity-refusal"

// identityCheckEvery is how often the daemon looks at the stored
// identity between passes, so that a new enrolment (tlspilot agent
// enroll, the operator's fix for a refused agent) is used at once
// rather than after the backoff of the refusal: one small read.
const identityCheckEvery = 10 * time.Second

// identityRefusal is the stored form of a refusal of the client
// certificate with Serial.
type identityRefusal struct {
	Serial   string    `json:"serial"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
	Attempts int       `json:"attempts"`
}

// storedCertificate reads the client certificate of the stored identity
// and its host, without opening its key.
func storedCertificate(ctx context.Context, st storage.Storage) (host string, cert *x509.Certificate, err error) {
	b, err := st.Load(ctx, identityKey)
	if err != nil {
		return "", nil, fmt.Errorf("load %s: %w", identityKey, err)
	}
	var r identityRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return "", nil, fmt.Errorf("decode %s: %w", identityKey, err)
	}
	cert, err = parseCertificate(r.Certificate)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", identityKey, err)
	}
	return r.Host, cert, nil
}

// loadRefusal reads the stored refusal of the client certificate with
// serial; ok is false when there is none for it.
func loadRefusal(ctx context.Context, st storage.Storage, serial string) (r identityRefusal, ok bool, err error) {
	b, err := st.Load(ctx, identityRefusalKey)
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("load %s: %w", identityRefusalKey, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("decode %s: %w", identityRefusalKey, err)
	}
	return r, r.Serial == serial, nil
}

// serial is the serial number of the client certificate in use.
func (k *Keeper) serial() string { return serialHex(k.id.Certificate) }

// identityChanged reports whether the stored identity is another than
// the one in use, and not one found unusable before (unloadable).
func (k *Keeper) identityChanged(ctx context.Context) bool {
	_, cert, err := storedCertificate(ctx, k.opts.Storage)
	if err != nil {
		return false
	}
	s := serialHex(cert)
	return s != k.serial() && s != k.unloadable
}

// reloadIdentity makes the Keeper present the stored identity when it
// is not the one in use: the agent was enrolled again (after a
// revocation, say), or another process renewed its client certificate.
// The backoff of the old certificate's renewal does not apply to the
// new one.
//
// It reports whether the Keeper now presents the stored identity. One
// that cannot be used (sealed under another key-encryption key, say) is
// logged once and then left alone (unloadable): the Keeper goes on with
// the identity it has, rather than trying again every pass.
func (k *Keeper) reloadIdentity(ctx context.Context) bool {
	if !k.identityChanged(ctx) {
		return false
	}
	id, err := LoadIdentity(ctx, k.opts.Storage, k.opts.Sealer)
	if err == nil {
		err = k.useIdentity(id)
	}
	if err != nil {
		if _, cert, serr := storedCertificate(ctx, k.opts.Storage); serr == nil {
			k.unloadable = serialHex(cert)
		}
		k.log.Error("agent storage: the new identity cannot be used; going on with the one in use", "serial", k.unloadable, "error", err)
		return false
	}
	k.idAttempts, k.idRetryAt = 0, time.Time{}
	_, k.refused, _ = loadRefusal(ctx, k.opts.Storage, k.serial())
	k.log.Info("using the client certificate in the storage (enrolled again, or renewed by another run)",
		"host", id.Host, "serial", k.serial(), "not_after", id.Certificate.NotAfter)
	return true
}

// noteExchange records the outcome of a call to the issuer with the
// client certificate in use: a refusal of the certificate is stored
// (status reports it) until a call succeeds.
func (k *Keeper) noteExchange(ctx context.Context, now time.Time, err error) {
	switch {
	case err == nil && k.refused:
		if derr := k.opts.Storage.Delete(ctx, identityRefusalKey); derr != nil && !errors.Is(derr, fs.ErrNotExist) {
			k.log.Error("agent storage", "error", derr)
			return
		}
		k.refused = false
	case err != nil && errors.Is(err, ErrIdentityRefused):
		r := identityRefusal{Serial: k.serial(), Error: err.Error(), At: now, Attempts: 1}
		if prev, ok, _ := loadRefusal(ctx, k.opts.Storage, r.Serial); ok {
			r.Attempts = prev.Attempts + 1
		}
		b, merr := json.Marshal(r)
		if merr == nil {
			merr = k.opts.Storage.Store(ctx, identityRefusalKey, b)
		}
		if merr != nil {
			k.log.Error("agent storage", "error", merr)
			return
		}
		k.refused = true
	}
}

// askAgain reports whether a request that failed with rec's error is to
// be made again now, whatever its backoff: the client certificate the
// issuer refused was replaced since (a new enrolment is the operator's
// fix).
func (k *Keeper) askAgain(rec *certRecord) bool {
	return rec.RefusedWith != "" && rec.RefusedWith != k.serial()
}
