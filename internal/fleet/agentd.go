package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/renewal"
	"github.com/tlspilot/tlspilot/storage"
)

// Bounds of the agent's waits.
const (
	// agentBackoffMin and agentBackoffMax are the retry policy after a
	// failed request to the issuer when KeeperOptions.Backoff is zero: 1
	// minute doubling up to 1 hour, with jitter.
	agentBackoffMin, agentBackoffMax = time.Minute, time.Hour
	// pollMin and pollMax bound the wait after a "processing" answer,
	// whatever RetryAfter says.
	pollMin, pollMax = time.Second, 5 * time.Minute
	// recheckEvery is the longest the daemon sleeps: each certificate is
	// looked at (its files checked) at least this often.
	recheckEvery = time.Hour
	// minRenewDelay is the earliest a new certificate is renewed (or a
	// quarter of its remaining lifetime, if shorter), even if the
	// issuer's window has already begun: never a tight loop.
	minRenewDelay = time.Minute
)

// deployBackoff is the retry policy of a failed deploy or reload, as
// `tlspilot certs` has it: 10 s doubling up to 1 hour.
var deployBackoff = renewal.Backoff{Min: 10 * time.Second, Max: time.Hour}

// KeptCert is one certificate an agent keeps ([[certificate]] of its
// config).
type KeptCert struct {
	// Names are the certificate's DNS names, within the agent's policy.
	Names []string
	// KeyType is the type of its keys.
	KeyType keys.Type
	// ReuseKey keeps the key across renewals; by default each renewal
	// makes a new one.
	ReuseKey bool
	// Deployer writes its files and reloads the software reading them
	// (internal/deploy); nil deploys nothing.
	Deployer tlspilot.Deployer
	// DeployConfig identifies Deployer's configuration (its files,
	// modes, owners and reload), as a fingerprint: a failed deployment
	// is retried after its backoff, but at once by a Keeper whose
	// DeployConfig differs from the one it failed under (the operator
	// changed the config and restarted).
	DeployConfig string
}

// KeeperOptions configures a Keeper.
type KeeperOptions struct {
	// Storage is the agent's storage, holding its identity (tlspilot
	// agent enroll) and, under agent/certs/, a record per certificate.
	Storage storage.Storage
	// Sealer seals the keys in Storage.
	Sealer *keys.Sealer
	// Issuer is the issuer's base URL; Roots the fleet CA.
	Issuer string
	Roots  *x509.CertPool
	// Certificates are the certificates to keep; at least one.
	Certificates []KeptCert
	// Backoff is the retry policy after a failed request to the issuer;
	// zero Min and Max mean 1 minute and 1 hour.
	Backoff renewal.Backoff
	// Rand draws renewal times and jitter; nil is math/rand/v2.
	Rand renewal.Rand
	// Logger receives what the agent does; nil discards.
	Logger *slog.Logger
}

// Keeper keeps an agent's certificates: it sends a CSR when one is due,
// polls the issuer while it works, checks and stores the certificate,
// deploys it, and renews the agent's own client certificate. The storage
// is the source of truth, so any number of passes, by one process or
// by `--once` runs, carry on each other's work; a certificate is worked
// on under its storage lock. Its methods are not for concurrent use.
type Keeper struct {
	opts   KeeperOptions
	log    *slog.Logger
	certs  []*keptCert
	id     *Identity
	client *Client
	// failures of the client certificate's renewal
	idAttempts int
	idRetryAt  time.Time
	// refused is set while a refusal of the client certificate in use
	// is stored (identityRefusalKey), to be removed by a success.
	refused bool
	// unloadable is the serial of a stored identity found unusable by
	// reloadIdentity: not tried again.
	unloadable string
}

// NewKeeper checks opts, loads the agent's identity and returns a
// Keeper. An agent not enrolled yet gets an error wrapping
// fs.ErrNotExist.
func NewKeeper(ctx context.Context, opts KeeperOptions) (*Keeper, error) {
	if opts.Storage == nil || opts.Sealer == nil {
		return nil, errors.New("fleet: keeper: storage and sealer are required")
	}
	if len(opts.Certificates) == 0 {
		return nil, errors.New("fleet: keeper: no certificate to keep")
	}
	if opts.Backoff.Min <= 0 {
		opts.Backoff.Min = agentBackoffMin
	}
	if opts.Backoff.Max <= 0 {
		opts.Backoff.Max = agentBackoffMax
	}
	k := &Keeper{opts: opts, log: opts.Logger}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	for _, c := range opts.Certificates {
		if len(c.Names) == 0 {
			return nil, errors.New("fleet: keeper: a certificate without names")
		}
		id := agentCertID(c.Names, c.KeyType)
		k.certs = append(k.certs, &keptCert{cfg: c, id: id, key: recordKey(id),
			log: k.log.With("names", c.Names)})
	}
	id, err := LoadIdentity(ctx, opts.Storage, opts.Sealer)
	if err != nil {
		return nil, err
	}
	if err := k.useIdentity(id); err != nil {
		return nil, err
	}
	if _, k.refused, err = loadRefusal(ctx, opts.Storage, k.serial()); err != nil {
		return nil, fmt.Errorf("fleet: keeper: %w", err)
	}
	return k, nil
}

// useIdentity makes the client that presents id, closing the old
// client's idle connections (they would present the old certificate).
func (k *Keeper) useIdentity(id *Identity) error {
	c, err := NewClient(ClientOptions{Issuer: k.opts.Issuer, Roots: k.opts.Roots, Identity: id})
	if err != nil {
		return err
	}
	if k.client != nil {
		k.client.http.CloseIdleConnections()
	}
	k.id, k.client = id, c
	return nil
}

// Run keeps the certificates until ctx ends: a pass whenever something
// is due (a renewal, a poll of the issuer, a retry, the client
// certificate's renewal), at least every hour, and as soon as it sees a
// new identity in the storage (it looks every 10 seconds): a new
// enrolment is used without a restart. It returns ctx's error.
func (k *Keeper) Run(ctx context.Context) error {
	k.log.Info("agent keeping certificates", "issuer", k.opts.Issuer, "host", k.id.Host, "certificates", len(k.certs))
	for {
		next := k.Pass(ctx, time.Now(), false)
		k.log.Debug("agent sleeping", "until", next, "wait", time.Until(next).Round(time.Second))
		if !k.sleep(ctx, next) {
			return ctx.Err()
		}
	}
}

// sleep waits until next, or until the stored identity changes; it
// returns false if ctx ends first.
func (k *Keeper) sleep(ctx context.Context, next time.Time) bool {
	for {
		t := time.NewTimer(min(time.Until(next), identityCheckEvery))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		if !time.Now().Before(next) || k.identityChanged(ctx) {
			return true
		}
	}
}

// Pass does what is due at now: the client certificate's renewal, then
// each certificate's request, poll and deployment. force also does what
// waits only for the backoff of an earlier failure (--once: a person or
// a timer asked now). It returns when the next pass is due, within
// recheckEvery.
func (k *Keeper) Pass(ctx context.Context, now time.Time, force bool) time.Time {
	k.reloadIdentity(ctx)
	next := now.Add(recheckEvery)
	next = earliest(next, k.renewIdentity(ctx, now, force))
	for _, c := range k.certs {
		if ctx.Err() != nil {
			break
		}
		next = earliest(next, k.visit(ctx, c, now, force))
	}
	return next
}

// OnceResult is the outcome of Once for one certificate.
type OnceResult struct {
	// Names are the certificate's names.
	Names []string
	// OK is true when a valid certificate is stored and deployed.
	OK bool
	// Problem says what is wrong otherwise.
	Problem string
}

// Once does one pass (forced: earlier backoff does not hold it back),
// then polls the issuer for the certificates it is still working on,
// after each RetryAfter, until wait has passed; it deploys each
// certificate it gets. It returns one result per certificate.
func (k *Keeper) Once(ctx context.Context, wait time.Duration) []OnceResult {
	deadline := time.Now().Add(wait)
	force := true
	for {
		k.Pass(ctx, time.Now(), force)
		force = false
		poll, ok := k.nextPoll(ctx)
		if !ok || poll.After(deadline) || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(time.Until(poll))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	out := k.results(ctx, time.Now())
	if err := k.checkIdentity(ctx, time.Now()); err != nil {
		out = append(out, OnceResult{Names: []string{identityKey}, Problem: err.Error()})
	}
	return out
}

// checkIdentity asks the issuer whether it still accepts the agent's
// client certificate, so that a revoked agent learns it before its next
// renewal. Only a refusal is an error (and stored, for status): an
// issuer that cannot be reached changes nothing for an agent that works
// offline.
func (k *Keeper) checkIdentity(ctx context.Context, now time.Time) error {
	_, err := k.client.Agent(ctx)
	k.noteExchange(ctx, now, err)
	if err != nil && (errors.Is(err, ErrIdentityRefused) || refused(err)) {
		k.log.Error("the issuer refuses this agent", "error", err)
		return err
	}
	return nil
}

// nextPoll is the earliest poll of an order the issuer is working on;
// ok is false when none is.
func (k *Keeper) nextPoll(ctx context.Context) (at time.Time, ok bool) {
	for _, c := range k.certs {
		rec, found, err := loadRecord(ctx, k.opts.Storage, c.key)
		if err != nil || !found || rec.Pending == nil || rec.Pending.PollAt.IsZero() || rec.Attempts > 0 {
			continue
		}
		if !ok || rec.Pending.PollAt.Before(at) {
			at, ok = rec.Pending.PollAt, true
		}
	}
	return at, ok
}

// results reports each certificate as Once leaves it.
func (k *Keeper) results(ctx context.Context, now time.Time) []OnceResult {
	out := make([]OnceResult, 0, len(k.certs))
	for _, c := range k.certs {
		out = append(out, c.result(ctx, k.opts.Storage, now))
	}
	return out
}

// renewIdentity renews the agent's client certificate once a third of
// its lifetime remains, and returns when to look again.
func (k *Keeper) renewIdentity(ctx context.Context, now time.Time, force bool) time.Time {
	due := k.id.RenewAt()
	if now.Before(due) {
		return due
	}
	if !force && now.Before(k.idRetryAt) {
		return k.idRetryAt
	}
	id, err := k.client.RenewIdentity(ctx)
	k.noteExchange(ctx, now, err)
	if err == nil && k.reloadIdentity(ctx) {
		// Enrolled again meanwhile (tlspilot agent enroll): the new
		// enrolment wins over this renewal of the old identity.
		return k.id.RenewAt()
	}
	if err == nil {
		err = SaveIdentity(ctx, k.opts.Storage, k.opts.Sealer, id)
	}
	if err == nil {
		err = k.useIdentity(id)
	}
	if err != nil {
		k.idAttempts++
		k.idRetryAt = k.opts.Backoff.Next(now, k.idAttempts, time.Time{}, k.opts.Rand)
		lvl := slog.LevelWarn
		if !now.Before(k.id.Certificate.NotAfter) {
			lvl = slog.LevelError
			err = fmt.Errorf("%w (the client certificate expired: enrol again with tlspilot agent enroll)", err)
		}
		k.log.Log(ctx, lvl, "client certificate renewal failed", "host", k.id.Host, "attempt", k.idAttempts,
			"retry_in", k.idRetryAt.Sub(now).Round(time.Second), "error", err)
		return k.idRetryAt
	}
	k.idAttempts, k.idRetryAt = 0, time.Time{}
	k.log.Info("client certificate renewed", "host", id.Host, "not_after", id.Certificate.NotAfter)
	return id.RenewAt()
}

// earliest returns the earlier of a and b, ignoring a zero b.
func earliest(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}
