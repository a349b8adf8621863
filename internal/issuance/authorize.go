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

// authorize proves control of every identifier of o not yet valid. It
// looks at each authorization's and challenge's own state (authzStep): a
// pending challenge is answered, presented and accepted; one the CA is
// already validating (an order resumed after a stop, or an accept whose
// reply was lost) is presented again and waited for, never accepted a
// second time. All challenges are presented first, then waited for
// (dns-01 propagation), then accepted together, so an order with many
// names costs one round of waiting, not one per name.
func (f *Flow) authorize(ctx context.Context, req Request, p *certstore.Progress, o acmeclient.Order) error {
	authzs, err := f.getAuthzs(ctx, o.Authorizations)
	if err != nil {
		return err
	}
	tasks, dead, err := plan(authzs, req.Names, req.Challenge)
	if dead {
		// The order can never complete: forget it, so that the next
		// attempt places a new one.
		f.discard(ctx, req.ID, *p)
	}
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		return nil
	}
	release, err := f.exclusive(ctx, tasks)
	if err != nil {
		return err
	}
	defer release() // after the clean-up
	// Record what is presented before presenting it, so that a restart
	// can present it again or clean it up.
	if err := f.record(ctx, req.ID, p, tasks); err != nil {
		return err
	}
	ans := newAnswers(authzs)
	defer f.cleanup(ctx, req.ID, p, ans)
	f.step(StepPresenting)
	if err := f.present(ctx, tasks); err != nil {
		return err
	}
	f.step(StepValidating)
	if err := each(ctx, len(tasks), acceptLimit, func(i int) error {
		if !tasks[i].accept {
			return nil
		}
		ans.ask(tasks[i].ch.Token)
		return f.accept(ctx, tasks[i])
	}); err != nil {
		return err
	}
	// The CA validates in parallel, so waiting costs one round, not one
	// per name.
	return each(ctx, len(tasks), waitLimit, func(i int) error {
		t := tasks[i]
		got, err := f.Client.WaitAuthz(ctx, f.Account, acmeclient.Authz{URL: t.authz, Identifier: t.ch.Identifier})
		ans.settle(got)
		if f.OnChallenge != nil && ctx.Err() == nil && (err == nil || acmeclient.ClassOf(err) == acmeclient.BadOrder) {
			f.OnChallenge(t.ch.Type, err == nil)
		}
		return err
	})
}

// task is one authorization of an order that still needs us.
type task struct {
	authz  string // the authorization's URL
	ch     acmeclient.Challenge
	accept bool // the CA must still be asked to validate ch (stepAnswer)
}

// plan turns the CA's view of an order's authorizations into tasks. An
// authorization that failed, or that is for none of names (checkAuthz),
// makes the order dead, before any task is made; one that offers no
// challenge of type typ fails this attempt.
func plan(authzs []acmeclient.Authz, names []string, typ string) (tasks []task, dead bool, err error) {
	for _, a := range authzs {
		if err := checkAuthz(a, names); err != nil {
			return nil, true, err
		}
	}
	for _, a := range authzs {
		st, ch := authzStep(a, typ)
		switch st {
		case stepSkip:
			continue
		case stepNewOrder:
			if a.Problem != nil {
				return nil, true, a.Problem
			}
			return nil, true, &acmeclient.Error{Op: "authorize " + a.Identifier.Value, Class: acmeclient.BadOrder,
				Err: fmt.Errorf("authorization is %s", a.Status)}
		case stepNoChallenge:
			return nil, false, &acmeclient.Error{Op: "authorize " + a.Identifier.Value, Class: acmeclient.BadOrder,
				Err: fmt.Errorf("the CA offers no %s challenge for %s", typ, a.Identifier.Value)}
		}
		tasks = append(tasks, task{authz: a.URL, ch: ch, accept: st == stepAnswer})
	}
	return tasks, false, nil
}

// getAuthzs fetches the authorizations at urls.
func (f *Flow) getAuthzs(ctx context.Context, urls []string) ([]acmeclient.Authz, error) {
	authzs := make([]acmeclient.Authz, len(urls))
	err := each(ctx, len(urls), acceptLimit, func(i int) error {
		a, err := f.Client.GetAuthz(ctx, f.Account, urls[i])
		authzs[i] = a
		return err
	})
	return authzs, err
}

// present makes every task's answer available, then waits until the
// solver says the CA can see the answers it is about to be asked for. An
// answer the CA is already validating is presented again by the solver of
// its own type: a resumed process must serve what the stopped one
// presented.
func (f *Flow) present(ctx context.Context, tasks []task) error {
	for _, t := range tasks {
		if _, ok := f.Solvers[t.ch.Type]; !ok && t.accept {
			return fmt.Errorf("no solver for %s", t.ch.Type)
		}
	}
	if err := each(ctx, len(tasks), acceptLimit, func(i int) error {
		ch := tasks[i].ch
		solver, ok := f.Solvers[ch.Type]
		if !ok {
			return nil // validated by another configuration; only waited for
		}
		if err := solver.Present(ctx, ch); err != nil {
			return fmt.Errorf("present %s for %s: %w", ch.Type, ch.Identifier.Value, err)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, t := range tasks {
		if _, ok := f.Solvers[t.ch.Type].(solvers.Waiter); ok && t.accept {
			f.step(StepDNS)
			break
		}
	}
	return each(ctx, len(tasks), waitLimit, func(i int) error {
		if w, ok := f.Solvers[tasks[i].ch.Type].(solvers.Waiter); ok && tasks[i].accept {
			start := time.Now()
			err := w.Wait(ctx, tasks[i].ch)
			if err == nil && f.OnPropagation != nil {
				f.OnPropagation(time.Since(start))
			}
			return err
		}
		return nil
	})
}

// accept asks the CA to validate t's challenge. When the request fails
// but the CA shows the challenge taken up (an earlier request whose reply
// was lost, so that this one is refused with "Cannot update challenge with
// status processing"), the CA is validating it: accept returns nil and the
// caller waits, as for any accepted challenge.
func (f *Flow) accept(ctx context.Context, t task) error {
	err := f.Client.Accept(ctx, f.Account, t.ch)
	if err == nil || ctx.Err() != nil {
		return err
	}
	a, gerr := f.Client.GetAuthz(ctx, f.Account, t.authz)
	if gerr != nil || !accepted(a, t.ch) {
		return err
	}
	f.Log.Info("challenge already accepted; waiting for the CA", "identifier", t.ch.Identifier.Value,
		"authz_status", a.Status, "error", err)
	return nil
}

// Concurrency of the calls to the CA for one order: requests that change
// state, and polls (cheap, mostly waiting).
const (
	acceptLimit = 8
	waitLimit   = 64
)

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
