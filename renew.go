package tlspilot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tlspilot/tlspilot/internal/issuance"
)

// RenewOptions says what Manager.Renew renews.
type RenewOptions struct {
	// Names selects the certificates that cover any of these names; none
	// selects every managed certificate.
	Names []string
	// Force renews the selected certificates whether or not they are due.
	Force bool
	// NoStartCheck skips the renewal information check a Manager makes
	// once after it starts (RFC 9773 §4.2), keeping those the stored
	// state says are due: for a command run often from a timer
	// (`tlspilot certs --once`), which must not contact the CA when
	// nothing is due.
	NoStartCheck bool
	// Progress, if set, is told each step of each certificate as it
	// starts: the order's steps (StepContacting, StepOrdering …
	// StepDownload), then StepDone, StepFailed, StepNotDue or
	// StepRetryWait. It is called from several goroutines.
	Progress func(certID string, step string)
}

// Steps reported to RenewOptions.Progress: the order's, then how it
// ended. StepFailed is followed by ": " and the error.
const (
	// StepContacting: reaching the CA (its directory, the account) before
	// the order; a CA that does not answer keeps a certificate here.
	StepContacting = "contacting the CA"
	StepOrdering   = issuance.StepOrdering
	StepPresenting = issuance.StepPresenting
	StepDNS        = issuance.StepDNS // see Manager.DNSWaiting for how many records
	StepValidating = issuance.StepValidating
	StepFinalizing = issuance.StepFinalizing
	StepDownload   = issuance.StepDownload
	StepDone       = "done"
	StepFailed     = "failed"
	StepNotDue     = "not due"
	// StepRetryWait: not renewed because an earlier attempt failed and
	// the retry it waits for (growing delays, or the CA's Retry-After) is
	// not due; followed by " until " and that time, RFC 3339 in UTC.
	// Force tries at once.
	StepRetryWait = "waiting to retry"
)

// Renew renews the selected certificates now and returns when all are
// done: every due one, or with Force every selected one. It takes the
// same locks as Run, in this process or another sharing the storage, and
// a Run on the same storage puts the new certificates in service within
// Config.StoragePoll. A failed certificate is recorded and retried as
// Run would; Renew returns the failures joined, and an error naming any
// name that no managed certificate covers.
func (m *Manager) Renew(ctx context.Context, opts RenewOptions) error {
	return m.renew(ctx, opts, obtainOptions{force: opts.Force})
}

// renew is Renew with the obtain options base: force, or replaceRevoked
// for Revoke.
func (m *Manager) renew(ctx context.Context, opts RenewOptions, base obtainOptions) error {
	entries, err := m.selectEntries(opts.Names)
	if err != nil {
		return err
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, string) {}
	}
	var (
		g    errgroup.Group
		mu   sync.Mutex
		errs []error
	)
	g.SetLimit(cap(m.workers))
	for _, e := range entries {
		if opts.NoStartCheck {
			e.askARIAt(time.Time{})
		}
		g.Go(func() error {
			o := base
			o.reported = opts.Progress != nil
			if err := m.renewOne(ctx, e, o, progress); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// renewOne renews e if it is due or opts.force or opts.replaceRevoked is
// set, as one maintenance pass. opts.reported says the caller shows a
// failure through progress, so the log has it at info rather than error.
func (m *Manager) renewOne(ctx context.Context, e *entry, opts obtainOptions, progress func(string, string)) error {
	if err := m.claim(ctx, e); err != nil {
		return err
	}
	next := time.Now()
	defer func() { m.finish(e, next) }()
	m.refresh(ctx, e) // takes up a failure another process recorded, with its retry time
	m.sweepLeftovers(ctx, e)
	force := opts.force || opts.replaceRevoked
	resume := !force && m.interrupted(ctx, e)
	if !force && !resume {
		m.checkARI(ctx, e)
		if next = m.plan(ctx, e, false); next.After(time.Now()) {
			// A retry pending (the pass due before it may be only the
			// expired notice's) holds the renewal back.
			if retry := e.retryAt(); retry.After(time.Now()) {
				progress(e.id, (&retryWait{at: retry}).Error())
			} else {
				progress(e.id, StepNotDue)
			}
			return nil
		}
	}
	opts.resume, opts.onStep = resume, func(s string) { progress(e.id, s) }
	err := m.obtain(ctx, e, opts)
	var wait *retryWait
	var failed *failedAttempt
	switch {
	case errors.As(err, &wait): // another process failed meanwhile
		next = m.plan(ctx, e, false)
		progress(e.id, wait.Error())
		return nil
	case errors.As(err, &failed):
		next = failed.retryAt
	case err != nil && ctx.Err() == nil:
		next = m.fail(e, err, opts.reported)
	}
	if err != nil {
		progress(e.id, StepFailed+": "+err.Error())
		return fmt.Errorf("renew %s: %w", e.id, err)
	}
	next = m.plan(ctx, e, false)
	progress(e.id, StepDone)
	return nil
}

// claim waits until no maintenance pass of e is under way and starts one.
func (m *Manager) claim(ctx context.Context, e *entry) error {
	for !e.start() {
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// selectEntries returns the managed certificates covering any of names
// (every one when names is empty), or an error naming a name that none
// covers.
func (m *Manager) selectEntries(names []string) ([]*entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*entry
	seen := make(map[*entry]bool)
	add := func(e *entry) {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	if len(names) == 0 {
		for _, e := range m.entries {
			add(e)
		}
		return out, nil
	}
	var missing []error
	for _, n := range names {
		nn, err := NormalizeName(n)
		if err != nil {
			missing = append(missing, err)
			continue
		}
		found := false
		for _, e := range m.entries {
			if slices.Contains(e.site.names, nn) { // a wildcard matches only itself here
				add(e)
				found = true
			}
		}
		if !found {
			missing = append(missing, fmt.Errorf("%s: no managed certificate covers this name", n))
		}
	}
	return out, errors.Join(missing...)
}
