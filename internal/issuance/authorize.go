package issuance

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/solvers"
)

// authorize proves control of every pending identifier of o. All
// challenges are presented first, then waited for (dns-01 propagation),
// then accepted together, so an order with many names costs one round of
// waiting, not one per name.
func (f *Flow) authorize(ctx context.Context, req Request, p *certstore.Progress, o acmeclient.Order) error {
	authzs := make([]acmeclient.Authz, len(o.Authorizations))
	err := each(ctx, len(authzs), acceptLimit, func(i int) error {
		a, err := f.Client.GetAuthz(ctx, f.Account, o.Authorizations[i])
		authzs[i] = a
		return err
	})
	if err != nil {
		return err
	}
	var chs []acmeclient.Challenge
	for _, a := range authzs {
		switch a.Status {
		case "valid":
			continue
		case "pending":
		default:
			if a.Problem != nil {
				return a.Problem
			}
			return &acmeclient.Error{Op: "authorize " + a.Identifier.Value, Class: acmeclient.BadOrder,
				Err: fmt.Errorf("authorization is %s", a.Status)}
		}
		ch, ok := pick(a, req.Challenge)
		if !ok {
			return &acmeclient.Error{Op: "authorize " + a.Identifier.Value, Class: acmeclient.BadOrder,
				Err: fmt.Errorf("the CA offers no %s challenge for %s", req.Challenge, a.Identifier.Value)}
		}
		chs = append(chs, ch)
	}
	if len(chs) == 0 {
		return nil
	}
	solver, ok := f.Solvers[req.Challenge]
	if !ok {
		return fmt.Errorf("no solver for %s", req.Challenge)
	}
	// Record what is presented before presenting it, so that a restart can
	// clean up after a crash.
	for _, ch := range chs {
		p.Challenges = append(p.Challenges, certstore.Challenge{Type: ch.Type, Identifier: ch.Identifier.Value, Token: ch.Token, KeyAuth: ch.KeyAuthorization})
	}
	if err := f.Store.StoreProgress(ctx, req.ID, *p); err != nil {
		return fmt.Errorf("save order progress: %w", err)
	}
	defer f.cleanup(ctx, req.ID, p)
	if err := each(ctx, len(chs), acceptLimit, func(i int) error {
		if err := solver.Present(ctx, chs[i]); err != nil {
			return fmt.Errorf("present %s for %s: %w", chs[i].Type, chs[i].Identifier.Value, err)
		}
		return nil
	}); err != nil {
		return err
	}
	if w, ok := solver.(solvers.Waiter); ok {
		if err := each(ctx, len(chs), waitLimit, func(i int) error { return w.Wait(ctx, chs[i]) }); err != nil {
			return err
		}
	}
	// Accept every challenge, then wait for all of them together: the CA
	// validates them in parallel, so waiting costs one round, not one per
	// name.
	if err := each(ctx, len(chs), acceptLimit, func(i int) error {
		return f.Client.Accept(ctx, f.Account, chs[i])
	}); err != nil {
		return err
	}
	return each(ctx, len(chs), waitLimit, func(i int) error {
		byURL := acmeclient.Authz{URL: authzURL(authzs, chs[i]), Identifier: chs[i].Identifier}
		_, err := f.Client.WaitAuthz(ctx, f.Account, byURL)
		return err
	})
}

// Concurrency of the calls to the CA for one order: requests that change
// state, and polls (cheap, mostly waiting).
const (
	acceptLimit = 8
	waitLimit   = 64
)

// cleanup removes every answer the progress records as presented (those
// of this run and any left by a stopped one), also when ctx has ended.
func (f *Flow) cleanup(ctx context.Context, id string, p *certstore.Progress) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	f.cleanupRecorded(cctx, *p)
	p.Challenges = nil
	if err := f.Store.StoreProgress(cctx, id, *p); err != nil {
		f.Log.Warn("save order progress", "cert", id, "error", err)
	}
}

// cleanupRecorded removes answers a saved progress says were presented,
// concurrently, so that a solver that batches (dns-01) removes them in few
// messages.
func (f *Flow) cleanupRecorded(ctx context.Context, p certstore.Progress) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var todo []certstore.Challenge
	done := make(map[certstore.Challenge]bool, len(p.Challenges))
	for _, c := range p.Challenges {
		if _, ok := f.Solvers[c.Type]; ok && !done[c] {
			done[c] = true
			todo = append(todo, c)
		}
	}
	_ = each(cctx, len(todo), waitLimit, func(i int) error {
		c := todo[i]
		ch := acmeclient.Challenge{Type: c.Type, Token: c.Token, KeyAuthorization: c.KeyAuth,
			Identifier: acmeclient.Identifier{Type: identifierType(c.Identifier), Value: c.Identifier}}
		if err := f.Solvers[c.Type].CleanUp(cctx, ch); err != nil {
			f.Log.Warn("clean up challenge", "type", c.Type, "identifier", c.Identifier, "error", err)
		}
		return nil
	})
}

func authzURL(authzs []acmeclient.Authz, ch acmeclient.Challenge) string {
	for _, a := range authzs {
		for _, c := range a.Challenges {
			if c.URL == ch.URL {
				return a.URL
			}
		}
	}
	return ""
}

func pick(a acmeclient.Authz, typ string) (acmeclient.Challenge, bool) {
	for _, ch := range a.Challenges {
		if ch.Type == typ {
			return ch, true
		}
	}
	return acmeclient.Challenge{}, false
}

// each runs fn(0..n-1), at most limit at a time, and returns the first
// error; the others still finish.
func each(ctx context.Context, n, limit int, fn func(i int) error) error {
	sem := make(chan struct{}, limit)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range n {
		if err := ctx.Err(); err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func identifierType(v string) string {
	if net.ParseIP(v) != nil {
		return "ip"
	}
	return "dns"
}
