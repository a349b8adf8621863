package tlspilot

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/renewal"
	"github.com/tlspilot/tlspilot/internal/solvers"
	"github.com/tlspilot/tlspilot/storage"
)

// Deployer puts a certificate where other software reads it (PEM files,
// a secret store, another host) and has that software read it again.
// internal/deploy writes files; `tlspilot certs` gives one to each
// [[certificate]] and key type, through Cert.Deployers.
//
// Write MUST be idempotent: given what it was given last time it changes
// nothing and reports changed = false, so that the Manager can call it
// for every certificate as often as it likes. A failed Write MUST leave
// what was deployed before in place. Reload is called after a Write that
// changed something, once everything is in place, and again after an
// earlier Reload failed (until one succeeds), never otherwise. Both MUST
// honour ctx.
type Deployer interface {
	Write(ctx context.Context, chainPEM, keyPEM []byte) (changed bool, err error)
	Reload(ctx context.Context) error
}

// DeployChecker is a Deployer that can tell, reading only, whether a
// Write of the same content would change nothing (internal/deploy's
// files can). The Manager then finds a certificate that is deployed as
// storage holds it, with no reload owed and no failure to retry, without
// taking its deploy lock, whose lock file is written and synced: so that
// `tlspilot certs --once` over a thousand certificates with nothing new
// syncs no file. InPlace MUST NOT change anything and MUST honour ctx;
// false or an error sends the certificate through the locked path, as
// for a Deployer without it.
type DeployChecker interface {
	InPlace(ctx context.Context, chainPEM, keyPEM []byte) (bool, error)
}

// Deploy events, sent like the others through Config.OnEvent.
const (
	// EventDeployed: the certificate's files changed and the software
	// was reloaded.
	EventDeployed EventType = "deployed"
	// EventDeployFailed: writing the files or the reload failed; Err
	// says why, Attempt counts the failures, RetryAt is the next try of
	// Run (the next Deploy call otherwise).
	EventDeployFailed EventType = "deploy-failed"
)

// The states of DeployStatus.
const (
	DeployDone    = "deployed" // the certificate in storage is in place and loaded
	DeployPending = "pending"  // a newer certificate is not deployed yet (no failure so far)
	DeployFailing = "failing"  // the last attempt failed
)

// DeployStatus is what was deployed of a certificate with a Deployer, in
// the status document (CertStatus.Deploy).
type DeployStatus struct {
	State       string    `json:"state"`
	Serial      string    `json:"serial,omitempty"`   // of the certificate in place and loaded
	NotAfter    time.Time `json:"not_after,omitzero"` // of that certificate
	DeployedAt  time.Time `json:"deployed_at,omitzero"`
	Attempts    int       `json:"attempts,omitempty"` // consecutive failures
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
}

// exitCode grades a deployment. One that keeps failing is CRITICAL when
// the software has no valid certificate from tlspilot (never deployed,
// or the deployed one expired): nothing will get better without an
// operator. It is WARNING while a previous certificate, still valid, is
// in place: the software keeps working, as with a failing renewal.
func (d *DeployStatus) exitCode(now time.Time) int {
	switch {
	case d == nil || d.State != DeployFailing:
		return ExitOK
	case d.NotAfter.IsZero() || !now.Before(d.NotAfter):
		return ExitCritical
	}
	return ExitWarning
}

// deployStatus makes the DeployStatus of a record, for the certificate
// with serial now in storage ("" if none).
func deployStatus(rec certstore.Deployed, serial string) *DeployStatus {
	d := &DeployStatus{State: DeployDone, Serial: rec.Serial, NotAfter: rec.NotAfter, DeployedAt: rec.At,
		Attempts: rec.Attempts, LastError: rec.LastError, LastAttempt: rec.LastAttempt, RetryAt: rec.RetryAt}
	switch {
	case rec.Attempts > 0:
		d.State = DeployFailing
	case serial == "" || rec.Serial != serial || rec.ReloadPending:
		d.State = DeployPending
	}
	return d
}

// deployRetryMin and deployRetryMax bound the backoff between deploy
// attempts in Run.
const (
	deployRetryMin = 10 * time.Second
	deployRetryMax = time.Hour
)

// extras is what the Manager keeps per certificate beyond its entry: the
// challenge directory and the Deployer, and the deploy work of Run.
type extras struct {
	mu                     sync.Mutex
	dirs                   map[string]string   // cert id -> challenge directory
	addrs                  map[string]string   // cert id -> standalone address
	deployers              map[string]Deployer // cert id -> its Deployer
	records                map[string]certstore.Deployed
	pending                map[string]bool // certificates to deploy at once (a new one arrived)
	wake                   chan struct{}
	httpSolver, alpnSolver solvers.Solver
	deploying              sync.Mutex // one deployment at a time in this process
}

// set records c's challenge directory, standalone address and the
// Deployer of key type kt for its entry id, replacing what an earlier
// Cert for id (managed, then unmanaged) had: an option c leaves out is
// gone.
func (x *extras) set(id string, kt KeyType, c Cert) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.initLocked()
	setOrDelete(x.dirs, id, c.ChallengeDir, c.ChallengeDir != "")
	setOrDelete(x.addrs, id, c.Standalone, c.Standalone != "")
	d := c.Deployers[kt]
	setOrDelete(x.deployers, id, d, d != nil)
}

// setOrDelete sets m[k] to v if ok, else deletes m[k].
func setOrDelete[V any](m map[string]V, k string, v V, ok bool) {
	if ok {
		m[k] = v
	} else {
		delete(m, k)
	}
}

// queue has Run deploy certificate id soon, if it has a Deployer: once
// when it becomes managed, even if the stored certificate does not
// change (files may be missing or stale), and whenever a new one
// arrives.
func (x *extras) queue(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.initLocked()
	if x.deployers[id] == nil {
		return
	}
	x.pending[id] = true
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// initLocked makes the maps and the wake channel on first use.
func (x *extras) initLocked() {
	if x.dirs == nil {
		x.dirs, x.addrs, x.deployers = map[string]string{}, map[string]string{}, map[string]Deployer{}
		x.records, x.pending = map[string]certstore.Deployed{}, map[string]bool{}
		x.wake = make(chan struct{}, 1)
	}
}

// wakeup returns the channel that noticeDeploy signals.
func (x *extras) wakeup() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.initLocked()
	return x.wake
}

// dir returns the challenge directory of certificate id, "" if none.
func (x *extras) dir(id string) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.dirs[id]
}

// noticeDeploy queues the deployment of a certificate that was just
// obtained, renewed or taken from storage. It never blocks.
func (m *Manager) noticeDeploy(ev Event) {
	if ev.Type != EventObtained && ev.Type != EventRenewed && ev.Type != EventLoaded {
		return
	}
	m.extras.queue(ev.CertID)
}

// Deploy hands every managed certificate that has a Deployer and a
// stored certificate to it, now: files are written where their content
// changed, and the software reloaded when something changed or a
// previous reload failed. It returns the failures joined; each is also
// recorded in storage (CertStatus.Deploy), logged and sent as
// EventDeployFailed. Run does the same by itself, as certificates
// arrive, and retries failures with backoff.
func (m *Manager) Deploy(ctx context.Context) error {
	var errs []error
	for _, id := range m.deployIDs() {
		errs = append(errs, m.deployOne(ctx, id))
	}
	return errors.Join(errs...)
}

// deployIDs lists the managed certificates with a Deployer.
func (m *Manager) deployIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.extras.mu.Lock()
	defer m.extras.mu.Unlock()
	var out []string
	for id := range m.entries {
		if m.extras.deployers[id] != nil {
			out = append(out, id)
		}
	}
	return out
}

// deployOne deploys certificate id under its deploy lock.
func (m *Manager) deployOne(ctx context.Context, id string) error {
	m.extras.deploying.Lock()
	defer m.extras.deploying.Unlock()
	m.mu.Lock()
	_, managed := m.entries[id]
	m.mu.Unlock()
	m.extras.mu.Lock()
	d := m.extras.deployers[id]
	delete(m.extras.pending, id)
	if !managed {
		// Not managed (any more, or not yet: ManageCerts names it once
		// it is loaded): no retry either.
		delete(m.extras.records, id)
	}
	m.extras.mu.Unlock()
	if d == nil || !managed || m.deployedAsStored(ctx, id, d) {
		return nil
	}
	lease, err := m.store.Storage().Lock(ctx, certstore.DeployLock(id))
	if err != nil {
		return fmt.Errorf("deploy %s: lock: %w", id, err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	ctx = storage.WithLease(ctx, lease)
	rec, err := m.store.LoadDeployed(ctx, id)
	if err != nil && !certstore.IsNotExist(err) {
		m.log.Warn("unreadable deploy record; deploying afresh", "cert", id, "error", err)
	}
	c, err := m.store.LoadCert(ctx, id)
	if certstore.IsNotExist(err) {
		return nil // nothing to deploy yet
	}
	if err != nil {
		return m.deployFailed(ctx, id, rec, fmt.Errorf("deploy %s: %w", id, err))
	}
	return m.deployCert(ctx, id, d, c, rec)
}

// deployedAsStored reports whether certificate id is deployed as
// storage holds it, with nothing owed, checked through d's DeployChecker
// without the deploy lock. Reading only, it can but find that nothing is
// to be done, as a locked pass at the moment of its reads would have; a
// deployment under way elsewhere shows as a record that does not match
// the stored certificate, or files that do not, and goes the locked way.
func (m *Manager) deployedAsStored(ctx context.Context, id string, d Deployer) bool {
	dc, ok := d.(DeployChecker)
	if !ok {
		return false
	}
	rec, err := m.store.LoadDeployed(ctx, id)
	if err != nil || rec.Attempts > 0 || rec.ReloadPending || rec.At.IsZero() {
		return false
	}
	c, err := m.store.LoadCert(ctx, id)
	if err != nil || rec != (certstore.Deployed{Serial: serialOfPEM(c.ChainPEM), NotAfter: c.NotAfter, At: rec.At}) {
		return false
	}
	keyPEM, err := encodeKey(c)
	if err != nil {
		return false
	}
	defer clear(keyPEM)
	if in, err := dc.InPlace(ctx, []byte(c.ChainPEM), keyPEM); err != nil || !in {
		return false
	}
	m.keepDeployed(id, rec)
	return true
}

// encodeKey returns c's private key as PEM (PKCS #8), which the caller
// clears after use.
func encodeKey(c certstore.Cert) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// deployCert writes c through d and reloads when needed, recording how
// it went.
func (m *Manager) deployCert(ctx context.Context, id string, d Deployer, c certstore.Cert, rec certstore.Deployed) error {
	keyPEM, err := encodeKey(c)
	if err != nil {
		return m.deployFailed(ctx, id, rec, fmt.Errorf("deploy %s: encode key: %w", id, err))
	}
	changed, err := d.Write(ctx, []byte(c.ChainPEM), keyPEM)
	clear(keyPEM)
	if err != nil {
		return m.deployFailed(ctx, id, rec, fmt.Errorf("deploy %s: %w", id, err))
	}
	if changed && !rec.ReloadPending {
		// Owe the reload before running it: if this process dies now,
		// the next one reloads although the files no longer change.
		rec.ReloadPending = true
		m.storeDeployed(ctx, id, rec)
	}
	if rec.ReloadPending {
		if err := d.Reload(ctx); err != nil {
			return m.deployFailed(ctx, id, rec, fmt.Errorf("deploy %s: %w", id, err))
		}
	}
	was := rec
	rec = certstore.Deployed{Serial: serialOfPEM(c.ChainPEM), NotAfter: c.NotAfter, At: rec.At}
	if changed || was.ReloadPending || rec.Serial != was.Serial || rec.At.IsZero() {
		rec.At = time.Now().UTC()
	}
	if rec != was {
		m.storeDeployed(ctx, id, rec)
	} else {
		m.keepDeployed(id, rec) // for Status: unchanged, but this process had not read it
	}
	if changed || was.ReloadPending {
		reloaded := true
		if r, ok := d.(interface{ Reloads() bool }); ok {
			reloaded = r.Reloads() // a Deployer with nothing to reload says so
		}
		m.log.Info("certificate deployed", "cert", id, "serial", rec.Serial, "reloaded", reloaded)
		m.emit(m.deployEvent(EventDeployed, id, c.NotAfter))
	}
	return nil
}

// deployFailed records, logs and reports a failed deployment, and
// returns err.
func (m *Manager) deployFailed(ctx context.Context, id string, rec certstore.Deployed, err error) error {
	if ctx.Err() != nil {
		return err
	}
	now := time.Now()
	rec.Attempts++
	rec.LastError, rec.LastAttempt = err.Error(), now.UTC()
	rec.RetryAt = renewal.Backoff{Min: deployRetryMin, Max: deployRetryMax}.Next(now, rec.Attempts, time.Time{}, jitter).UTC()
	m.storeDeployed(ctx, id, rec)
	m.log.Error("deploy failed", "cert", id, "attempt", rec.Attempts, "retry_in", rec.RetryAt.Sub(now).Round(time.Second), "error", err)
	ev := m.deployEvent(EventDeployFailed, id, rec.NotAfter)
	ev.Err, ev.Attempt, ev.RetryAt = err, rec.Attempts, rec.RetryAt
	m.emit(ev)
	return err
}

// storeDeployed saves rec and keeps it for Status.
func (m *Manager) storeDeployed(ctx context.Context, id string, rec certstore.Deployed) {
	m.keepDeployed(id, rec)
	if err := m.store.StoreDeployed(context.WithoutCancel(ctx), id, rec); err != nil {
		m.log.Warn("store deploy record", "cert", id, "error", err)
	}
}

// keepDeployed keeps rec, certificate id's deploy record, for Status.
func (m *Manager) keepDeployed(id string, rec certstore.Deployed) {
	m.extras.mu.Lock()
	m.extras.records[id] = rec
	m.extras.mu.Unlock()
}

// deployEvent is an event about certificate id.
func (m *Manager) deployEvent(typ EventType, id string, notAfter time.Time) Event {
	ev := Event{Type: typ, CertID: id, NotAfter: notAfter}
	m.mu.Lock()
	if e := m.entries[id]; e != nil {
		ev.Names, ev.KeyType = e.site.names, e.keyType
	}
	m.mu.Unlock()
	return ev
}

// deployLoop, run by Run, deploys every certificate with a Deployer at
// start, then each new one as it arrives, and retries failures with
// backoff, until ctx ends.
func (m *Manager) deployLoop(ctx context.Context) {
	wake := m.extras.wakeup()
	_ = m.Deploy(ctx)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ids, next := m.deployDue(time.Now())
		for _, id := range ids {
			_ = m.deployOne(ctx, id)
		}
		if len(ids) > 0 {
			continue
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
	}
}

// deployDue returns the certificates to deploy now (new ones, and failed
// ones whose retry is due) and when the next retry is due.
func (m *Manager) deployDue(now time.Time) (ids []string, next time.Time) {
	x := &m.extras
	x.mu.Lock()
	defer x.mu.Unlock()
	next = now.Add(time.Hour)
	for id := range x.deployers {
		rec, failing := x.records[id], x.records[id].Attempts > 0
		switch {
		case x.pending[id], failing && !rec.RetryAt.After(now):
			ids = append(ids, id)
			if failing {
				// Not again before the minimum backoff, whatever the
				// attempt does with the record (a lock it cannot take).
				rec.RetryAt = now.Add(deployRetryMin)
				x.records[id] = rec
			}
		case failing && rec.RetryAt.Before(next):
			next = rec.RetryAt
		}
	}
	return ids, next
}

// deployStatusOf reports the deployment of certificate id with serial
// in service, nil without a Deployer.
func (m *Manager) deployStatusOf(id, serial string) *DeployStatus {
	m.extras.mu.Lock()
	defer m.extras.mu.Unlock()
	if m.extras.deployers[id] == nil {
		return nil
	}
	return deployStatus(m.extras.records[id], serial)
}

// storedDeployStatus reads the deployment of certificate id from
// storage, nil when it has no deploy record.
func storedDeployStatus(ctx context.Context, st *certstore.Store, id, serial string) *DeployStatus {
	rec, err := st.LoadDeployed(ctx, id)
	if err != nil {
		return nil
	}
	return deployStatus(rec, serial)
}
