package tlspilot

import (
	"context"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/renewal"
)

// Run renews certificates until ctx ends. One timer heap keyed by each
// certificate's next due time drives it: the earliest entry wakes the loop,
// so idle certificates cost nothing. Due certificates are worked on in a
// pool of Config.Workers. Run returns ctx's error after in-flight work has
// stopped.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		m.mu.Lock()
		var due []*entry
		for {
			id, at, ok := m.heap.Peek()
			if !ok || at.After(now) {
				break
			}
			m.heap.Pop()
			if e := m.entries[id]; e != nil && !e.running {
				e.running = true
				due = append(due, e)
			}
		}
		_, at, ok := m.heap.Peek()
		m.mu.Unlock()
		for _, e := range due {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.work(ctx, e)
			}()
		}
		wait := time.Hour
		if ok {
			wait = max(at.Sub(now), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// poke wakes Run after the heap changed.
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// work runs one maintenance pass for e in the worker pool and schedules
// its next one.
func (m *Manager) work(ctx context.Context, e *entry) {
	select {
	case m.workers <- struct{}{}:
	case <-ctx.Done():
		m.finish(e, time.Now())
		return
	}
	next := m.maintain(ctx, e)
	<-m.workers
	m.finish(e, next)
}

func (m *Manager) finish(e *entry, next time.Time) {
	m.mu.Lock()
	e.running = false
	m.scheduleLocked(e, next)
	m.mu.Unlock()
	m.poke()
}

func (m *Manager) scheduleLocked(e *entry, at time.Time) {
	e.next = at
	m.heap.Set(e.id, at)
}

// plan returns when e next needs attention and saves e's renewal state
// when it changed (a renewal time drawn, an answer about renewal
// information) or force is set, so that a restart keeps every due time
// instead of drawing it again.
func (m *Manager) plan(ctx context.Context, e *entry, force bool) time.Time {
	m.mu.Lock()
	before := e.state
	due := m.dueLocked(e, time.Now())
	save := force || e.dirty || e.state != before
	e.dirty = false
	st := e.state
	m.mu.Unlock()
	if !save {
		return due
	}
	if err := m.store.StoreState(ctx, e.id, st); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("store renewal state", "cert", e.id, "error", err)
		}
		m.mu.Lock()
		e.dirty = true
		m.mu.Unlock()
	}
	return due
}

// dueLocked returns when e next needs attention: now if it has no
// certificate, else its renewal time or its next renewal information
// check, whichever comes first, but never before a pending retry time.
func (m *Manager) dueLocked(e *entry, now time.Time) time.Time {
	if !e.state.RetryAt.IsZero() && e.state.RetryAt.After(now) {
		return e.state.RetryAt
	}
	if e.cur.Load() == nil {
		return now
	}
	due := m.renewAtLocked(e)
	if c, ok := m.ariDueLocked(e, now); ok && c.Before(due) {
		return c
	}
	return due
}

// ariDueLocked returns when the CA should next be asked for e's renewal
// information (RFC 9773): at once for a certificate it was never asked
// about, once after every start, and otherwise when the last answer's
// Retry-After says. ok is false for a certificate without an ARI
// identifier.
func (m *Manager) ariDueLocked(e *entry, now time.Time) (at time.Time, ok bool) {
	if e.meta.ariID == "" {
		return time.Time{}, false
	}
	at = e.state.ARICheckAfter
	if e.state.ARIFor != e.meta.ariID {
		at = now
	}
	if !e.ariAfterStart.IsZero() && e.ariAfterStart.Before(at) {
		at = e.ariAfterStart
	}
	return at, true
}

// ariStartSlotLocked returns when a certificate loaded now should have
// its first renewal information check: the next free slot of a pace of
// one per ariStartPace.
func (m *Manager) ariStartSlotLocked(now time.Time) time.Time {
	next := m.ariSlot.Add(ariStartPace)
	if next.Before(now) {
		next = now
	}
	m.ariSlot = next
	return next
}

// renewAtLocked returns when e's certificate should be renewed: inside the
// CA's ARI window when it sent one for this certificate, otherwise by the
// lifetime rule. The random choice inside the window is drawn once per
// window and kept in state, so repeated checks do not drift.
func (m *Manager) renewAtLocked(e *entry) time.Time {
	var w *renewal.Window
	if e.state.ARIFor == e.meta.ariID && e.meta.ariID != "" && e.state.ARIEnd.After(e.state.ARIStart) {
		w = &renewal.Window{Start: e.state.ARIStart, End: e.state.ARIEnd}
	}
	if e.state.RenewAt.IsZero() || e.state.RenewFor != windowKey(e, w) {
		at := renewal.Due(e.meta.notBefore, e.meta.notAfter, w, jitter)
		// Whatever the CA suggests, never wait until less than a tenth of
		// the lifetime is left: there must be time to retry.
		if latest := e.meta.notAfter.Add(-e.meta.notAfter.Sub(e.meta.notBefore) / 10); at.After(latest) {
			at = latest
		}
		e.state.RenewAt = at
		e.state.RenewFor = windowKey(e, w)
	}
	return e.state.RenewAt
}

// windowKey identifies the certificate and window a renewal time was drawn
// for.
func windowKey(e *entry, w *renewal.Window) string {
	k := e.meta.ariID + "|" + e.meta.notAfter.UTC().Format(time.RFC3339)
	if w != nil {
		k += "|" + w.Start.UTC().Format(time.RFC3339) + "|" + w.End.UTC().Format(time.RFC3339)
	}
	return k
}
