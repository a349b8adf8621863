package tlspilot

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
)

// Certificate states reported in CertStatus.State, from the most urgent.
const (
	// StateExpired: the certificate in service has expired.
	StateExpired = "expired"
	// StateRevoked: the certificate in service was revoked (tlspilot
	// revoke) and its replacement has not been obtained yet.
	StateRevoked = "revoked"
	// StatePending: no certificate from the CA yet (a temporary one is
	// served).
	StatePending = "pending"
	// StateExpiring: inside its warning window (see WarnWindow).
	StateExpiring = "expiring"
	// StateFailing: the last renewal attempt failed; the certificate in
	// service is still valid and outside its warning window.
	StateFailing = "failing"
	// StateRenewing: an order is under way.
	StateRenewing = "renewing"
	// StateValid: in service, renewal on schedule.
	StateValid = "valid"
	// StateUnmanaged: stored, but no longer named by the configuration;
	// neither served nor renewed (see Clean).
	StateUnmanaged = "unmanaged"
)

// stateRank orders states by urgency, most urgent first.
var stateRank = map[string]int{StateExpired: 0, StateRevoked: 1, StatePending: 2, StateExpiring: 3, StateFailing: 4,
	StateRenewing: 5, StateValid: 6, StateUnmanaged: 7}

// PendingCritical is how long a managed certificate may wait for its
// first certificate from the CA before status reports CRITICAL.
const PendingCritical = time.Hour

// CertStatus is the state of one certificate. It is part of the status
// document (StatusReport): its JSON names are stable.
type CertStatus struct {
	ID      string   `json:"id"`
	Names   []string `json:"names"`
	Managed bool     `json:"managed"` // named by the configuration
	// State is one of the State constants.
	State   string  `json:"state"`
	KeyType KeyType `json:"key_type"`
	CA      string  `json:"ca,omitempty"`     // directory URL it was obtained from
	Issuer  string  `json:"issuer,omitempty"` // issuing CA's common name
	Serial  string  `json:"serial,omitempty"` // hex, lower case
	// Serving is true when a CA-issued certificate is in service (not
	// the temporary one).
	Serving   bool      `json:"serving"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// DaysLeft is the time left until NotAfter in days, rounded to two
	// decimals (0 or less once expired), 0 without a certificate.
	DaysLeft float64 `json:"days_left"`
	// WarnFrom is when the warning window opens.
	WarnFrom time.Time `json:"warn_from,omitzero"`
	// NextRenewal is when the next attempt or check is due.
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	// RenewAt is when the certificate in service is to be renewed: the
	// time drawn inside its renewal window (the CA's, RFC 9773, else the
	// last third of its lifetime). Zero until one is drawn.
	RenewAt     time.Time `json:"renew_at,omitzero"`
	Renewing    bool      `json:"renewing"` // an attempt is under way
	Attempts    int       `json:"attempts"` // consecutive failed attempts
	LastError   string    `json:"last_error,omitempty"`
	LastProblem string    `json:"last_problem,omitempty"` // ACME problem type of the last failure
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// PendingSince is when the certificate was first managed, while it
	// has none from the CA.
	PendingSince time.Time `json:"pending_since,omitzero"`
	// RevokedAt is when this certificate was revoked (Manager.Revoke).
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// Deploy is the state of its deployment, for a certificate with a
	// Deployer (`tlspilot certs`); a failing one grades the report.
	Deploy *DeployStatus `json:"deploy,omitempty"`
	// CertFile is the file a certificate managed elsewhere (a site's
	// cert_file) was read from (FileStatus); empty for tlspilot's own.
	CertFile string `json:"cert_file,omitempty"`
	// AnswersLeft are challenge answers an order published for this
	// certificate and could not take down (a DNS server down at clean-up,
	// a clean-up hook failing). The next order or Renew removes them; they
	// do not change State or the report's Status.
	AnswersLeft []LeftAnswer `json:"answers_left,omitempty"`
	// unreadable: a record of it could not be read (LastError says
	// which); the report is UNKNOWN.
	unreadable bool
}

// LeftAnswer is a challenge answer published and not removed: for
// dns-01 the TXT record (RFC 8555 §8.4), else the identifier and token.
type LeftAnswer struct {
	Type  string `json:"type"`  // "dns-01", "http-01" or "tls-alpn-01"
	Name  string `json:"name"`  // TXT record name ("_acme-challenge.example.com") or identifier
	Value string `json:"value"` // TXT record value, or token
}

// Nagios plugin exit codes, used by status and certs --once.
const (
	ExitOK       = 0
	ExitWarning  = 1
	ExitCritical = 2
	ExitUnknown  = 3
)

// StatusSchema is the version of the status document; it changes only
// when a field changes meaning or disappears.
const StatusSchema = 1

// StatusReport is the status document: `tlspilot status --json` prints
// it and the admin listener serves it at /status. docs/status.md
// describes it.
type StatusReport struct {
	Schema int       `json:"schema"`
	Time   time.Time `json:"time"`
	// Status is "OK", "WARNING", "CRITICAL" or "UNKNOWN", and ExitCode
	// the matching Nagios plugin code (0 to 3): CRITICAL when a managed
	// certificate has expired or has waited for its first certificate
	// longer than PendingCritical, or was revoked and not replaced yet;
	// WARNING when one is expiring or
	// failing, or pending without any Manager having looked at it yet;
	// UNKNOWN when the configuration or the storage could not be read.
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
	// Error says what could not be read, for UNKNOWN.
	Error string `json:"error,omitempty"`
	// Note explains the report where it may mislead: `tlspilot status`
	// notes a storage directory that does not exist (every certificate
	// is then pending: serve has not run with this config, or another
	// user's default storage is read). It does not change Status.
	Note    string         `json:"note,omitempty"`
	Account *AccountStatus `json:"account,omitempty"`
	// Storage says whether the storage answers, in the report of a
	// running Manager (serve's admin listener); absent from `tlspilot
	// status`, which reads the storage itself.
	Storage *StorageStatus `json:"storage,omitempty"`
	// ClientAuth counts, per site and reason, the client certificates
	// refused since the process started, in the report of a running
	// server with [site.client_auth] (serve's admin listener); absent
	// otherwise. It does not change Status.
	ClientAuth []ClientAuthRefusals `json:"client_auth,omitempty"`
	// OCSPStaples are the OCSP responses stapled to the certificates
	// that name a responder, in the report of a running server; absent
	// otherwise. They do not change Status.
	OCSPStaples []StapleStatus `json:"ocsp_staples,omitempty"`
	// Certificates are sorted by urgency: state, then expiry. It is
	// the last field (internal/admin streams it).
	Certificates []CertStatus `json:"certificates"`
}

// ClientAuthRefusals is how many client certificates a site refused for
// one reason ("no_certificate", "untrusted", "expired", "depth",
// "revoked", "unknown", ...) since the server started.
type ClientAuthRefusals struct {
	Site   string `json:"site"`
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
}

// StapleStatus is the OCSP stapling of one certificate (RFC 6960, RFC
// 6066 §8).
type StapleStatus struct {
	// Names are the certificate's names; Serial its serial number in
	// lower-case hexadecimal.
	Names  []string `json:"names"`
	Serial string   `json:"serial"`
	// Responder is the OCSP responder asked.
	Responder string `json:"responder"`
	// Status is the last answer ("good", "revoked", "unknown"); empty
	// before any.
	Status string `json:"status,omitempty"`
	// Stapling reports whether handshakes get a staple now.
	Stapling bool `json:"stapling"`
	// ThisUpdate and Expires (nextUpdate) bound the response stapled now;
	// AgeSeconds is the time since ThisUpdate, in seconds. Absent while
	// nothing is stapled.
	ThisUpdate time.Time `json:"this_update,omitzero"`
	Expires    time.Time `json:"expires,omitzero"`
	AgeSeconds float64   `json:"age_seconds,omitempty"`
	// NextRefresh is when the next fetch is planned.
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	// Failures counts failed fetches since the certificate was first
	// seen.
	Failures int64 `json:"failures"`
}

// NewStatusReport makes the status document of certs at now: it sorts
// them by urgency and grades them (Status, ExitCode).
func NewStatusReport(now time.Time, certs []CertStatus, acct *AccountStatus) StatusReport {
	slices.SortFunc(certs, func(a, b CertStatus) int {
		if c := cmp.Compare(stateRank[a.State], stateRank[b.State]); c != 0 {
			return c
		}
		if c := a.NotAfter.Compare(b.NotAfter); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if certs == nil {
		certs = []CertStatus{}
	}
	r := StatusReport{Schema: StatusSchema, Time: now.UTC(), Account: acct, Certificates: certs}
	r.ExitCode = ExitOK
	for _, c := range certs {
		r.ExitCode = max(r.ExitCode, c.exitCode(now), c.Deploy.exitCode(now))
		if c.Managed && c.unreadable && r.Error == "" {
			r.Error = "certificate " + c.ID + ": " + c.LastError // Error explains UNKNOWN
		}
	}
	r.Status = exitNames[r.ExitCode]
	return r
}

var exitNames = [...]string{ExitOK: "OK", ExitWarning: "WARNING", ExitCritical: "CRITICAL", ExitUnknown: "UNKNOWN"}

// UnknownReport is the report of a status that could not be read.
func UnknownReport(now time.Time, err error) StatusReport {
	return StatusReport{Schema: StatusSchema, Time: now.UTC(), Status: exitNames[ExitUnknown], ExitCode: ExitUnknown,
		Error: err.Error(), Certificates: []CertStatus{}}
}

// exitCode grades one certificate.
func (c CertStatus) exitCode(now time.Time) int {
	switch {
	case !c.Managed:
		return ExitOK
	case c.unreadable:
		return ExitUnknown // its state cannot be told: not OK, whatever else is known
	case c.State == StateExpired, c.State == StateRevoked:
		return ExitCritical
	case c.State == StatePending && !c.PendingSince.IsZero() && now.Sub(c.PendingSince) > PendingCritical:
		return ExitCritical
	case c.State == StateExpiring, c.State == StateFailing, c.State == StatePending && c.Attempts > 0:
		return ExitWarning
	case c.State == StatePending && c.PendingSince.IsZero():
		return ExitWarning // never looked at by a Manager: is the daemon running?
	}
	return ExitOK
}

// settle fills in what follows from the other fields at now: days left,
// the warning window and the state.
func (c *CertStatus) settle(now time.Time, warn WarnWindow) {
	if c.Serving && !c.NotAfter.IsZero() {
		c.DaysLeft = math.Round(c.NotAfter.Sub(now).Hours()/24*100) / 100
		c.WarnFrom = warn.Start(c.NotBefore, c.NotAfter)
	}
	switch {
	case !c.Managed:
		c.State = StateUnmanaged
	case !c.Serving:
		c.State = StatePending
	case !now.Before(c.NotAfter):
		c.State = StateExpired
	case !c.RevokedAt.IsZero():
		c.State = StateRevoked
	case !now.Before(c.WarnFrom):
		c.State = StateExpiring
	case c.Attempts > 0:
		c.State = StateFailing
	case c.Renewing:
		c.State = StateRenewing
	default:
		c.State = StateValid
	}
}

// status reports e's state at now.
func (e *entry) status(now time.Time, warn WarnWindow) CertStatus {
	sn := e.snapshot()
	c := CertStatus{
		ID: e.id, Names: slices.Clone(e.site.names), Managed: true, KeyType: e.keyType,
		CA: sn.meta.ca, Issuer: sn.meta.issuer, Serial: sn.meta.serial,
		Serving: e.cur.Load() != nil, NotBefore: sn.meta.notBefore, NotAfter: sn.meta.notAfter,
		NextRenewal: sn.next, Renewing: sn.running, Attempts: sn.state.Attempts,
		RenewAt:   sn.state.RenewAt,
		LastError: sn.state.LastError, LastProblem: sn.state.LastProblem, LastAttempt: sn.state.LastAttempt,
		PendingSince: sn.state.PendingSince, RevokedAt: sn.state.RevokedAt,
	}
	c.settle(now, warn)
	return c
}

// Status reports the state of every managed certificate, sorted by
// urgency.
func (m *Manager) Status() []CertStatus {
	now := time.Now()
	m.mu.Lock()
	out := make([]CertStatus, 0, len(m.entries))
	for _, e := range m.entries {
		c := e.status(now, m.cfg.WarnWindow)
		c.Deploy = m.deployStatusOf(e.id, c.Serial)
		out = append(out, c)
	}
	m.mu.Unlock()
	return NewStatusReport(now, out, nil).Certificates
}

// Report returns the status document: every managed certificate, the
// certificates stored but no longer managed, and the account.
func (m *Manager) Report(ctx context.Context) StatusReport {
	now := time.Now()
	certs := m.Status()
	managed := make(map[string]bool, len(certs))
	for _, c := range certs {
		managed[c.ID] = true
	}
	storage := m.StorageStatus()
	var ids, left []string
	err := errStorageDown
	if storage.Up || storage.Checked.IsZero() {
		// A storage known down is not read: the report comes from memory
		// at once. Else the list is read within storageTimeout, then the
		// other certificates and the account within as much again.
		lctx, cancel := context.WithTimeout(ctx, storageTimeout)
		ids, left, err = m.store.ListCertsWith(lctx, issuance.LeftFile)
		cancel()
		ctx, cancel = context.WithTimeout(ctx, storageTimeout)
		defer cancel()
	}
	if err != nil {
		// The certificates in service are still reported, from memory.
		r := NewStatusReport(now, certs, nil)
		r.Status, r.ExitCode, r.Error = exitNames[ExitUnknown], ExitUnknown, err.Error()
		if storage.Up {
			storage = StorageStatus{Since: now, Checked: now, Error: err.Error()}
		}
		r.Storage = &storage
		return r
	}
	for _, id := range ids {
		if !managed[id] {
			certs = append(certs, storedStatus(ctx, m.store, id, nil, "", "", false, now, m.cfg.WarnWindow))
		}
	}
	addLeftovers(ctx, m.store, certs, left)
	acct := m.AccountStatus(ctx)
	r := NewStatusReport(now, certs, &acct)
	r.Storage = &storage
	return r
}

// errStorageDown is the error of a status report made while the last
// storage check failed.
var errStorageDown = errors.New("storage unreachable: certificates reported from memory")

// addLeftovers fills in AnswersLeft of those of certs whose ids are in
// with, the certificates that have a record of answers left behind
// (certstore.Store.ListCertsWith). A record that cannot be read is
// passed over: its answers were logged when left, and the next order
// reads it again.
func addLeftovers(ctx context.Context, st *certstore.Store, certs []CertStatus, with []string) {
	if len(with) == 0 {
		return
	}
	has := make(map[string]bool, len(with))
	for _, id := range with {
		has[id] = true
	}
	for i := range certs {
		if !has[certs[i].ID] {
			continue
		}
		chs, err := issuance.Leftovers(ctx, st, certs[i].ID)
		if err != nil {
			continue
		}
		for _, ch := range chs {
			name, value := issuance.Where(ch)
			certs[i].AnswersLeft = append(certs[i].AnswersLeft, LeftAnswer{Type: ch.Type, Name: name, Value: value})
		}
	}
}

// storedStatus reports the state of certificate id from storage alone,
// as a process that does not manage it sees it: for `tlspilot status`
// and for certificates no longer managed. names are the configured names
// (nil: those of the stored certificate); ca is the configured CA's
// directory URL ("" for one no longer managed), for the next renewal of
// a certificate from another CA (at once).
func storedStatus(ctx context.Context, st *certstore.Store, id string, names []string, kt KeyType, ca string, managed bool, now time.Time, warn WarnWindow) CertStatus {
	e := &entry{id: id, site: &site{names: names}, keyType: kt, ca: ca}
	c, err := st.LoadCertInfo(ctx, id)
	state, serr := st.LoadState(ctx, id)
	if err == nil {
		if names == nil {
			e.site.names = c.Names
		}
		if e.keyType == "" {
			e.keyType = c.KeyType
		}
		e.meta = certMeta{notBefore: c.NotBefore, notAfter: c.NotAfter, issuer: c.Issuer, ariID: c.ARIID,
			ca: c.CA, obtained: c.Obtained, serial: serialOfPEM(c.ChainPEM)}
		e.cur.Store(&tls.Certificate{}) // marks it as in service
	}
	if serr == nil {
		e.state = state
	}
	e.next = e.dueLocked(now, jitter)
	if created, perr := st.ProgressCreated(ctx, id); perr == nil {
		e.running = !staleOrder(created, e.meta.obtained) // a stale one is the certificate's own, left behind
	}
	cs := e.status(now, warn)
	cs.Managed = managed
	if managed {
		cs.Deploy = storedDeployStatus(ctx, st, id, cs.Serial)
	}
	switch {
	case errors.Is(err, certstore.ErrDamaged):
		cs.LastError, cs.unreadable = "stored certificate unreadable (damaged), a running Manager obtains it again: "+err.Error(), true
	case err != nil && !certstore.IsNotExist(err):
		cs.LastError, cs.unreadable = "unreadable stored certificate: "+err.Error(), true
	case serr != nil && !certstore.IsNotExist(serr):
		cs.LastError, cs.unreadable = "unreadable renewal state: "+serr.Error(), true
	}
	cs.settle(now, warn)
	return cs
}

// serialOfPEM returns the serial number of the first certificate of a
// PEM chain.
func serialOfPEM(chain string) string {
	b, _ := pem.Decode([]byte(chain))
	if b == nil {
		return ""
	}
	return serialOf(&tls.Certificate{Certificate: [][]byte{b.Bytes}})
}
