package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

// auditPrefix is the storage folder of StorageAuditor's records.
const auditPrefix = "fleet/audit"

// auditStamp formats a record's time (UTC) at the start of its key: key
// syntax (lower case, no ':') and fixed width, so keys sort by time.
const auditStamp = "20060102t150405.000000000z"

// auditBatch bounds the keys read in one LoadMany.
const auditBatch = 200

// StorageAuditor keeps the audit trail in a storage.Storage, for an
// issuer whose storage is a directory: one record per key,
// "fleet/audit/TIME-RANDOM" (TIME as auditStamp, RANDOM 64 bits in hex),
// holding the record as JSON. A record is stored once under a new key
// and never rewritten; nothing in tlspilot deletes one. Unlike the
// PostgreSQL table, nothing stops the issuer's own user from changing
// the files. It is safe for concurrent use.
type StorageAuditor struct {
	s storage.Storage
}

// NewStorageAuditor returns an Auditor over s, the issuer's storage.
func NewStorageAuditor(s storage.Storage) *StorageAuditor {
	return &StorageAuditor{s: s}
}

// Close does nothing: the storage belongs to the caller.
func (a *StorageAuditor) Close() {}

// Append stores r under a new key; a zero r.Time is the current time.
// It returns once the storage holds it durably (Storage.Store).
func (a *StorageAuditor) Append(ctx context.Context, r AuditRecord) error {
	r, err := checkRecord(r)
	if err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("fleet: audit: encode: %w", err)
	}
	rnd := make([]byte, 8)
	_, _ = rand.Read(rnd) // never fails: crypto/rand.Read crashes the program instead
	key := auditPrefix + "/" + r.Time.Format(auditStamp) + "-" + hex.EncodeToString(rnd)
	if err := a.s.Store(ctx, key, b); err != nil {
		return fmt.Errorf("fleet: audit: append: %w", err)
	}
	return nil
}

// Query lists the records, skips by key those older than q.Since, reads
// the others and keeps those q selects, oldest first.
func (a *StorageAuditor) Query(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	keys, err := a.s.List(ctx, auditPrefix)
	if err != nil {
		return nil, fmt.Errorf("fleet: audit: list: %w", err)
	}
	if !q.Since.IsZero() {
		i, _ := slices.BinarySearch(keys, auditPrefix+"/"+q.Since.UTC().Format(auditStamp))
		keys = keys[i:]
	}
	var out []AuditRecord
	for len(keys) > 0 {
		n := min(len(keys), auditBatch)
		vals, err := a.load(ctx, keys[:n])
		if err != nil {
			return nil, fmt.Errorf("fleet: audit: %w", err)
		}
		for _, k := range keys[:n] {
			b, ok := vals[k]
			if !ok {
				continue // removed by hand since List
			}
			var r AuditRecord
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("fleet: audit: decode %s: %w", k, err)
			}
			if q.OmitChain {
				r.Chain = ""
			}
			if q.selects(r) {
				out = append(out, r)
			}
		}
		keys = keys[n:]
	}
	return out, nil
}

// load reads keys, in one call where the storage can.
func (a *StorageAuditor) load(ctx context.Context, keys []string) (map[string][]byte, error) {
	if bl, ok := a.s.(storage.BatchLoader); ok {
		return bl.LoadMany(ctx, keys)
	}
	vals := make(map[string][]byte, len(keys))
	for _, k := range keys {
		b, err := a.s.Load(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		vals[k] = b
	}
	return vals, nil
}

// selects reports whether q keeps r.
func (q AuditQuery) selects(r AuditRecord) bool {
	return (q.Since.IsZero() || !r.Time.Before(q.Since)) &&
		(q.Host == "" || r.Host == q.Host) &&
		(q.Decision == "" || r.Decision == q.Decision)
}

// checkRecord refuses a record with an unknown decision or no host, and
// sets a zero Time to now; times become UTC.
func checkRecord(r AuditRecord) (AuditRecord, error) {
	if !slices.Contains(auditDecisions(), r.Decision) {
		return r, fmt.Errorf("fleet: audit: decision %q is none of %s", r.Decision, strings.Join(auditDecisions(), ", "))
	}
	if strings.TrimSpace(r.Host) == "" {
		return r, errors.New("fleet: audit: record without a host")
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if r.Names == nil {
		r.Names = []string{}
	}
	r.Time = r.Time.UTC()
	if !r.NotBefore.IsZero() {
		r.NotBefore = r.NotBefore.UTC()
	}
	if !r.NotAfter.IsZero() {
		r.NotAfter = r.NotAfter.UTC()
	}
	return r, nil
}

var _ Auditor = (*StorageAuditor)(nil)
