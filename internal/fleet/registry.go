// Package fleet keeps the issuer's knowledge of its agents: who each is
// (a host name), which names it may obtain certificates for (its policy),
// the one-time tokens that enrol it, the client certificates it holds,
// and whether it was revoked.
//
// Records live in the issuer's storage under "fleet/": one per agent
// ("fleet/agents/HOST") and one per enrolment token
// ("fleet/tokens/SHA256-OF-TOKEN"). A token itself is never stored, and
// nothing an agent sends becomes a storage key: hosts are checked by
// fleetca.CheckHost, tokens are hashed.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/fleetca"
	"github.com/tlspilot/tlspilot/storage"
)

// Storage key prefixes.
const (
	agentsPrefix = "fleet/agents"
	// healthKey is read by Check; nothing stores it.
	healthKey    = "fleet/health"
	tokensPrefix = "fleet/tokens"
)

// ErrNoAgent is wrapped by the error of an operation on a host that was
// never enrolled.
var ErrNoAgent = errors.New("no such agent")

// Options configures a Registry.
type Options struct {
	// Storage holds the records; it is the issuer's storage.
	Storage storage.Storage
	// Logger receives enrolments and revocations, and the failures to
	// audit them; nil discards.
	Logger *slog.Logger
	// Auditor receives a record of each change an administrator makes
	// (AuditPolicy from Enroll, AuditAgentRevoked from Revoke); nil
	// keeps none. A failure to append one is logged, and the change
	// stands.
	Auditor Auditor
}

// Registry reads and changes the agents' records. Every change is made
// under the storage lock of the record it changes, so several issuer
// processes sharing a storage may use it at once. It is safe for
// concurrent use.
type Registry struct {
	s       storage.Storage
	log     *slog.Logger
	auditor Auditor
}

// New returns a Registry over opts.Storage.
func New(opts Options) (*Registry, error) {
	if opts.Storage == nil {
		return nil, errors.New("fleet: storage is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{s: opts.Storage, log: log, auditor: opts.Auditor}, nil
}

// Agent is what the issuer knows of one agent.
type Agent struct {
	// Host names the agent; it is the common name of its client
	// certificates.
	Host string `json:"host"`
	// Names is its policy: the names (and "*." wildcards) it may obtain
	// certificates for, normalised.
	Names []string `json:"names"`
	// Created is when it was first enrolled by the administrator.
	Created time.Time `json:"created"`
	// Enrolled is when an enrolment token was last redeemed for it; zero
	// while none was.
	Enrolled time.Time `json:"enrolled,omitzero"`
	// LastSeen is when it last made an authenticated request; zero if
	// never.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Revoked is when it was cut off; zero if it was not, or was
	// enrolled again since.
	Revoked time.Time `json:"revoked,omitzero"`
	// ClientCerts are its client certificates not yet expired; only
	// these are accepted from it. Revocation empties the list.
	ClientCerts []ClientCert `json:"client_certificates,omitempty"`
}

// ClientCert is one client certificate issued to an agent.
type ClientCert struct {
	// Serial is the certificate's serial number in hexadecimal.
	Serial string `json:"serial"`
	// NotAfter is when it expires.
	NotAfter time.Time `json:"not_after"`
}

// agentKey is the record key of host, which CheckHost has accepted.
func agentKey(host string) string { return agentsPrefix + "/" + host }

// Agent returns the record of host; a host never enrolled gives an error
// wrapping ErrNoAgent.
func (r *Registry) Agent(ctx context.Context, host string) (*Agent, error) {
	if err := fleetca.CheckHost(host); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	var a Agent
	if err := r.load(ctx, agentKey(host), &a); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("fleet: agent %s: %w (enrol it with tlspilot issuer enroll)", host, ErrNoAgent)
		}
		return nil, fmt.Errorf("fleet: agent %s: %w", host, err)
	}
	return &a, nil
}

// Check reads the registry's storage, as a health probe: nil when it
// answered (a key that is not there is an answer), else the storage's
// error. It reads one key, whatever the number of agents.
func (r *Registry) Check(ctx context.Context) error {
	if _, err := r.s.Load(ctx, healthKey); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fleet: registry storage: %w", err)
	}
	return nil
}

// Agents returns every agent, sorted by host.
func (r *Registry) Agents(ctx context.Context) ([]*Agent, error) {
	keys, err := r.s.List(ctx, agentsPrefix)
	if err != nil {
		return nil, fmt.Errorf("fleet: list agents: %w", err)
	}
	out := make([]*Agent, 0, len(keys))
	for _, k := range keys {
		var a Agent
		if err := r.load(ctx, k, &a); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		out = append(out, &a)
	}
	slices.SortFunc(out, func(a, b *Agent) int { return strings.Compare(a.Host, b.Host) })
	return out, nil
}

// Revoke cuts host off at once: its client certificates are no longer
// accepted and its enrolment tokens not yet used no longer enrol it. A
// new `issuer enroll` enrols it again. It is audited (AuditAgentRevoked),
// also when host was revoked already.
func (r *Registry) Revoke(ctx context.Context, host string) (*Agent, error) {
	var reason string
	a, err := r.update(ctx, host, func(a *Agent) error {
		reason = fmt.Sprintf("its %d client certificate(s) and the enrolment tokens made until now are refused", len(a.ClientCerts))
		if a.Revoked.IsZero() {
			a.Revoked = time.Now()
		} else {
			reason = "revoked already at " + a.Revoked.UTC().Format(time.RFC3339) + "; " + reason
		}
		a.ClientCerts = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.log.Warn("agent revoked", "host", host)
	r.audit(ctx, AuditRecord{Host: host, Names: a.Names, Decision: AuditAgentRevoked, Reason: reason})
	return a, nil
}

// audit appends rec to the audit trail, if there is one; a failure is
// logged (the change it records stands).
func (r *Registry) audit(ctx context.Context, rec AuditRecord) {
	if r.auditor == nil {
		return
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	if err := r.auditor.Append(context.WithoutCancel(ctx), rec); err != nil {
		r.log.Error("audit trail: append failed", "host", rec.Host, "decision", rec.Decision, "error", err)
	}
}

// update applies change to the record of host under its lock. A host
// never enrolled gives an error wrapping ErrNoAgent.
func (r *Registry) update(ctx context.Context, host string, change func(*Agent) error) (*Agent, error) {
	return r.change(ctx, host, func(a *Agent, exists bool) error {
		if !exists {
			return fmt.Errorf("fleet: agent %s: %w (enrol it with tlspilot issuer enroll)", host, ErrNoAgent)
		}
		return change(a)
	})
}

// change loads the record of host (a new one if it has none), applies
// fn and stores the result, all under the record's lock.
func (r *Registry) change(ctx context.Context, host string, fn func(a *Agent, exists bool) error) (*Agent, error) {
	if err := fleetca.CheckHost(host); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	key := agentKey(host)
	lease, err := r.s.Lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("fleet: lock %s: %w", key, err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	a := &Agent{Host: host}
	err = r.load(ctx, key, a)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if err := fn(a, exists); err != nil {
		return nil, err
	}
	if err := r.store(storage.WithLease(ctx, lease), key, a); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return a, nil
}

// PolicyNames checks and normalises the names an agent may obtain: DNS
// names or "*." wildcards (dns-01 validates no IP address), none twice.
func PolicyNames(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, errors.New("no names: an agent may obtain certificates for the names it is enrolled with, so name at least one")
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		nn, err := tlspilot.NormalizeName(n)
		if err != nil {
			return nil, err
		}
		if net.ParseIP(nn) != nil {
			return nil, fmt.Errorf("%s: an IP address (the issuer validates names with dns-01, which cannot validate an address)", nn)
		}
		if !slices.Contains(out, nn) {
			out = append(out, nn)
		}
	}
	return out, nil
}

// CheckPolicies returns an error for each agent not revoked whose stored
// policy holds a name PolicyNames refuses now: a policy made by an older
// tlspilot with looser rules (a last label all digits, say). Such an
// agent's requests for that name are refused; the error says so and what
// to do. It returns the storage's error if the agents cannot be listed.
func (r *Registry) CheckPolicies(ctx context.Context) ([]error, error) {
	agents, err := r.Agents(ctx)
	if err != nil {
		return nil, err
	}
	var out []error
	for _, a := range agents {
		if !a.Revoked.IsZero() {
			continue
		}
		if _, err := PolicyNames(a.Names); err != nil {
			out = append(out, fmt.Errorf("agent %s: its policy %v holds a name this version refuses (%w): its requests for it are refused; "+
				"enrol it again with valid names (tlspilot issuer enroll), or revoke it (tlspilot issuer revoke-agent %s)", a.Host, a.Names, err, a.Host))
		}
	}
	return out, nil
}

func (r *Registry) load(ctx context.Context, key string, v any) error {
	b, err := r.s.Load(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

func (r *Registry) store(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return r.s.Store(ctx, key, b)
}
