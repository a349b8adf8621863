package solvers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
)

// Backoff of the removals retried in the background.
const (
	retryMin    = time.Second
	retryMax    = 5 * time.Minute
	retryGiveUp = 24 * time.Hour
)

// retrier removes, again and again with backoff, the records whose
// removal failed, until they are gone or a day has passed.
type retrier struct {
	locate  func(ctx context.Context, k recordKey) (dns01.Record, error)
	cleanUp func(ctx context.Context, recs []dns01.Record) error
	log     *slog.Logger

	mu      sync.Mutex
	items   map[recordKey]*retryItem
	running bool
}

type retryItem struct {
	rec   dns01.Record // zero until located
	since time.Time
}

// add puts a record on the list; rec may be zero if it was not located.
func (r *retrier) add(k recordKey, rec dns01.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.items == nil {
		r.items = make(map[recordKey]*retryItem)
	}
	it := r.items[k]
	if it == nil {
		it = &retryItem{since: time.Now()}
		r.items[k] = it
	}
	if rec.FQDN != "" {
		it.rec = rec
	}
	if !r.running {
		r.running = true
		go r.loop()
	}
}

// cancel takes a record off the list, because it is being presented
// again and its new CleanUp will remove it. It reports whether the record
// was on the list, and where it was if known.
func (r *retrier) cancel(k recordKey) (dns01.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	it, ok := r.items[k]
	if !ok {
		return dns01.Record{}, false
	}
	delete(r.items, k)
	return it.rec, true
}

// pending returns how many records wait for removal.
func (r *retrier) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

func (r *retrier) loop() {
	delay := retryMin
	for attempt := 1; ; attempt++ {
		time.Sleep(delay)
		delay = min(2*delay, retryMax)
		items := r.snapshot()
		if len(items) == 0 {
			return
		}
		r.try(items, attempt, delay)
	}
}

// snapshot returns the records to retry, or marks the loop stopped.
func (r *retrier) snapshot() map[recordKey]retryItem {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.items) == 0 {
		r.running = false
		return nil
	}
	out := make(map[recordKey]retryItem, len(r.items))
	for k, it := range r.items {
		out[k] = *it
	}
	return out
}

// try removes items in one provider call; those removed, or too old, leave
// the list.
func (r *retrier) try(items map[recordKey]retryItem, attempt int, next time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	var recs []dns01.Record
	var keys []recordKey
	var err error
	for k, it := range items {
		if it.rec.FQDN == "" {
			if it.rec, err = r.locate(ctx, k); err != nil {
				continue
			}
		}
		recs = append(recs, it.rec)
		keys = append(keys, k)
	}
	if len(recs) > 0 {
		err = r.cleanUp(ctx, recs)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		for _, k := range keys {
			delete(r.items, k)
		}
		r.log.Info("removed dns-01 records left behind", "records", len(keys), "attempt", attempt)
		return
	}
	r.log.Warn("remove dns-01 records left behind", "records", len(items), "attempt", attempt,
		"retry_in", next, "error", err)
	for k, it := range r.items {
		if time.Since(it.since) > retryGiveUp {
			r.log.Error("giving up removing a dns-01 record", "record", k.domain, "error", err)
			delete(r.items, k)
		}
	}
}
