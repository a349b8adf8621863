package issuance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/solvers"
)

// An answer is removed only once the CA is done with its challenge. A
// stop at any moment (a kill, a cancelled context, a lost lock, a failed
// step) leaves the answers the CA may still fetch presented and recorded
// in the order's progress; the next Obtain for the certificate presents
// them again, waits for the CA and removes them when their authorization
// is final. An answer whose challenge the CA was never asked to validate
// (the attempt failed before: a propagation timeout, a refused update, a
// failed hook) is removed when the attempt ends, as the CA never fetches
// it; the next attempt presents it again. Discarding an order that can
// never complete removes its answers at once: nothing can come of their
// validations.

// answers follows, during one authorize call, which authorization each
// answer belongs to and which answers the CA is done with. It is safe for
// concurrent use.
type answers struct {
	mu      sync.Mutex
	authzOf map[string]string // token → authorization URL
	done    map[string]bool   // token → settled: the CA will not fetch it again
	idle    map[string]bool   // token → pending at the CA in the latest view: not being validated
	asked   map[string]bool   // token → this attempt asked the CA to validate it
}

// newAnswers starts from the CA's view of the order's authorizations.
func newAnswers(authzs []acmeclient.Authz) *answers {
	s := &answers{authzOf: make(map[string]string), done: make(map[string]bool),
		idle: make(map[string]bool), asked: make(map[string]bool)}
	for _, a := range authzs {
		s.settle(a)
	}
	return s
}

// settle takes in a newer view of authorization a.
func (s *answers) settle(a acmeclient.Authz) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range a.Challenges {
		s.authzOf[ch.Token] = a.URL
		if settled(a, ch) {
			s.done[ch.Token] = true
		}
		s.idle[ch.Token] = idle(a, ch)
	}
}

// ask notes that the CA is about to be asked to validate token: from now
// on a pending state may hide a request that reached the CA unseen.
func (s *answers) ask(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked[token] = true
}

// unknown notes that the state of authorization url could not be
// learnt: its answers are kept, whatever an earlier view said (an idle
// challenge then may have been asked for since, by another process).
func (s *answers) unknown(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for token, u := range s.authzOf {
		if u == url {
			s.idle[token] = false
		}
	}
}

// unsettled returns the authorizations to ask the CA about before the
// recorded answers can be sorted. An answer that belongs to none of the
// order's authorizations is settled: the CA never asks for it.
func (s *answers) unsettled(recorded []certstore.Challenge) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var urls []string
	for _, c := range recorded {
		u, ok := s.authzOf[c.Token]
		switch {
		case !ok:
			s.done[c.Token] = true
		case !s.done[c.Token] && !slices.Contains(urls, u):
			urls = append(urls, u)
		}
	}
	return urls
}

// unneeded reports whether the CA will not fetch token's answer: it is
// done with it, or the answer's challenge is pending and this attempt
// never asked for its validation (so no one did: the order is ours, under
// its lock, and a request sent by an earlier process would show). One race
// remains: a CA that hands one pending authorization to two certificates
// ordered by two processes; if the other asks for its validation between
// cleanup's look at the CA and the removal, the shared record (one value,
// one record) goes, that validation fails and its order is retried.
func (s *answers) unneeded(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[token] || s.idle[token] && !s.asked[token]
}

// record adds the answers of tasks to the progress and saves it.
func (f *Flow) record(ctx context.Context, id string, p *certstore.Progress, tasks []task) error {
	for _, t := range tasks {
		c := certstore.Challenge{Type: t.ch.Type, Identifier: t.ch.Identifier.Value, Token: t.ch.Token, KeyAuth: t.ch.KeyAuthorization}
		if !slices.Contains(p.Challenges, c) {
			p.Challenges = append(p.Challenges, c)
		}
	}
	if err := f.Store.StoreProgress(ctx, id, *p); err != nil {
		return fmt.Errorf("save order progress: %w", err)
	}
	return nil
}

// cleanup removes the recorded answers the CA will not fetch (unneeded)
// and keeps the others recorded. It runs when authorize returns, also
// after ctx ended: it asks the CA about every answer whose authorization
// it has not seen final, and keeps an answer whose challenge is
// processing, or pending after this attempt asked for its validation, or
// of an authorization whose state it could not learn.
func (f *Flow) cleanup(ctx context.Context, id string, p *certstore.Progress, ans *answers) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	urls := ans.unsettled(p.Challenges)
	_ = each(cctx, len(urls), waitLimit, func(i int) error {
		a, err := f.Client.GetAuthz(cctx, f.Account, urls[i])
		if err != nil {
			ans.unknown(urls[i])
			f.Log.Warn("keeping challenge answers: authorization state unknown", "cert", id, "authz", urls[i], "error", err)
			return nil
		}
		ans.settle(a)
		return nil
	})
	var gone, kept []certstore.Challenge
	for _, c := range p.Challenges {
		if ans.unneeded(c.Token) {
			gone = append(gone, c)
		} else {
			kept = append(kept, c)
		}
	}
	if len(kept) > 0 {
		f.Log.Info("keeping challenge answers the CA may still fetch", "cert", id, "count", len(kept))
	}
	if len(gone) == 0 {
		return
	}
	f.keepLeft(cctx, id, f.cleanupRecorded(cctx, id, gone))
	p.Challenges = kept
	if err := f.Store.StoreProgress(cctx, id, *p); err != nil {
		f.Log.Warn("save order progress", "cert", id, "error", err)
	}
}

// cleanupRecorded is removeRecorded going on after ctx ended, for at most
// 30 seconds: the answers of the order in hand.
func (f *Flow) cleanupRecorded(ctx context.Context, id string, chs []certstore.Challenge) []certstore.Challenge {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return f.removeRecorded(cctx, id, chs)
}

// removeRecorded removes recorded answers under ctx, concurrently, so that
// a solver that batches (dns-01) removes them in few messages. It returns
// the answers it could not remove: those whose removal failed, and those
// of a type no solver is configured for now (a certificate moved off
// dns-01), logged at WARN with where they are so that an operator can
// remove them. The caller keeps them (keepLeft) and tries them again
// (Sweep), so the solvers are told not to retry them in the background
// (solvers.WithoutRetry): such a retry, outside the issue lock, could
// remove the answer after another process presented it again.
func (f *Flow) removeRecorded(ctx context.Context, id string, chs []certstore.Challenge) []certstore.Challenge {
	cctx := solvers.WithoutRetry(ctx)
	var todo, left []certstore.Challenge
	for _, c := range chs {
		switch _, ok := f.Solvers[c.Type]; {
		case slices.Contains(todo, c) || slices.Contains(left, c):
		case ok:
			todo = append(todo, c)
		default:
			name, value := Where(c)
			f.Log.Warn("cannot remove challenge answer: no "+c.Type+" solver configured now; it is kept recorded and removed once one is, or remove it by hand",
				"cert", id, "type", c.Type, "identifier", c.Identifier, "record", name, "value", value)
			left = append(left, c)
		}
	}
	removed := make([]bool, len(todo)) // false also for those each never started, ctx ended
	_ = each(cctx, len(todo), waitLimit, func(i int) error {
		c := todo[i]
		ch := acmeclient.Challenge{Type: c.Type, Token: c.Token, KeyAuthorization: c.KeyAuth,
			Identifier: acmeclient.Identifier{Type: identifierType(c.Identifier), Value: c.Identifier}}
		if err := f.Solvers[c.Type].CleanUp(cctx, ch); err != nil {
			name, value := Where(c)
			f.Log.Warn("clean up challenge", "cert", id, "type", c.Type, "identifier", c.Identifier,
				"record", name, "value", value, "error", err)
			return nil
		}
		removed[i] = true
		return nil
	})
	for i, c := range todo {
		if !removed[i] {
			left = append(left, c)
		}
	}
	return left
}
