package certstore

import (
	"context"
	"log/slog"
	"path"
	"sync"
	"time"
)

// listTimeout bounds one listing of an AnswerIndex.
const listTimeout = 10 * time.Second

// AnswerIndex tells whether any answer is stored for an http-01 token
// or a tls-alpn-01 identifier, for a process that did not present it
// itself: a node of a cluster that the CA reached while another node
// runs the order. It bounds what requests cost the storage whatever they
// ask for (made-up tokens, a flood of acme-tls/1 handshakes):
//
//   - a lookup waits for a listing of every stored answer of its kind
//     (one List) that started after the lookup did, so an answer stored
//     before the request arrived is always seen, never hidden by a stale
//     negative;
//   - listings run one at a time, at most one per interval, and every
//     lookup waiting shares the next one.
//
// So a flood costs the storage one List per interval, and a lookup waits
// at most about interval plus one List. It is safe for concurrent use.
type AnswerIndex struct {
	st       *Store
	prefix   string              // the folder listed
	dir      func(string) string // token or identifier → its answers' folder
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	last    *listing // the latest listing done
	next    *listing // the listing under way or about to start, nil if none
	failing bool     // the last listing failed (logged once)
}

// listing is one List of an AnswerIndex's folder.
type listing struct {
	started time.Time       // set under AnswerIndex.mu when List is called
	dirs    map[string]bool // folders holding at least one answer
	err     error
	done    chan struct{} // closed when dirs and err are set
}

// HTTP01Index returns an AnswerIndex of http-01 answers listing at most
// once per interval; log (nil: discard) hears when listing starts and
// stops failing.
func (st *Store) HTTP01Index(interval time.Duration, log *slog.Logger) *AnswerIndex {
	return st.newIndex("challenges/http-01", httpDir, interval, log)
}

// TLSALPN01Index is HTTP01Index for tls-alpn-01 answers, by identifier.
func (st *Store) TLSALPN01Index(interval time.Duration, log *slog.Logger) *AnswerIndex {
	return st.newIndex("challenges/tls-alpn-01", alpnDir, interval, log)
}

func (st *Store) newIndex(prefix string, dir func(string) string, interval time.Duration, log *slog.Logger) *AnswerIndex {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AnswerIndex{st: st, prefix: prefix, dir: dir, interval: interval, log: log}
}

// Has reports whether an answer for key (a token or an identifier) was
// stored, by any process, before Has was called; an error if the storage
// could not be listed or ctx ended first.
func (ix *AnswerIndex) Has(ctx context.Context, key string) (bool, error) {
	arrived := time.Now()
	dir := ix.dir(key)
	for {
		ix.mu.Lock()
		if l := ix.last; l != nil && !l.started.Before(arrived) {
			ix.mu.Unlock()
			return l.dirs[dir], l.err
		}
		l := ix.next
		if l == nil {
			l = &listing{done: make(chan struct{})}
			ix.next = l
			var after time.Time
			if ix.last != nil {
				after = ix.last.started.Add(ix.interval)
			}
			go ix.run(l, after)
		}
		ix.mu.Unlock()
		select {
		case <-l.done:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// run waits until after, then lists the folder into l and publishes it.
func (ix *AnswerIndex) run(l *listing, after time.Time) {
	if d := time.Until(after); d > 0 {
		time.Sleep(d)
	}
	ix.mu.Lock()
	l.started = time.Now()
	ix.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	keys, err := ix.st.s.List(ctx, ix.prefix)
	cancel()
	l.dirs, l.err = make(map[string]bool, len(keys)), err
	for _, k := range keys {
		l.dirs[path.Dir(k)] = true
	}
	ix.mu.Lock()
	ix.last, ix.next = l, nil
	switch {
	case err != nil && !ix.failing:
		ix.log.Warn("list stored challenge answers", "prefix", ix.prefix, "error", err)
	case err == nil && ix.failing:
		ix.log.Info("listing stored challenge answers again", "prefix", ix.prefix)
	}
	ix.failing = err != nil
	ix.mu.Unlock()
	close(l.done)
}
