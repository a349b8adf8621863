package tlspilot

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrRunning is returned by Run while another Run of the same Manager is
// under way.
var ErrRunning = errors.New("tlspilot: Run is already running for this Manager")

// Run renews certificates until ctx ends. One timer heap keyed by each
// certificate's next due time drives it: the earliest entry wakes the loop,
// so idle certificates cost nothing. Due certificates are worked on in a
// pool of Config.Workers. Run returns ctx's error after in-flight work has
// stopped, having closed its idle connections to the CA. What it leaves
// running is the listener of a Cert.Standalone whose challenge answers
// the CA may still fetch (an order interrupted mid-validation): the next
// order for that certificate closes it.
//
// One Run at a time drives a Manager: while one is under way, another
// returns ErrRunning at once and does nothing. Once the first has
// returned, Run may be called again. Several Managers, in one process or
// several, may each run on one storage: the storage's locks keep them
// from ordering a certificate twice.
func (m *Manager) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer m.running.Store(false) // after the in-flight work has stopped (wg.Wait, deferred below)
	// Then no connection to the CA is kept open for work that will not
	// come: a caller checking for leaked goroutines finds none.
	defer m.client.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.watch(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.deployLoop(ctx)
	}()
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
			if e := m.entries[id]; e != nil && e.start() {
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

// watch puts in service the certificates that other processes sharing
// the storage stored, as the changes record lists them (all managed
// certificates when it lost track). It reads the record at once when the
// storage tells of a change (storage.Watcher: a cluster node's renewal
// is served everywhere within milliseconds), and every
// Config.StoragePoll as the fallback for a missed notification. Each
// read also checks the storage (checkStorage); while it fails, the next
// comes after one second, doubling up to StoragePoll.
func (m *Manager) watch(ctx context.Context) {
	told := m.store.WatchChanges(ctx) // nil: never ready, polling alone
	t := time.NewTimer(m.cfg.StoragePoll)
	defer t.Stop()
	var retry time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-told:
			if !ok {
				told = nil
				continue
			}
		case <-t.C:
		}
		next := m.cfg.StoragePoll
		if m.catchUp(ctx) {
			retry = 0
		} else {
			retry = storageRetry(retry, m.cfg.StoragePoll)
			next = retry
		}
		t.Reset(next)
	}
}

// catchUp reads the changes record and puts in service the certificates
// changed since it was last read. It reports whether the storage
// answered.
func (m *Manager) catchUp(ctx context.Context) bool {
	ch, ok := m.checkStorage(ctx)
	if !ok {
		return false
	}
	if ch.Seq == 0 { // no record yet
		return true
	}
	m.mu.Lock()
	seen := m.changeSeq
	m.changeSeq = ch.Seq
	m.mu.Unlock()
	ids, complete := ch.Since(seen)
	for _, e := range m.changed(ids, complete) {
		if m.refresh(ctx, e) {
			m.reschedule(e, m.plan(ctx, e, false))
		}
	}
	return true
}

// changed returns the managed entries with the given ids, or all of them
// when the list is not complete.
func (m *Manager) changed(ids []string, complete bool) []*entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*entry
	if !complete {
		for _, e := range m.entries {
			out = append(out, e)
		}
		return out
	}
	for _, id := range ids {
		if e := m.entries[id]; e != nil {
			out = append(out, e)
		}
	}
	return out
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
	e.done(next)
	m.mu.Lock()
	if m.entries[e.id] == e {
		m.heap.Set(e.id, next)
	}
	m.mu.Unlock()
	m.poke()
}

// reschedule moves e's next pass to at, unless a pass is under way (it
// schedules the next itself when it ends).
func (m *Manager) reschedule(e *entry, at time.Time) {
	m.mu.Lock()
	if m.entries[e.id] == e && !e.snapshot().running {
		e.setNext(at)
		m.heap.Set(e.id, at)
	}
	m.mu.Unlock()
	m.poke()
}

// plan returns when e next needs attention and saves e's renewal state
// when it changed (a renewal time drawn, an answer about renewal
// information) or force is set, so that a restart keeps every due time
// instead of drawing it again.
func (m *Manager) plan(ctx context.Context, e *entry, force bool) time.Time {
	due, st, save := e.plan(time.Now(), force, jitter)
	if !save {
		return due
	}
	if err := m.store.StoreState(ctx, e.id, st); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("store renewal state", "cert", e.id, "error", err)
		}
		e.unsaved()
	}
	return due
}

// ariStartSlotLocked returns when a certificate loaded now should have
// its first renewal information check: the next free slot of a pace of
// one per ariStartPace. Callers hold m.mu.
func (m *Manager) ariStartSlotLocked(now time.Time) time.Time {
	next := m.ariSlot.Add(ariStartPace)
	if next.Before(now) {
		next = now
	}
	m.ariSlot = next
	return next
}

// ariStartSlot is ariStartSlotLocked taking m.mu.
func (m *Manager) ariStartSlot() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ariStartSlotLocked(time.Now())
}
