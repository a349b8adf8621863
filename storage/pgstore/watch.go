package pgstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/storage"
)

// notifyChannel is the NOTIFY channel on which every Store and Delete
// tells the key it changed, as the payload.
const notifyChannel = "tlspilot_kv"

// Timing of the listening connection.
const (
	// listenRetryMin and listenRetryMax bound the backoff between
	// attempts to get the listening connection back (plus up to 20%
	// jitter).
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
	// listenConnectTimeout bounds one attempt to connect and LISTEN.
	listenConnectTimeout = 10 * time.Second
	// listenIdle is how long the listening connection may stay silent
	// before it is pinged: a database that vanished without closing the
	// connection (a partition) is noticed within listenIdle+listenPing.
	listenIdle = 30 * time.Second
	listenPing = 5 * time.Second
)

// hub hands what the listening connection hears to the watchers. Its
// mutex guards every send on and the close of a watcher's channel.
type hub struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	started  bool // the listening goroutine runs
	closed   bool // the Store is closed: Watch returns closed channels
}

// watcher is one Watch call.
type watcher struct {
	key string
	ch  chan struct{}
}

// tell wakes w without blocking. Callers hold hub.mu.
func (w *watcher) tell() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// Watch implements storage.Watcher. Every Store and Delete, by any node,
// sends a notification on commit (NOTIFY tlspilot_kv, the key as
// payload); one connection per Store, opened at the first Watch and kept
// apart from the pool, LISTENs and wakes the watchers of that key. The
// channel also receives a value when that connection is lost, after each
// failed attempt to get it back, and when it is back (notifications sent
// meanwhile are lost). It reconnects in the background with exponential
// backoff from 100 ms to 5 s, and
// pings the database after 30 s of silence, so a partition is noticed
// within 35 s. The channel is closed when ctx ends or Close is called.
func (s *Store) Watch(ctx context.Context, key string) <-chan struct{} {
	w := &watcher{key: key, ch: make(chan struct{}, 1)}
	h := &s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(w.ch)
		return w.ch
	}
	if h.watchers == nil {
		h.watchers = make(map[*watcher]struct{})
	}
	h.watchers[w] = struct{}{}
	if !h.started {
		h.started = true
		s.bg.Add(1)
		go s.listen()
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-s.ctx.Done():
		}
		h.mu.Lock()
		if _, ok := h.watchers[w]; ok {
			delete(h.watchers, w)
			close(w.ch)
		}
		h.mu.Unlock()
	}()
	return w.ch
}

// tell wakes the watchers of key, or every watcher if key is "".
func (h *hub) tell(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if key == "" || w.key == key {
			w.tell()
		}
	}
}

// close closes every watcher's channel; later Watch calls get closed
// channels.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for w := range h.watchers {
		delete(h.watchers, w)
		close(w.ch)
	}
}

// listen keeps a listening connection until the Store is closed,
// reconnecting with backoff, and wakes every watcher when the connection
// is lost and when it is back.
func (s *Store) listen() {
	defer s.bg.Done()
	var retry time.Duration
	lost := false // the loss was logged
	for s.ctx.Err() == nil {
		err := s.listenOnce(func() {
			if lost {
				s.log.Info("pgstore: listening for changes again")
			}
			lost, retry = false, 0
			s.hub.tell("")
		})
		if s.ctx.Err() != nil {
			return
		}
		if !lost {
			s.log.Warn("pgstore: listening for changes failed; retrying with backoff", "error", err)
			lost = true
		}
		// Told at every loss and failed attempt: a watcher that read the
		// database just as it went away, and found it still there, reads
		// again and finds out.
		s.hub.tell("")
		retry = min(max(retry*2, listenRetryMin), listenRetryMax)
		t := time.NewTimer(retry + rand.N(retry/5+1))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listenOnce connects, LISTENs, calls up, and passes notifications to
// the watchers until the connection fails or the Store is closed.
func (s *Store) listenOnce(up func()) error {
	ctx, cancel := context.WithTimeout(s.ctx, listenConnectTimeout)
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err == nil {
		_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
	}
	cancel()
	if conn != nil {
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = conn.Close(cctx)
		}()
	}
	if err != nil {
		return err
	}
	up()
	for {
		wctx, cancel := context.WithTimeout(s.ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			s.hub.tell(n.Payload)
			continue
		case s.ctx.Err() != nil:
			return err
		case !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed():
			return err
		}
		pctx, cancel := context.WithTimeout(s.ctx, listenPing)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

var _ storage.Watcher = (*Store)(nil)
