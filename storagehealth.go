package tlspilot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tlspilot/tlspilot/internal/certstore"
)

// StorageStatus says whether the storage answered the Manager's last
// check. It is part of the status document (StatusReport): its JSON names
// are stable. While the storage is down, certificates in service stay in
// service from memory, and renewals wait (they are not counted as failed
// attempts) until it is back.
type StorageStatus struct {
	// Up is true when the last check of the storage succeeded.
	Up bool `json:"up"`
	// Since is when Up last changed, or when the Manager started.
	Since time.Time `json:"since,omitzero"`
	// Checked is when the storage was last checked: every
	// Config.StoragePoll, at once when a storage.Watcher tells of a
	// change or of a lost or regained connection, and with backoff from
	// one second up to StoragePoll while it is down.
	Checked time.Time `json:"checked,omitzero"`
	// Error is why the last check failed, while Up is false.
	Error string `json:"error,omitempty"`
}

// storageHealth is what the Manager learned of its storage from its
// checks (reading the changes record). It is safe for concurrent use.
type storageHealth struct {
	mu       sync.Mutex
	st       StorageStatus
	deferred map[string]bool // entries whose pass waits for the storage
	// reads shares one read of the changes record between the checks
	// made at once (loadChanges).
	reads singleflight.Group
}

// status returns the last result.
func (h *storageHealth) status() StorageStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

// record takes in a check's result at now. It returns whether the
// storage just went down or just came back, and then the entries that
// waited for it.
func (h *storageHealth) record(now time.Time, err error) (down, up bool, waited []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.st.Checked.IsZero()
	wasUp := h.st.Up
	if (err == nil) != wasUp || first {
		h.st.Since = now
	}
	h.st.Up, h.st.Checked, h.st.Error = err == nil, now, ""
	if err != nil {
		h.st.Error = err.Error()
		return wasUp || first, false, nil
	}
	for id := range h.deferred {
		waited = append(waited, id)
	}
	h.deferred = nil
	return false, !wasUp && !first, waited
}

// wait reports whether the storage is down, and if so notes that id
// waits for it.
func (h *storageHealth) wait(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st.Up || h.st.Checked.IsZero() {
		return false
	}
	if h.deferred == nil {
		h.deferred = make(map[string]bool)
	}
	h.deferred[id] = true
	return true
}

// StorageStatus reports whether the storage answered the last check. It
// does no I/O.
func (m *Manager) StorageStatus() StorageStatus {
	return m.health.status()
}

// checkStorage reads the changes record, records whether the storage
// answered (a missing record is an answer) and reports it. When the
// storage just came back, the renewals that waited for it are due at
// once.
func (m *Manager) checkStorage(ctx context.Context) (certstore.Changes, bool) {
	cctx, cancel := context.WithTimeout(ctx, storageTimeout)
	ch, err := m.loadChanges(cctx)
	cancel()
	if ctx.Err() != nil {
		return ch, false
	}
	if certstore.IsNotExist(err) {
		err = nil
	}
	down, up, waited := m.health.record(time.Now(), err)
	switch {
	case down:
		m.log.Error("storage unreachable: serving certificates from memory; renewals wait until it is back", "error", err)
	case up:
		m.log.Info("storage reachable again", "renewals_resumed", len(waited))
		m.resume(waited)
	}
	return ch, err == nil
}

// loadChanges reads the changes record, giving up when ctx ends even if
// the storage's read does not (a file system that hangs ignores its
// context). Checks made at the same time share one read and its result
// (a worker's check after a failed attempt, the watch loop's), so a
// storage is never found down for being asked twice at once; a read that
// hangs is joined, not multiplied.
func (m *Manager) loadChanges(ctx context.Context) (certstore.Changes, error) {
	res := m.health.reads.DoChan("changes", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storageTimeout)
		defer cancel()
		return m.store.LoadChanges(rctx)
	})
	select {
	case r := <-res:
		ch, _ := r.Val.(certstore.Changes)
		return ch, r.Err
	case <-ctx.Done():
		return certstore.Changes{}, fmt.Errorf("storage did not answer within %v: %w", storageTimeout, ctx.Err())
	}
}

// storageTimeout bounds a read the health check or a status report makes:
// a storage that does not answer within it (a database whose server or
// network hangs rather than refuses) is reported down, never waited for.
const storageTimeout = 5 * time.Second

// resume makes the entries with the given ids due now.
func (m *Manager) resume(ids []string) {
	now := time.Now()
	for _, id := range ids {
		m.mu.Lock()
		e := m.entries[id]
		m.mu.Unlock()
		if e != nil {
			m.reschedule(e, now)
		}
	}
}

// storageRetry returns the wait before the next check of a storage that
// failed the previous one, prev after the one before: one second,
// doubling, at most limit.
func storageRetry(prev, limit time.Duration) time.Duration {
	return min(limit, max(2*prev, time.Second))
}
