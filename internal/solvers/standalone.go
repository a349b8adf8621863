package solvers

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
)

// Standalone presents answers through an inner solver and, for owners
// that have a standalone address, also opens a listener of its own on
// that address, serving the answers, only while the owner has answers
// presented: the listener is opened by the first Present and closed by
// the CleanUp of the last answer presented on it.
type Standalone struct {
	inner  Solver
	addrOf func(owner string) string // "" for owners answered elsewhere
	serve  func(l net.Listener) (stop func())

	mu   sync.Mutex
	open map[string]*standaloneListener // address -> listener
}

// standaloneListener is one open listener and the answers it is for.
type standaloneListener struct {
	stop    func()
	holders map[string]bool // owner and token
}

// NewStandalone returns a solver presenting through inner, and serving
// answers with serve on a listener of its own at addrOf(owner) for owners
// with an address. serve starts serving on the listener and returns a
// function that stops and closes it. The solver implements Exclusive when
// inner does.
func NewStandalone(inner Solver, addrOf func(owner string) string, serve func(l net.Listener) (stop func())) Solver {
	s := &Standalone{inner: inner, addrOf: addrOf, serve: serve, open: make(map[string]*standaloneListener)}
	if x, ok := inner.(Exclusive); ok {
		return &standaloneExclusive{Standalone: s, x: x}
	}
	return s
}

// Present presents ch through the inner solver, then makes sure the
// owner's listener is open.
func (s *Standalone) Present(ctx context.Context, ch acmeclient.Challenge) error {
	if err := s.inner.Present(ctx, ch); err != nil {
		return err
	}
	addr := s.addrOf(ownerOf(ctx))
	if addr == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.open[addr]
	if sl == nil {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s for %s: standalone listener: %w", ch.Type, ch.Identifier.Value, err)
		}
		sl = &standaloneListener{stop: s.serve(l), holders: make(map[string]bool)}
		s.open[addr] = sl
	}
	sl.holders[answerKey(ctx, ch)] = true
	return nil
}

// CleanUp drops the answer from the listener it was presented on,
// closing it when it serves no answer any more, and cleans up through
// the inner solver. The listener is found by the answer, not by the
// owner's address now, which may have changed since Present (its
// certificate managed again with another address, or none).
func (s *Standalone) CleanUp(ctx context.Context, ch acmeclient.Challenge) error {
	key := answerKey(ctx, ch)
	s.mu.Lock()
	for addr, sl := range s.open {
		if !sl.holders[key] {
			continue
		}
		delete(sl.holders, key)
		if len(sl.holders) == 0 {
			sl.stop()
			delete(s.open, addr)
		}
	}
	s.mu.Unlock()
	return s.inner.CleanUp(ctx, ch)
}

// standaloneExclusive is a Standalone whose inner solver is Exclusive.
type standaloneExclusive struct {
	*Standalone
	x Exclusive
}

// Exclusive is the inner solver's.
func (s *standaloneExclusive) Exclusive(ctx context.Context, chs []acmeclient.Challenge) (func(), error) {
	return s.x.Exclusive(ctx, chs)
}

var (
	_ Solver    = (*Standalone)(nil)
	_ Exclusive = (*standaloneExclusive)(nil)
)
