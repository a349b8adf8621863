package fleet

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/renewal"
	"github.com/tlspilot/tlspilot/storage"
)

// keptCert is one certificate of the Keeper, named by its record.
type keptCert struct {
	cfg KeptCert
	id  string // record id, as status shows it
	key string // storage key of its record
	log *slog.Logger
}

// visit does what is due for c at now and returns when it is next due.
// It looks first without the lock, and takes the certificate's storage
// lock only when something is to be done, reading the record again
// under it (another process may have done it meanwhile).
func (k *Keeper) visit(ctx context.Context, c *keptCert, now time.Time, force bool) time.Time {
	rec, err := k.record(ctx, c, now)
	if err != nil {
		c.log.Error("agent storage", "error", err)
		return now.Add(k.opts.Backoff.Min)
	}
	if !k.requestDue(rec, now, force) && !k.deployDue(ctx, c, rec, now, force) {
		return k.nextDue(rec)
	}
	lease, err := k.opts.Storage.Lock(ctx, c.key)
	if err != nil {
		c.log.Error("agent storage lock", "error", err)
		return now.Add(k.opts.Backoff.Min)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	if rec, err = k.record(ctx, c, now); err != nil {
		c.log.Error("agent storage", "error", err)
		return now.Add(k.opts.Backoff.Min)
	}
	if k.requestDue(rec, now, force) {
		k.request(ctx, c, rec, now)
	}
	if k.deployDue(ctx, c, rec, now, force) {
		k.deploy(ctx, c, rec, now)
	}
	return k.nextDue(rec)
}

// record loads c's record, or starts one.
func (k *Keeper) record(ctx context.Context, c *keptCert, now time.Time) (*certRecord, error) {
	rec, ok, err := loadRecord(ctx, k.opts.Storage, c.key)
	if err != nil || ok {
		return rec, err
	}
	return &certRecord{Names: c.cfg.Names, KeyType: string(c.cfg.KeyType), FirstSeen: now}, nil
}

// requestDue reports whether the issuer is to be asked at now: for an
// order in flight when its poll time has come, else for a first
// certificate or once the renewal time has come; in both cases not
// before the backoff of a failure has passed, unless force or the client
// certificate the issuer refused was replaced since.
func (k *Keeper) requestDue(rec *certRecord, now time.Time, force bool) bool {
	if !force && now.Before(rec.RetryAt) && !k.askAgain(rec) {
		return false
	}
	switch {
	case rec.Pending != nil:
		return force || !now.Before(rec.Pending.PollAt)
	case rec.Fullchain == "":
		return true
	}
	return !now.Before(rec.RenewAt)
}

// nextDue is when c next needs a look: the next poll, retry or renewal,
// or the retry of a failed deployment.
func (k *Keeper) nextDue(rec *certRecord) time.Time {
	var at time.Time
	switch {
	case rec.Pending != nil:
		at = rec.Pending.PollAt
	case rec.Fullchain != "":
		at = rec.RenewAt
	}
	if rec.RetryAt.After(at) {
		at = rec.RetryAt
	}
	if rec.Deploy.Attempts > 0 && rec.Deploy.RetryAt.Before(at) {
		at = rec.Deploy.RetryAt
	}
	return at
}

// request sends the CSR of the order in flight, making the order (a key
// and a CSR, stored first) if there is none, and records the answer.
func (k *Keeper) request(ctx context.Context, c *keptCert, rec *certRecord, now time.Time) {
	if rec.Pending == nil {
		p, err := k.newOrder(c, rec, now)
		if err == nil {
			rec.Pending = p
			err = storeRecord(ctx, k.opts.Storage, c.key, rec)
		}
		if err != nil {
			k.failed(ctx, c, rec, now, fmt.Errorf("new key and CSR: %w", err), 0)
			return
		}
	}
	rec.LastAttempt = now
	resp, err := k.client.Request(ctx, CertificateRequest{CSR: rec.Pending.CSR, ReuseKey: c.cfg.ReuseKey, Replaces: rec.Pending.Replaces})
	k.noteExchange(ctx, now, err)
	rec.RefusedWith = ""
	retryAfter := time.Duration(0)
	if resp != nil {
		retryAfter = time.Duration(resp.RetryAfter) * time.Second
	}
	switch {
	case errors.Is(err, ErrIdentityRefused):
		rec.RefusedWith = k.serial() // the CSR was not looked at: send it again
		k.failed(ctx, c, rec, now, err, 0)
	case err != nil:
		if refused(err) {
			rec.Pending = nil // a new key and CSR next time (a reused key, a name out of policy)
		}
		k.failed(ctx, c, rec, now, err, 0)
	case resp.Status == CertProcessing:
		lvl := slog.LevelDebug // each poll
		if rec.Pending.PollAt.IsZero() {
			lvl = slog.LevelInfo // the first answer
		}
		rec.Pending.PollAt = now.Add(min(max(retryAfter, pollMin), pollMax))
		rec.Attempts, rec.LastError, rec.RetryAt = 0, "", time.Time{}
		c.log.Log(ctx, lvl, "issuer processing the certificate", "poll_in", rec.Pending.PollAt.Sub(now))
		k.save(ctx, c, rec)
	case resp.Status == CertValid:
		k.obtained(ctx, c, rec, resp, now)
	case resp.Status == CertFailed:
		k.failed(ctx, c, rec, now, fmt.Errorf("the issuer could not obtain it: %s", resp.Error), retryAfter)
	default:
		k.failed(ctx, c, rec, now, fmt.Errorf("the issuer answered status %q", resp.Status), retryAfter)
	}
}

// refused reports whether err is the issuer's refusal of the request
// (HTTP 4xx: policy, revoked agent), as opposed to a failure to reach it
// or a failure of the issuer.
func refused(err error) bool { return strings.Contains(err.Error(), "refused (HTTP 4") }

// newOrder makes the key (or takes the current one, with reuse_key) and
// the CSR of a new order.
func (k *Keeper) newOrder(c *keptCert, rec *certRecord, now time.Time) (*pendingOrder, error) {
	key, err := k.reusedKey(c, rec)
	if key == nil && err == nil {
		key, err = keys.Generate(c.cfg.KeyType)
	}
	if err != nil {
		return nil, err
	}
	csr, err := keys.CSR(key, c.cfg.Names, nil)
	if err != nil {
		return nil, err
	}
	sealed, err := k.opts.Sealer.SealKey(key, c.key)
	if err != nil {
		return nil, err
	}
	return &pendingOrder{SealedKey: string(sealed), CSR: csr, Since: now, Replaces: rec.Serial}, nil
}

// reusedKey returns, with reuse_key, the key of the certificate in
// service, and nil without reuse_key or a certificate. A stored key that
// is not the certificate's (an older one put back) is not reused: nil,
// so that a new key is made, not one the certificate in service left
// behind.
func (k *Keeper) reusedKey(c *keptCert, rec *certRecord) (crypto.Signer, error) {
	if !c.cfg.ReuseKey || rec.SealedKey == "" {
		return nil, nil
	}
	key, err := k.opts.Sealer.OpenKey([]byte(rec.SealedKey), c.key)
	if err != nil {
		return nil, err
	}
	if err := keys.CheckMatch([]byte(rec.Fullchain), key); err != nil {
		c.log.Warn("reuse_key: the stored key is not the key of the certificate in service; making a new key", "error", err)
		return nil, nil
	}
	return key, nil
}

// obtained checks the issuer's certificate against the order's key and
// the names and makes it the one in service.
func (k *Keeper) obtained(ctx context.Context, c *keptCert, rec *certRecord, resp *CertificateResponse, now time.Time) {
	key, err := k.opts.Sealer.OpenKey([]byte(rec.Pending.SealedKey), c.key)
	if err != nil {
		k.failed(ctx, c, rec, now, fmt.Errorf("open the order's key: %w", err), 0)
		return
	}
	leaf, err := checkIssued(resp.Fullchain, key.Public(), c.cfg.Names, now)
	var chain string
	if err == nil {
		chain, err = cleanChain(resp.Fullchain)
	}
	if err != nil {
		rec.Pending = nil
		k.failed(ctx, c, rec, now, fmt.Errorf("the issuer's certificate: %w", err), 0)
		return
	}
	rec.Fullchain, rec.SealedKey, rec.Pending = chain, rec.Pending.SealedKey, nil
	rec.Serial, rec.Issuer = leaf.SerialNumber.Text(16), leaf.Issuer.CommonName
	rec.NotBefore, rec.NotAfter = leaf.NotBefore, leaf.NotAfter
	rec.RenewAfter, rec.RenewBefore = resp.RenewAfter, resp.RenewBefore
	rec.RenewAt = renewal.Due(leaf.NotBefore, leaf.NotAfter, &renewal.Window{Start: resp.RenewAfter, End: resp.RenewBefore}, k.opts.Rand)
	rec.RenewAt = later(rec.RenewAt, now.Add(min(minRenewDelay, leaf.NotAfter.Sub(now)/4)))
	rec.Attempts, rec.LastError, rec.RetryAt = 0, "", time.Time{}
	c.log.Info("certificate obtained", "serial", rec.Serial, "not_after", rec.NotAfter, "renew_at", rec.RenewAt)
	k.save(ctx, c, rec)
}

// failed records a failed request and when to try again: after the
// backoff of the attempt-th failure, and not before retryAfter.
func (k *Keeper) failed(ctx context.Context, c *keptCert, rec *certRecord, now time.Time, err error, retryAfter time.Duration) {
	rec.Attempts++
	rec.LastError, rec.LastAttempt = err.Error(), now
	var floor time.Time
	if retryAfter > 0 {
		floor = now.Add(retryAfter)
	}
	rec.RetryAt = k.opts.Backoff.Next(now, rec.Attempts, floor, k.opts.Rand)
	attrs := []any{"attempt", rec.Attempts, "retry_in", rec.RetryAt.Sub(now).Round(time.Second), "error", err}
	if rec.Fullchain != "" {
		attrs = append(attrs, "serving_until", rec.NotAfter) // the last good certificate stays deployed
	}
	c.log.Warn("certificate request failed", attrs...)
	k.save(ctx, c, rec)
}

// save stores rec, logging a failure (the next pass works from what the
// storage holds).
func (k *Keeper) save(ctx context.Context, c *keptCert, rec *certRecord) {
	if err := storeRecord(ctx, k.opts.Storage, c.key, rec); err != nil {
		c.log.Error("agent storage", "error", err)
	}
}

// deployDue reports whether c's certificate in service is to be
// deployed at now: a new one, a reload owed, a failure to retry (after
// its backoff, unless force), or files that no longer hold it.
func (k *Keeper) deployDue(ctx context.Context, c *keptCert, rec *certRecord, now time.Time, force bool) bool {
	d := c.cfg.Deployer
	if d == nil || rec.Fullchain == "" {
		return false
	}
	if rec.Deploy.Attempts > 0 {
		// A failure under another deploy configuration (files, reload)
		// is not this one's: the operator's fix is tried at once.
		return force || !now.Before(rec.Deploy.RetryAt) || rec.Deploy.Config != c.cfg.DeployConfig
	}
	if rec.Deploy.Serial != rec.Serial || rec.Deploy.ReloadOwed {
		return true
	}
	chk, ok := d.(interface {
		InPlace(ctx context.Context, chainPEM, keyPEM []byte) (bool, error)
	})
	if !ok {
		return false
	}
	keyPEM, err := rec.keyPEM(k.opts.Sealer, c.key)
	if err != nil {
		return true // deploy reports it
	}
	in, err := chk.InPlace(ctx, []byte(rec.Fullchain), keyPEM)
	return err != nil || !in
}

// deploy writes c's files and reloads when they changed (or a reload is
// owed), recording the outcome.
func (k *Keeper) deploy(ctx context.Context, c *keptCert, rec *certRecord, now time.Time) {
	d := c.cfg.Deployer
	rec.Deploy.LastAttempt = now
	keyPEM, err := rec.keyPEM(k.opts.Sealer, c.key)
	if errors.Is(err, keys.ErrKeyMismatch) && rec.Pending == nil && now.Before(rec.RenewAt) {
		// The stored key is not the certificate's (an older one put
		// back): the certificate cannot be deployed, so a new one with
		// a new key is asked for now instead of at its renewal time.
		c.log.Error("the key stored with the certificate in service is not its key; asking for a new certificate", "error", err)
		rec.RenewAt = now
	}
	var changed bool
	if err == nil {
		changed, err = d.Write(ctx, []byte(rec.Fullchain), keyPEM)
	}
	if err == nil && (changed || rec.Deploy.ReloadOwed) {
		rec.Deploy.ReloadOwed = true
		k.save(ctx, c, rec)
		err = d.Reload(ctx)
	}
	if err != nil {
		rec.Deploy.Attempts++
		rec.Deploy.LastError, rec.Deploy.Config = err.Error(), c.cfg.DeployConfig
		rec.Deploy.RetryAt = deployBackoff.Next(now, rec.Deploy.Attempts, time.Time{}, k.opts.Rand)
		c.log.Warn("deploy failed", "attempt", rec.Deploy.Attempts, "retry_in", rec.Deploy.RetryAt.Sub(now).Round(time.Second), "error", err)
		k.save(ctx, c, rec)
		return
	}
	reloaded := rec.Deploy.ReloadOwed
	if changed || rec.Deploy.Serial != rec.Serial {
		rec.Deploy.At = now
	}
	rec.Deploy = deployState{Serial: rec.Serial, NotAfter: rec.NotAfter, At: rec.Deploy.At, Config: c.cfg.DeployConfig}
	c.log.Info("deployed", "serial", rec.Serial, "changed", changed, "reloaded", reloaded)
	k.save(ctx, c, rec)
}

// result says whether c is valid and deployed, for Once.
func (c *keptCert) result(ctx context.Context, st storage.Storage, now time.Time) OnceResult {
	r := OnceResult{Names: c.cfg.Names}
	rec, ok, err := loadRecord(ctx, st, c.key)
	switch {
	case err != nil:
		r.Problem = err.Error()
	case !ok || rec.Fullchain == "":
		r.Problem = "no certificate yet"
		if ok && rec.LastError != "" {
			r.Problem += ": " + rec.LastError
		} else if ok && rec.Pending != nil {
			r.Problem += ": the issuer is still working on it (ask again later)"
		}
	case !now.Before(rec.NotAfter):
		r.Problem = "the certificate expired at " + rec.NotAfter.UTC().Format(time.RFC3339) + lastError(rec)
	case rec.Attempts > 0:
		r.Problem = fmt.Sprintf("renewal failing (attempt %d, next try %s): %s; the certificate in service is valid until %s",
			rec.Attempts, rec.RetryAt.UTC().Format(time.RFC3339), rec.LastError, rec.NotAfter.UTC().Format(time.RFC3339))
	case c.cfg.Deployer != nil && rec.Deploy.Attempts > 0:
		r.Problem = "deploy failing: " + rec.Deploy.LastError
	case c.cfg.Deployer != nil && rec.Deploy.Serial != rec.Serial:
		r.Problem = "not deployed yet"
	default:
		r.OK = true
	}
	return r
}

// lastError formats the record's last error as a suffix.
func lastError(rec *certRecord) string {
	if rec.LastError == "" {
		return ""
	}
	return "; last error: " + rec.LastError
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
