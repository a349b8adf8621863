package certstore

import (
	"context"
	"fmt"

	"github.com/tlspilot/tlspilot/storage"
)

// Changes is the record of recent certificate changes, so that processes
// sharing a storage notice a certificate another one stored (a renewal
// by `tlspilot renew`, a cluster node) by reading one small record
// instead of every certificate.
type Changes struct {
	// Seq counts changes since the record was made; it only grows.
	Seq int64 `json:"seq"`
	// Recent are the latest changes, oldest first, at most MaxRecent.
	Recent []Change `json:"recent,omitempty"`
}

// Change is one stored certificate.
type Change struct {
	Seq int64  `json:"seq"`
	ID  string `json:"id"`
}

// MaxRecent bounds Changes.Recent: a reader that missed more changes
// than this looks at every certificate.
const MaxRecent = 256

const changesKey = "changes.json"

// changesLock serialises writers of the changes record.
const changesLock = "changes"

// NoteChange records that certificate id was stored anew.
func (st *Store) NoteChange(ctx context.Context, id string) error {
	lease, err := st.s.Lock(ctx, changesLock)
	if err != nil {
		return fmt.Errorf("lock changes: %w", err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	ctx = storage.WithLease(ctx, lease)
	ch, err := st.LoadChanges(ctx)
	if err != nil && !IsNotExist(err) {
		return err
	}
	ch.Seq++
	ch.Recent = append(ch.Recent, Change{Seq: ch.Seq, ID: id})
	if n := len(ch.Recent); n > MaxRecent {
		ch.Recent = append([]Change(nil), ch.Recent[n-MaxRecent:]...)
	}
	return st.storeJSON(ctx, changesKey, ch)
}

// LoadChanges returns the changes record; a missing one gives an error
// satisfying IsNotExist and the zero Changes.
func (st *Store) LoadChanges(ctx context.Context) (Changes, error) {
	var ch Changes
	err := st.loadJSON(ctx, changesKey, &ch)
	return ch, err
}

// Since returns the ids changed after seq, and whether the record still
// holds all of them (false: more changed than it keeps; look at every
// certificate).
func (ch Changes) Since(seq int64) (ids []string, complete bool) {
	if ch.Seq <= seq {
		return nil, true
	}
	if len(ch.Recent) == 0 || ch.Recent[0].Seq > seq+1 {
		return nil, false
	}
	seen := make(map[string]bool)
	for _, c := range ch.Recent {
		if c.Seq > seq && !seen[c.ID] {
			seen[c.ID] = true
			ids = append(ids, c.ID)
		}
	}
	return ids, true
}

// WatchChanges returns a channel told soon after the changes record may
// have changed, or when changes may have gone unnoticed (see
// storage.Watcher); nil if the storage cannot tell, and then callers
// poll LoadChanges. It is closed when ctx ends.
func (st *Store) WatchChanges(ctx context.Context) <-chan struct{} {
	w, ok := st.s.(storage.Watcher)
	if !ok {
		return nil
	}
	return w.Watch(ctx, changesKey)
}
