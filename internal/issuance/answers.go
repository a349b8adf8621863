package issuance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
)

// An answer is removed only once the CA is done with its challenge. A
// stop at any moment (a kill, a cancelled context, a lost lock, a failed
// step) leaves the answers the CA may still fetch presented and recorded
// in the order's progress; the next Obtain for the certificate presents
// them again, waits for the CA and removes them when their authorization
// is final. Discarding an order that can never complete removes its
// answers at once: nothing can come of their validations.

// answers follows, during one authorize call, which authorization each
// answer belongs to and which answers the CA is done with. It is safe for
// concurrent use.
type answers struct {
	mu      sync.Mutex
	authzOf map[string]string // token → authorization URL
	done    map[string]bool   // token → settled: the CA will not fetch it again
}

// newAnswers starts from the CA's view of the order's authorizations.
func newAnswers(authzs []acmeclient.Authz) *answers {
	s := &answers{authzOf: make(map[string]string), done: make(map[string]bool)}
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

// isDone reports whether the CA is known to be done with token.
func (s *answers) isDone(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[token]
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

// cleanup removes the recorded answers the CA is done with and keeps the
// others recorded. It runs when authorize returns, also after ctx ended:
// it asks the CA about every answer whose authorization it has not seen
// final, and keeps an answer whose challenge is pending or processing, or
// whose state it could not learn.
func (f *Flow) cleanup(ctx context.Context, id string, p *certstore.Progress, ans *answers) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	urls := ans.unsettled(p.Challenges)
	_ = each(cctx, len(urls), waitLimit, func(i int) error {
		a, err := f.Client.GetAuthz(cctx, f.Account, urls[i])
		if err != nil {
			f.Log.Warn("keeping challenge answers: authorization state unknown", "cert", id, "authz", urls[i], "error", err)
			return nil
		}
		ans.settle(a)
		return nil
	})
	var gone, kept []certstore.Challenge
	for _, c := range p.Challenges {
		if ans.isDone(c.Token) {
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
	f.cleanupRecorded(cctx, gone)
	p.Challenges = kept
	if err := f.Store.StoreProgress(cctx, id, *p); err != nil {
		f.Log.Warn("save order progress", "cert", id, "error", err)
	}
}

// cleanupRecorded removes recorded answers, concurrently, so that a
// solver that batches (dns-01) removes them in few messages. It goes on
// after ctx ended.
func (f *Flow) cleanupRecorded(ctx context.Context, chs []certstore.Challenge) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var todo []certstore.Challenge
	for _, c := range chs {
		if _, ok := f.Solvers[c.Type]; ok && !slices.Contains(todo, c) {
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
