package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

// Enrolment token lifetimes.
const (
	// DefaultTokenTTL is how long an enrolment token stays usable when
	// Enroll is given no lifetime.
	DefaultTokenTTL = 24 * time.Hour
	// MaxTokenTTL is the longest lifetime Enroll accepts.
	MaxTokenTTL = 30 * 24 * time.Hour
)

// tokenBytes is the size of an enrolment token's random value (256 bits).
const tokenBytes = 32

// Errors of Redeem, wrapped by the error it returns.
var (
	// ErrTokenUnknown: no such token was ever made (or it was mistyped).
	ErrTokenUnknown = errors.New("unknown enrolment token")
	// ErrTokenUsed: the token enrolled an agent already.
	ErrTokenUsed = errors.New("enrolment token already used")
	// ErrTokenExpired: the token's lifetime is over.
	ErrTokenExpired = errors.New("enrolment token expired")
	// ErrRevoked: the agent was revoked (after the token was made, for
	// Redeem; at all, for Accept).
	ErrRevoked = errors.New("agent revoked")
)

// token is the stored record of an enrolment token: its hash is the
// record's key, the token itself is stored nowhere.
type token struct {
	Host    string    `json:"host"`
	Names   []string  `json:"names"` // the policy it was made with
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Used    time.Time `json:"used,omitzero"`
}

// tokenKey is the record key of a token: the hex SHA-256 of the token
// as given, so any string is a safe lookup.
func tokenKey(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return tokensPrefix + "/" + hex.EncodeToString(h[:])
}

// Enrollment is what Enroll made: the token, shown once, and the agent
// record with its policy.
type Enrollment struct {
	// Token is the one-time enrolment token; it is not stored anywhere.
	Token string
	// Expires is when the token stops being usable.
	Expires time.Time
	// Agent is the agent's record, policy set.
	Agent *Agent
	// WasRevoked is set when the agent had been revoked: the token
	// enrols it again.
	WasRevoked bool
}

// Enroll sets the policy of host to names (PolicyNames), creating its
// record if need be, and makes a one-time enrolment token valid for ttl
// (DefaultTokenTTL when 0, at most MaxTokenTTL). The policy applies at
// once, also to an agent already enrolled; the token lets an agent
// obtain its first client certificate as host. It is audited
// (AuditPolicy).
func (r *Registry) Enroll(ctx context.Context, host string, names []string, ttl time.Duration) (*Enrollment, error) {
	names, err := PolicyNames(names)
	if err != nil {
		return nil, fmt.Errorf("fleet: enrol %s: %w", host, err)
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < 0 || ttl > MaxTokenTTL {
		return nil, fmt.Errorf("fleet: enrol %s: token lifetime %v: want up to %v", host, ttl, MaxTokenTTL)
	}
	e := &Enrollment{}
	var before *Agent
	e.Agent, err = r.change(ctx, host, func(a *Agent, exists bool) error {
		if exists {
			before = &Agent{Names: a.Names, Revoked: a.Revoked}
		} else {
			a.Created = time.Now()
		}
		a.Names, e.WasRevoked = names, !a.Revoked.IsZero()
		return nil
	})
	if err != nil {
		return nil, err
	}
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails (crypto/rand.Read crashes the program instead)
	e.Token = base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	e.Expires = now.Add(ttl)
	rec := token{Host: host, Names: names, Created: now, Expires: e.Expires}
	if err := r.store(ctx, tokenKey(e.Token), rec); err != nil {
		return nil, fmt.Errorf("fleet: enrol %s: %w", host, err)
	}
	r.log.Info("agent enrolment token made", "host", host, "names", names, "expires", e.Expires)
	r.audit(ctx, AuditRecord{Time: now.UTC(), Host: host, Names: names, Decision: AuditPolicy, Reason: policyReason(e, before)})
	return e, nil
}

// policyReason says what an enrolment did, for its audit record: until
// when its token is usable, whether it re-admits a revoked agent, and
// the names it replaced (before is the agent's record before, nil if it
// had none).
func policyReason(e *Enrollment, before *Agent) string {
	reason := "enrolment token usable until " + e.Expires.UTC().Format(time.RFC3339)
	if before == nil {
		return reason + "; new agent"
	}
	if e.WasRevoked {
		reason += "; re-admits the agent revoked at " + before.Revoked.UTC().Format(time.RFC3339) + " once used"
	}
	if !slices.Equal(before.Names, e.Agent.Names) {
		reason += "; names were " + strings.Join(before.Names, ",")
	}
	return reason
}

// refuseToken audits the refusal of an enrolment token that names host
// (used already, expired, or made before host was revoked: a token that
// leaked, or an agent set up twice), decision AuditRefused with a reason
// starting "enrolment", and returns err. A token nobody made names no
// host and is only logged by the API.
func (r *Registry) refuseToken(ctx context.Context, host string, err error) error {
	r.audit(ctx, AuditRecord{Host: host, Decision: AuditRefused, Reason: "enrolment: " + strings.TrimPrefix(err.Error(), "fleet: ")})
	return err
}

// Redeem uses an enrolment token, once: it returns the agent it enrols
// (no longer revoked, Enrolled now). A token never made, already used or
// expired gives an error wrapping ErrTokenUnknown, ErrTokenUsed or
// ErrTokenExpired; a token made before the agent was revoked, one
// wrapping ErrRevoked. Two Redeem calls of one token, in any processes
// sharing the storage, never both succeed.
func (r *Registry) Redeem(ctx context.Context, tok string) (*Agent, error) {
	key := tokenKey(tok)
	// A token never made is refused from a plain read: anyone may send
	// one, and a lock is a write (a file synced, a database row).
	if _, err := r.s.Load(ctx, key); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fleet: %w", ErrTokenUnknown)
	}
	lease, err := r.s.Lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("fleet: lock enrolment token: %w", err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	var rec token
	switch err := r.load(ctx, key, &rec); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("fleet: %w", ErrTokenUnknown)
	case err != nil:
		return nil, fmt.Errorf("fleet: %w", err)
	case !rec.Used.IsZero():
		return nil, r.refuseToken(ctx, rec.Host, fmt.Errorf("fleet: %w (by %s at %s)", ErrTokenUsed, rec.Host, rec.Used.UTC().Format(time.RFC3339)))
	case !time.Now().Before(rec.Expires):
		return nil, r.refuseToken(ctx, rec.Host, fmt.Errorf("fleet: %w at %s (host %s): make a new one with tlspilot issuer enroll", ErrTokenExpired, rec.Expires.UTC().Format(time.RFC3339), rec.Host))
	}
	rec.Used = time.Now()
	if err := r.store(storage.WithLease(ctx, lease), key, rec); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	a, err := r.update(ctx, rec.Host, func(a *Agent) error {
		if !a.Revoked.IsZero() && rec.Created.Before(a.Revoked) {
			return r.refuseToken(ctx, rec.Host, fmt.Errorf("fleet: %s: %w at %s, after this token was made", rec.Host, ErrRevoked, a.Revoked.UTC().Format(time.RFC3339)))
		}
		a.Revoked, a.Enrolled, a.LastSeen = time.Time{}, rec.Used, rec.Used
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.log.Debug("enrolment token redeemed", "host", a.Host) // the API logs "agent enrolled" once the certificate is issued
	return a, nil
}
