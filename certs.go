package tlspilot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
	"golang.org/x/sync/errgroup"
)

// Cert describes one managed certificate: the names it covers and,
// optionally, settings that differ from the Manager's Config.
type Cert struct {
	Names     []string  // DNS names, wildcards ("*.example.com", dns-01 only) and IP addresses
	KeyTypes  []KeyType // default: Config.KeyTypes
	Challenge string    // default: Config.Challenge
	Profile   string    // default: Config.Profile
	// ChallengeDir, for http-01, is a directory another web server
	// serves at /.well-known/acme-challenge/: answers are also written
	// there as files named by their token (0644), removed after
	// validation.
	ChallengeDir string
	// Standalone, for http-01 and tls-alpn-01, is a host:port where the
	// Manager answers on a listener of its own, open only while answers
	// are presented (a port no other program holds then).
	Standalone string
	// Deployers put the certificate of each key type where other
	// software reads it whenever it changes (see Deployer,
	// Manager.Deploy); a key type without one is not deployed.
	Deployers map[KeyType]Deployer
}

// Manage manages one certificate covering every name given (the first is
// the primary name), as mod_md's MDomain does. Call it once per
// certificate; names already managed by another certificate are refused.
// A stored certificate is put in service at once; otherwise a temporary
// one is served until Run obtains the first.
func (m *Manager) Manage(ctx context.Context, names ...string) error {
	return m.ManageCerts(ctx, Cert{Names: names})
}

// ManageCerts manages several certificates, loading stored ones in
// parallel. Every Cert is checked before any is managed: one bad name,
// or a name already managed or given twice, fails the call, and then
// nothing is managed and nothing ordered.
func (m *Manager) ManageCerts(ctx context.Context, certs ...Cert) error {
	sites := make([]*site, len(certs))
	for i, c := range certs {
		s, err := m.newSite(c)
		if err != nil {
			return err
		}
		sites[i] = s
	}
	// A call refused for its names fails before reading the storage
	// (add checks again), and changes nothing, not even the challenge
	// directories and deployers of a certificate managed already: they
	// are set once add has succeeded.
	if err := m.names.check(sites...); err != nil {
		return fmt.Errorf("manage: %w", err)
	}
	var all []*entry
	for _, s := range sites {
		all = append(all, s.certs...)
	}
	if err := m.loadAll(ctx, all); err != nil {
		return err
	}
	m.manageMu.Lock()
	defer m.manageMu.Unlock()
	if err := m.names.add(sites...); err != nil {
		return fmt.Errorf("manage: %w", err)
	}
	for i, s := range sites {
		for _, e := range s.certs {
			m.extras.set(e.id, e.keyType, certs[i])
		}
	}
	m.mu.Lock()
	for _, e := range all {
		if _, dup := m.entries[e.id]; dup {
			continue
		}
		m.entries[e.id] = e
		m.extras.queue(e.id)
		due, _, _ := e.plan(time.Now(), false, jitter) // load saved what plan draws
		e.setNext(due)
		m.heap.Set(e.id, due)
	}
	m.mu.Unlock()
	m.poke()
	return nil
}

// newSite checks a Cert and builds its entries.
func (m *Manager) newSite(c Cert) (*site, error) {
	names, err := normalizeNames(c.Names)
	if err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("manage %v: %w", names, err)
	}
	ch := c.Challenge
	if ch == "" {
		ch = m.cfg.Challenge
	}
	if err := m.cfg.checkChallenge(ch); err != nil {
		return nil, fmt.Errorf("manage %v: %w", names, err)
	}
	for _, n := range names {
		if len(n) > 2 && n[:2] == "*." && ch != DNS01 {
			return nil, fmt.Errorf("manage %v: wildcard %s needs the dns-01 challenge (challenge is %s)", names, n, ch)
		}
		if ch == DNS01 && net.ParseIP(n) != nil {
			return nil, fmt.Errorf("manage %v: IP address %s cannot be proved with dns-01", names, n)
		}
	}
	kts, err := keyTypes(m.cfg, c)
	if err != nil {
		return nil, fmt.Errorf("manage %v: %w", names, err)
	}
	profile := c.Profile
	if profile == "" {
		profile = m.cfg.Profile
	}
	s := &site{names: names}
	for _, kt := range kts {
		e := &entry{id: certstore.CertID(names, kt), site: s, keyType: kt, challenge: ch, profile: profile, ca: m.cfg.CA}
		s.certs = append(s.certs, e)
		if kt.IsRSA() {
			if s.rsa == nil {
				s.rsa = e
			}
		} else if s.ec == nil {
			s.ec = e
		}
	}
	return s, nil
}

// keyTypes returns the checked key types of c's certificates.
func keyTypes(cfg Config, c Cert) ([]KeyType, error) {
	kts := c.KeyTypes
	if len(kts) == 0 {
		kts = cfg.KeyTypes
	}
	out := make([]KeyType, len(kts))
	for i, kt := range kts {
		var err error
		if out[i], err = keys.ParseType(string(kt)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// loadBatchSize is how many certificates loadAll reads in one batch from
// a storage that reads many keys at once (storage.BatchLoader): with
// PostgreSQL, one query instead of two per certificate.
const loadBatchSize = 128

// loadAll puts the stored certificates of entries in service, using every
// core: start-up over thousands of certificates is bound by decrypting
// keys and parsing chains. It returns the first error; the others are
// still loaded.
func (m *Manager) loadAll(ctx context.Context, entries []*entry) error {
	size := 1
	if _, ok := m.store.Storage().(storage.BatchLoader); ok {
		size = loadBatchSize
	}
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0) * 2)
	for batch := range slices.Chunk(entries, size) {
		g.Go(func() error { return m.loadBatch(ctx, batch) })
	}
	return g.Wait()
}

// loadBatch loads entries one after the other, from one read of all their
// records if there are several (certstore.Store.Preload), or one by one if
// that read fails. It returns the first error; the others are still
// loaded.
func (m *Manager) loadBatch(ctx context.Context, entries []*entry) error {
	st := m.store
	if len(entries) > 1 {
		ids := make([]string, len(entries))
		for i, e := range entries {
			ids[i] = e.id
		}
		pre, err := m.store.Preload(ctx, ids)
		switch {
		case err == nil:
			st = pre
		case ctx.Err() != nil:
			return err
		default:
			m.log.Warn("batched read of stored certificates failed; reading them one by one", "error", err)
		}
	}
	var first error
	for _, e := range entries {
		if err := m.load(ctx, st, e); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// load reads e's stored certificate and state, if any, from store and puts
// the certificate in service. A missing certificate is not an error.
func (m *Manager) load(ctx context.Context, store *certstore.Store, e *entry) error {
	st, err := store.LoadState(ctx, e.id)
	switch {
	case errors.Is(err, certstore.ErrDamaged):
		m.log.Warn("unreadable renewal state; starting afresh", "cert", e.id, "error", err)
	case err != nil:
		m.log.Warn("renewal state not read: the storage failed; it is read again with the certificate", "cert", e.id, "error", err)
	}
	c, err := store.LoadCert(ctx, e.id)
	if err != nil {
		e.setState(st)
		if e.markPending(time.Now()) {
			m.plan(ctx, e, true)
		}
		if certstore.IsNotExist(err) {
			return nil
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		if !errors.Is(err, certstore.ErrDamaged) {
			// The storage failed, not the record: the certificate is
			// read again when the storage answers (maintain's refresh).
			m.log.Warn("stored certificate not read: the storage failed; a temporary certificate is served until it answers",
				"cert", e.id, "error", err)
			return nil
		}
		// A damaged record must not stop the others: the certificate is
		// obtained again.
		if e.noteDamaged(err) {
			m.log.Error("unreadable stored certificate; it will be obtained again", "cert", e.id, "names", e.site.names, "error", err)
		}
		return nil
	}
	if _, err = m.install(e, c, st); err != nil {
		return err
	}
	// Ask the CA about renewal once after every start: a certificate
	// revoked or given an earlier window while this process was down
	// must not wait for the old schedule (RFC 9773 §4.2).
	if e.hasARI() {
		e.askARIAt(m.ariStartSlot())
	}
	m.plan(ctx, e, false)
	return nil
}

// install puts c in service for e, unless e already serves a certificate
// that is at least as new. It reports whether c was installed.
func (m *Manager) install(e *entry, c certstore.Cert, st certstore.State) (bool, error) {
	tc, err := toTLS(c, &m.intern)
	if err != nil {
		return false, fmt.Errorf("certificate %s: %w", e.id, err)
	}
	return e.install(c, tc, st), nil
}

// Unmanage stops managing the certificate that covers name: it is no
// longer served or renewed. Its records stay in storage, so managing it
// again later starts from the stored certificate. Unmanaging a name that
// is not managed does nothing.
func (m *Manager) Unmanage(name string) {
	n, err := NormalizeName(name)
	if err != nil {
		return
	}
	m.manageMu.Lock()
	defer m.manageMu.Unlock()
	s := m.names.remove(n)
	if s == nil {
		return
	}
	m.mu.Lock()
	for _, e := range s.certs {
		delete(m.entries, e.id)
		m.heap.Remove(e.id)
	}
	m.mu.Unlock()
}
