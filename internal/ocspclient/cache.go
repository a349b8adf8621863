package ocspclient

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
	"golang.org/x/sync/singleflight"

	"github.com/tlspilot/tlspilot/storage"
)

// CacheOptions configures a Cache.
type CacheOptions struct {
	// Storage keeps responses across restarts, under CertID.StorageKey;
	// nil keeps them in memory only.
	Storage storage.Storage
	// Fetch tells Refresh how to reach responders.
	Fetch Options
	// Logger receives a warning when a stored response cannot be read or
	// written; nil discards.
	Logger *slog.Logger
}

// Cache keeps verified OCSP responses per certificate (CertID) in memory
// and in storage, so a restart does not ask responders again while their
// answers are fresh. Every response it returns was verified by Parse
// against the leaf and issuer of that call at that moment, also one read
// back from storage. Its methods are safe for concurrent use; at most one
// fetch per certificate runs at a time (singleflight).
type Cache struct {
	opts  CacheOptions
	log   *slog.Logger
	group singleflight.Group
	fetch func(context.Context, Options, *x509.Certificate, *x509.Certificate) (*Response, error) // Fetch; a fake in tests

	mu  sync.Mutex
	mem map[CertID]*Response
}

// NewCache returns an empty Cache.
func NewCache(opts CacheOptions) *Cache {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{opts: opts, log: log, fetch: Fetch, mem: make(map[CertID]*Response)}
}

// record is what a Cache writes to storage: the response as the responder
// sent it, re-verified when read.
type record struct {
	Response []byte    `json:"response"`
	Fetched  time.Time `json:"fetched"`
}

// Cached returns the fresh response about leaf kept in memory or, after a
// restart, in storage, without asking the responder. The error wraps
// fs.ErrNotExist when there is none still fresh (or the stored one no
// longer verifies); other errors come from the storage.
func (c *Cache) Cached(ctx context.Context, leaf, issuer *x509.Certificate) (*Response, error) {
	id := IDOf(leaf, issuer)
	now := time.Now()
	c.mu.Lock()
	r := c.mem[id]
	if r != nil && !r.Fresh(now) {
		delete(c.mem, id)
		r = nil
	}
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	r, err := c.load(ctx, id, leaf, issuer, now)
	if err != nil {
		return nil, err
	}
	c.remember(r)
	return r, nil
}

// Latest is Cached, but also reads storage when memory holds a response:
// it returns the fresh response with the latest thisUpdate of the two,
// so a process sharing the storage with another that refreshed first
// takes that one up instead of asking the responder again. A storage
// failure is logged, and the memory's response returned if fresh.
func (c *Cache) Latest(ctx context.Context, leaf, issuer *x509.Certificate) (*Response, error) {
	mem, err := c.Cached(ctx, leaf, issuer)
	if err != nil || c.opts.Storage == nil {
		return mem, err // from storage already, or none anywhere
	}
	stored, err := c.load(ctx, mem.ID, leaf, issuer, time.Now())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("ocsp cache unreadable", "key", mem.ID.StorageKey(), "error", err)
		}
		return mem, nil
	}
	if stored.ThisUpdate.After(mem.ThisUpdate) {
		c.remember(stored)
		return stored, nil
	}
	return mem, nil
}

// load reads and re-verifies the stored response for id.
func (c *Cache) load(ctx context.Context, id CertID, leaf, issuer *x509.Certificate, now time.Time) (*Response, error) {
	if c.opts.Storage == nil {
		return nil, fmt.Errorf("ocsp cache %s: %w", id, fs.ErrNotExist)
	}
	data, err := c.opts.Storage.Load(ctx, id.StorageKey())
	if err != nil {
		return nil, fmt.Errorf("ocsp cache load: %w", err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		c.log.Warn("stored ocsp response unreadable", "key", id.StorageKey(), "error", err)
		return nil, fmt.Errorf("ocsp cache %s: %w", id, fs.ErrNotExist)
	}
	r, err := Parse(rec.Response, leaf, issuer, now)
	if err != nil {
		if !errors.Is(err, ErrStale) {
			c.log.Warn("stored ocsp response does not verify", "key", id.StorageKey(), "error", err)
		}
		return nil, fmt.Errorf("ocsp cache %s: %w (%w)", id, fs.ErrNotExist, err)
	}
	return r, nil
}

// Get returns the cached response about leaf while it is fresh, and
// otherwise fetches one (Refresh). It does not refresh a response that is
// fresh but past its RefreshAt: callers that keep responses current
// schedule Refresh themselves.
func (c *Cache) Get(ctx context.Context, leaf, issuer *x509.Certificate) (*Response, error) {
	r, err := c.Cached(ctx, leaf, issuer)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("ocsp cache unreadable, asking the responder", "error", err)
	}
	return c.Refresh(ctx, leaf, issuer)
}

// Refresh asks the responder about leaf (Fetch with CacheOptions.Fetch),
// keeps the verified answer (Put) and returns it. Concurrent calls for one
// certificate share one fetch; the fetch is bounded by Options.Timeout,
// not by the ctx of whichever caller started it, and a caller whose ctx
// ends stops waiting with ctx's error. A failed fetch leaves the cache as
// it was.
func (c *Cache) Refresh(ctx context.Context, leaf, issuer *x509.Certificate) (*Response, error) {
	id := IDOf(leaf, issuer)
	ch := c.group.DoChan(string(id), func() (any, error) {
		fctx := context.WithoutCancel(ctx)
		r, err := c.fetch(fctx, c.opts.Fetch, leaf, issuer)
		if err != nil {
			return nil, err
		}
		c.Put(fctx, r)
		return r, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Response), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("ocsp refresh: %w", ctx.Err())
	}
}

// Put keeps r, a response verified by Parse or Fetch, in memory and in
// storage, unless a response with a later thisUpdate is already kept in
// memory. A storage failure is logged, not returned: the response is
// still served from memory.
func (c *Cache) Put(ctx context.Context, r *Response) {
	if !c.remember(r) || c.opts.Storage == nil {
		return
	}
	data, err := json.Marshal(record{Response: r.Raw, Fetched: time.Now().UTC()})
	if err == nil {
		err = c.opts.Storage.Store(ctx, r.ID.StorageKey(), data)
	}
	if err != nil {
		c.log.Warn("ocsp response not stored", "key", r.ID.StorageKey(), "error", err)
	}
}

// remember keeps r in memory unless a newer one is there; it reports
// whether it did.
func (c *Cache) remember(r *Response) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.mem[r.ID]; old != nil && old.ThisUpdate.After(r.ThisUpdate) {
		return false
	}
	c.mem[r.ID] = r
	return true
}

// Forget drops the response about leaf from memory and storage, for a
// certificate no longer in use.
func (c *Cache) Forget(ctx context.Context, leaf, issuer *x509.Certificate) error {
	id := IDOf(leaf, issuer)
	c.mu.Lock()
	delete(c.mem, id)
	c.mu.Unlock()
	if c.opts.Storage == nil {
		return nil
	}
	if err := c.opts.Storage.Delete(ctx, id.StorageKey()); err != nil {
		return fmt.Errorf("ocsp cache forget: %w", err)
	}
	return nil
}

// StoredExpiry returns when the response in data, a record a Cache
// stored under CertID.StorageKey, goes stale (Response.Expires). It reads
// the response without verifying it, for removing records that no Cache
// can serve any more (tlspilot clean); an error means the record cannot
// be read at all.
func StoredExpiry(data []byte) (time.Time, error) {
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return time.Time{}, fmt.Errorf("ocsp record: %w", err)
	}
	r, err := ocsp.ParseResponse(rec.Response, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("ocsp record: %w", err)
	}
	return (&Response{ThisUpdate: r.ThisUpdate, NextUpdate: r.NextUpdate}).Expires(), nil
}
