package tlspilot

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// DefaultStorageDir returns where the default storage lives when
// Config.StorageDir is empty: $XDG_DATA_HOME/tlspilot, else
// ~/.local/share/tlspilot.
func DefaultStorageDir() (string, error) { return defaultStorageDir() }

// CleanOptions says which stored certificates Clean removes.
type CleanOptions struct {
	// OlderThan: a certificate no longer managed is removed once it has
	// expired, or was obtained more than OlderThan ago. A record with no
	// certificate (an order that never succeeded) is removed once its
	// last attempt is that old. Zero removes only expired certificates
	// and records without one.
	OlderThan time.Duration
	// DryRun reports what would be removed and changes nothing (the
	// storage is opened read-only).
	DryRun bool
}

// Cleaned is a stored certificate that Clean removed, or with DryRun
// would remove.
type Cleaned struct {
	ID    string
	Names []string // empty for a record without a certificate
	// NotAfter and Obtained are the certificate's; zero without one.
	NotAfter, Obtained time.Time
	// Reason says why it goes: "expired", "obtained 45d ago", "no
	// certificate".
	Reason string
}

// Clean removes from storage the certificates that are not among certs
// (the ones still configured, compared by names and key type as the
// Manager stores them) and have expired or were obtained more than
// opts.OlderThan ago. It removes the records under certs/ID/ only
// (certificate, renewal state, order progress), never an account or the
// key-encryption key, and needs no key. Each removal is decided again
// and made under the certificate's issue lock, so it never races a
// Manager ordering it. An unmanaged record that cannot be decoded
// (damaged) is removed whatever opts.OlderThan; one that cannot be read
// or removed otherwise is named in the error returned, and the others
// are cleaned all the same. Once ctx ends, Clean stops with its error.
//
// It also removes the OCSP responses serve keeps in storage (ocsp/…) that
// went stale over a day ago or cannot be read: each renewal leaves the old
// certificate's behind; and, unless opts.DryRun, the empty folders of
// challenge answers that versions before 2026-12-01 left for ever (not
// listed in the result).
//
// The certificates another config on the same storage manages are
// unmanaged from this one's point of view: give Clean every certificate
// managed on the storage.
func Clean(ctx context.Context, cfg Config, opts CleanOptions, certs ...Cert) ([]Cleaned, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	store, err := cleanStore(cfg, opts.DryRun)
	if err != nil || store == nil {
		return nil, err
	}
	managed, err := managedIDs(cfg, certs)
	if err != nil {
		return nil, err
	}
	ids, err := storedIDs(ctx, store)
	if err != nil {
		return nil, err
	}
	// A record that cannot be read or removed is reported and the others
	// are cleaned all the same: one bad record must not keep every
	// record sorted after it for ever.
	var out []Cleaned
	var errs []error
	// Once ctx has ended (an interrupt), every record left would fail
	// alike: Clean stops, and says so once.
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return out, errors.Join(append(errs, err)...)
		}
		if managed[id] {
			continue
		}
		c, ok, err := cleanable(ctx, store, id, opts.OlderThan)
		if err != nil {
			err = fmt.Errorf("%s: %w", id, err)
		} else if ok && !opts.DryRun {
			if c, ok, err = deleteLocked(ctx, store, id, opts.OlderThan, cfg.Logger); err != nil {
				err = fmt.Errorf("remove %s: %w", id, err)
			}
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return out, errors.Join(append(errs, err)...)
		case err != nil:
			errs = append(errs, err)
		case ok:
			out = append(out, c)
		}
	}
	stale, err := cleanOCSP(ctx, store.Storage(), opts.DryRun)
	if err = errors.Join(append(errs, err)...); err == nil && !opts.DryRun {
		// Housekeeping, neither reported nor failing the clean-up: empty
		// folders of challenge answers, left before they were pruned
		// with their last answer (a folder this user may not remove
		// stays).
		_, _ = store.PruneChallengeFolders(ctx)
	}
	return append(out, stale...), err
}

// ocspStaleFor is how long past its expiry a stored OCSP response is kept
// before Clean removes it: a serve still stapling the certificate has
// fetched a new one long before (half-way through the old one's
// validity), so a record this stale belongs to a certificate no longer
// served (renewed, revoked, removed) or to a client certificate no
// longer seen.
const ocspStaleFor = 24 * time.Hour

// cleanOCSP removes the stored OCSP responses (ocsp/…, kept by serve's
// stapler and client-certificate checks) stale for over ocspStaleFor,
// and those that cannot be read at all.
func cleanOCSP(ctx context.Context, st storage.Storage, dryRun bool) ([]Cleaned, error) {
	keys, err := st.List(ctx, "ocsp")
	if err != nil {
		return nil, fmt.Errorf("read storage: %w", err)
	}
	sort.Strings(keys)
	var out []Cleaned
	var errs []error
	for _, k := range keys {
		data, err := st.Load(ctx, k)
		if errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
			if ctx.Err() != nil {
				break // interrupted: the others would fail alike
			}
			continue
		}
		reason := ""
		switch exp, err := ocspclient.StoredExpiry(data); {
		case err != nil:
			reason = "OCSP response unreadable"
		case time.Since(exp) > ocspStaleFor:
			reason = fmt.Sprintf("OCSP response stale since %s", exp.UTC().Format(time.DateOnly))
		default:
			continue
		}
		if !dryRun {
			if err := st.Delete(ctx, k); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove %s: %w", k, err))
				if ctx.Err() != nil {
					break
				}
				continue
			}
		}
		out = append(out, Cleaned{ID: k, Reason: reason})
	}
	return out, errors.Join(errs...)
}

// cleanStore opens the storage; nil when there is none yet.
func cleanStore(cfg Config, readOnly bool) (*certstore.Store, error) {
	if cfg.Storage != nil {
		return certstore.New(cfg.Storage, nil), nil
	}
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir, ReadOnly: true})
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil // nothing was ever stored
	}
	if err == nil && !readOnly {
		fs, err = fsstore.New(fsstore.Options{Dir: cfg.StorageDir, Logger: cfg.Logger})
	}
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", cfg.StorageDir, err)
	}
	return certstore.New(fs, nil), nil
}

// managedIDs returns the storage ids of certs.
func managedIDs(cfg Config, certs []Cert) (map[string]bool, error) {
	managed := make(map[string]bool)
	for _, c := range certs {
		names, err := normalizeNames(c.Names)
		if err != nil {
			return nil, err
		}
		kts, err := keyTypes(cfg, c)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", names, err)
		}
		for _, kt := range kts {
			managed[certstore.CertID(names, kt)] = true
		}
	}
	return managed, nil
}

// storedIDs lists every id with a record under certs/, with or without
// a certificate.
func storedIDs(ctx context.Context, store *certstore.Store) ([]string, error) {
	keys, err := store.Storage().List(ctx, "certs")
	if err != nil {
		return nil, fmt.Errorf("read storage: %w", err)
	}
	seen := make(map[string]bool)
	var ids []string
	for _, k := range keys {
		id, _, ok := strings.Cut(strings.TrimPrefix(k, "certs/"), "/")
		if ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// cleanable says whether the unmanaged record id is old enough to go. A
// record that cannot be decoded (certstore.ErrDamaged) goes whatever its
// age: no Manager can use it, and its age cannot be told.
func cleanable(ctx context.Context, store *certstore.Store, id string, olderThan time.Duration) (Cleaned, bool, error) {
	now := time.Now()
	c, err := store.LoadCertInfo(ctx, id)
	switch {
	case errors.Is(err, certstore.ErrDamaged):
		return Cleaned{ID: id, Reason: "certificate unreadable (damaged)"}, true, nil
	case certstore.IsNotExist(err):
		st, err := store.LoadState(ctx, id)
		if errors.Is(err, certstore.ErrDamaged) {
			return Cleaned{ID: id, Reason: "no certificate, renewal state unreadable (damaged)"}, true, nil
		}
		if err != nil {
			return Cleaned{}, false, err
		}
		last := st.LastAttempt
		if st.PendingSince.After(last) {
			last = st.PendingSince
		}
		return Cleaned{ID: id, Reason: "no certificate"}, now.Sub(last) > olderThan, nil
	case err != nil:
		return Cleaned{}, false, err
	}
	out := Cleaned{ID: id, Names: c.Names, NotAfter: c.NotAfter, Obtained: c.Obtained}
	switch {
	case !now.Before(c.NotAfter):
		out.Reason = "expired"
	case olderThan > 0 && now.Sub(c.Obtained) > olderThan:
		out.Reason = fmt.Sprintf("obtained %dd ago", int(now.Sub(c.Obtained).Hours()/24))
	default:
		return out, false, nil
	}
	return out, true, nil
}

// deleteLocked removes the records of id under its issue lock, if they
// are still cleanable there, and reports what it removed: the record read
// before waiting for the lock may have been replaced meanwhile by a
// Manager that held it (a serve on an older config renewing it, or
// obtaining again one that was damaged). The challenge answers an
// attempt at id could not remove and recorded (issuance.Leftovers) go
// with them, and nothing would try them again: each is logged at WARN
// with where it is published, to be removed by hand.
func deleteLocked(ctx context.Context, store *certstore.Store, id string, olderThan time.Duration, log *slog.Logger) (Cleaned, bool, error) {
	lease, err := store.Storage().Lock(ctx, certstore.IssueLock(id))
	if err != nil {
		return Cleaned{}, false, err
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	c, ok, err := cleanable(ctx, store, id, olderThan)
	if err != nil || !ok {
		return c, false, err
	}
	if left, err := issuance.Leftovers(ctx, store, id); err == nil {
		for _, c := range left {
			name, value := issuance.Where(c)
			log.Warn("challenge answer left published by a removed certificate: remove it by hand", "cert", id, "name", name, "value", value)
		}
	}
	if err := store.DeleteCert(storage.WithLease(ctx, lease), id); err != nil {
		return c, false, err
	}
	return c, true, nil
}
