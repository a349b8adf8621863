package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/renewal"
	"github.com/tlspilot/tlspilot/storage"
)

// Where the issuer keeps its certificate work.
const (
	// jobsPrefix holds one record per agent and set of names: the CSR
	// being served, its state and, once valid, the certificate.
	jobsPrefix = "fleet/jobs"
	// keysPrefix holds one record per public key ever sent in a CSR, so
	// that a key is never certified twice unless its agent keeps it on
	// purpose (reuse_key).
	keysPrefix = "fleet/keys"
)

// Defaults of the certificate work.
const (
	// DefaultMaxOrders bounds the orders the issuer runs at once. Orders
	// running together share their DNS updates and propagation waits.
	DefaultMaxOrders = 256
	// pollInterval is the RetryAfter of a "processing" answer, seconds.
	pollInterval = 5
	// retryMin and retryMax bound the backoff after a failed order.
	retryMin, retryMax = time.Minute, 6 * time.Hour
)

// job is the record of one agent's certificate for one set of names.
type job struct {
	ID       string    `json:"id"`
	Host     string    `json:"host"`
	Names    []string  `json:"names"`
	CSR      []byte    `json:"csr"`
	KeyHash  string    `json:"key_hash"`
	State    string    `json:"state"` // CertProcessing, CertValid or CertFailed
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	Attempts int       `json:"attempts,omitempty"`
	Error    string    `json:"error,omitempty"`
	RetryAt  time.Time `json:"retry_at,omitzero"`
	// CAWait is set when the failure is the CA's rate limit or came
	// with its Retry-After: RetryAt then holds whatever changed.
	CAWait bool `json:"ca_wait,omitempty"`
	// Setup is ServerOptions.Setup when the failure was recorded.
	Setup string `json:"setup,omitempty"`
	// Replaces is the leaf (PEM) of the certificate the work in progress
	// renews, named in the new order; empty for a first certificate.
	Replaces string `json:"replaces,omitempty"`
	// Set when valid.
	Serial      string    `json:"serial,omitempty"` // hexadecimal
	Fullchain   string    `json:"fullchain,omitempty"`
	RenewAfter  time.Time `json:"renew_after,omitzero"`
	RenewBefore time.Time `json:"renew_before,omitzero"`
}

// keyRecord says which job a public key was first sent for.
type keyRecord struct {
	Host  string    `json:"host"`
	Job   string    `json:"job"`
	First time.Time `json:"first"`
}

// runLock is the storage lock held while a job's certificate is being
// obtained.
func runLock(id string) string { return "fleet/run/" + id }

// jobHostLen is the most of the host a job ID holds: with "fleet-"
// and "-HASH" the ID stays within storage.MaxSegmentLen for any host
// fleetca.CheckHost accepts (up to 253 bytes).
const jobHostLen = storage.MaxSegmentLen - len("fleet-") - len("-0123456789abcdef")

// jobID names the work for host and names (in any order): one storage
// key segment, stable across requests. A host too long for the segment
// is cut; the hash, of the whole host, keeps IDs apart.
func jobID(host string, names []string) string {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	h := sha256.Sum256([]byte(host + "|" + strings.Join(sorted, ",")))
	return "fleet-" + host[:min(len(host), jobHostLen)] + "-" + hex.EncodeToString(h[:8])
}

// KeyHash returns the SHA-256 of a DER SubjectPublicKeyInfo, hex: how the
// audit trail names a key.
func KeyHash(spki []byte) string {
	h := sha256.Sum256(spki)
	return hex.EncodeToString(h[:])
}

// runner runs the certificate work of a Server in the background.
type runner struct {
	mu      sync.Mutex
	ctx     context.Context // the server's; nil until Serve or Start
	running map[string]bool // job IDs with a goroutine
	sem     chan struct{}   // bounds the orders at once
}

// Start resumes, in the background, the certificate work an earlier run
// of the issuer left in progress (a process killed mid-batch), and lets
// new requests start work, all until ctx ends. Serve calls it.
func (s *Server) Start(ctx context.Context) error {
	s.work.mu.Lock()
	s.work.ctx = ctx
	s.work.mu.Unlock()
	ids, err := s.opts.Registry.s.List(ctx, jobsPrefix)
	if ctx.Err() != nil {
		return nil // stopped as it started
	}
	if err != nil {
		return fmt.Errorf("fleet: list certificate work: %w", err)
	}
	resumed := 0
	for _, key := range ids {
		var j job
		if err := s.opts.Registry.load(ctx, key, &j); err != nil {
			s.log.Warn("unreadable certificate work", "key", key, "error", err)
			continue
		}
		if j.State == CertProcessing {
			s.startJob(j.ID)
			resumed++
		}
	}
	if resumed > 0 {
		s.log.Info("resuming certificate work", "certificates", resumed)
	}
	go s.reportProgress(ctx)
	return nil
}

// progressEvery is how often the issuer logs the work in progress.
const progressEvery = 10 * time.Second

// dnsWaiter is an Orderer that tells how many dns-01 records it waits
// for (tlspilot.Manager).
type dnsWaiter interface{ DNSWaiting() dns01.Waiting }

// reportProgress logs, while there is work in progress, how many
// certificates are being obtained and how many records the batch still
// waits for in DNS, until ctx ends.
func (s *Server) reportProgress(ctx context.Context) {
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.work.mu.Lock()
		n := len(s.work.running)
		s.work.mu.Unlock()
		if n == 0 {
			continue
		}
		attrs := []any{"certificates", n}
		msg := fmt.Sprintf("obtaining %d certificate(s)", n)
		if dw, ok := s.opts.Orderer.(dnsWaiter); ok {
			if w := dw.DNSWaiting(); w.Missing > 0 {
				msg += fmt.Sprintf(": waiting for %d more records to show up in DNS", w.Missing)
				attrs = append(attrs, "records_missing", w.Missing, "records", w.Total)
			}
		}
		s.log.Info(msg, attrs...)
	}
}

// certificateReq answers PathCertificate: the policy first (names,
// key), then the work for the agent's names.
func (s *Server) certificateReq(w http.ResponseWriter, r *http.Request, a *Agent) {
	var req CertificateRequest
	if !decodeBody(w, r, &req, "csr") {
		return
	}
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{"bad CSR: " + err.Error()})
		return
	}
	rec := AuditRecord{Host: a.Host, KeyHash: KeyHash(csr.RawSubjectPublicKeyInfo)}
	names, err := a.CheckCSR(csr)
	if err == nil && bytes.Equal(csr.RawSubjectPublicKeyInfo, r.TLS.PeerCertificates[0].RawSubjectPublicKeyInfo) {
		err = fmt.Errorf("%w: agent %s: the CSR's key is the agent's client-certificate key", ErrPolicy, a.Host)
	}
	if err != nil {
		rec.Names = csrNames(csr)
		s.refuse(r.Context(), w, rec, err)
		return
	}
	rec.Names = names
	resp, err := s.request(r.Context(), a, csr, names, req)
	if err != nil {
		if errors.Is(err, ErrPolicy) {
			s.refuse(r.Context(), w, rec, err)
			return
		}
		s.log.Error("certificate request", "host", a.Host, "names", names, "error", err)
		writeJSON(w, http.StatusInternalServerError, errorResponse{internalError})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// csrNames are the names a CSR asks for, as the audit trail records a
// refusal: its DNS names and its common name, if any and not among them.
func csrNames(csr *x509.CertificateRequest) []string {
	names := slices.Clone(csr.DNSNames)
	if cn := csr.Subject.CommonName; cn != "" && !slices.Contains(names, cn) {
		names = append(names, cn)
	}
	return names
}

// refuse answers a request refused by policy, and audits the refusal.
func (s *Server) refuse(ctx context.Context, w http.ResponseWriter, rec AuditRecord, err error) {
	rec.Decision, rec.Reason = AuditRefused, err.Error()
	s.audit(ctx, rec)
	s.log.Warn("certificate request refused", "host", rec.Host, "names", rec.Names, "reason", err)
	writeJSON(w, http.StatusForbidden, errorResponse{err.Error()})
}

// audit appends rec to the audit trail; a failure is logged (the
// request's outcome does not change, and the issuer's log keeps it).
func (s *Server) audit(ctx context.Context, rec AuditRecord) {
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	if s.opts.Auditor == nil {
		return
	}
	if err := s.opts.Auditor.Append(context.WithoutCancel(ctx), rec); err != nil {
		s.log.Error("audit trail: append failed", "host", rec.Host, "decision", rec.Decision, "error", err)
	}
}

// request looks at the work for a's names, under its lock: the same CSR
// gets the work's state; a new CSR (a renewal, or a new key) starts
// work, unless its key was seen before and the agent does not keep its
// key on purpose.
func (s *Server) request(ctx context.Context, a *Agent, csr *x509.CertificateRequest, names []string, req CertificateRequest) (*CertificateResponse, error) {
	reuseKey := req.ReuseKey
	id := jobID(a.Host, names)
	key := jobsPrefix + "/" + id
	// A poll (the same CSR, nothing to change) is answered from a plain
	// read: most requests are polls, and a lock is a file written and
	// synced on a directory storage.
	var j job
	if err := s.opts.Registry.load(ctx, key, &j); err == nil && bytes.Equal(j.CSR, csr.Raw) {
		if resp, err, ok := s.standing(&j, time.Now().UTC(), req, a.Host, names); ok {
			return resp, err
		}
	}
	lease, err := s.opts.Registry.s.Lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	ctx = storage.WithLease(ctx, lease)
	now := time.Now().UTC()
	j = job{}
	err = s.opts.Registry.load(ctx, key, &j)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	hash := KeyHash(csr.RawSubjectPublicKeyInfo)
	if exists && bytes.Equal(j.CSR, csr.Raw) {
		if resp, err, ok := s.standing(&j, now, req, a.Host, names); ok {
			return resp, err
		}
		// A failed order due for a retry, or a renewal with the same key.
	} else if err := s.claimKey(ctx, a.Host, id, hash, names, reuseKey || !exists || j.KeyHash == hash && j.State != CertValid); err != nil {
		return nil, err
	}
	if !exists {
		j = job{ID: id, Host: a.Host, Names: names, Created: now}
	}
	if j.State == CertValid {
		j.Replaces = leafPEM(j.Fullchain) // a renewal of the certificate in hand
	}
	j.CSR, j.KeyHash, j.State, j.Updated, j.Error = csr.Raw, hash, CertProcessing, now, ""
	if err := s.saveJob(ctx, j); err != nil {
		return nil, err
	}
	s.audit(ctx, AuditRecord{Host: a.Host, Names: names, KeyHash: hash, Decision: AuditAccepted})
	s.log.Info("certificate requested", "host", a.Host, "names", names)
	s.startJob(id)
	return &CertificateResponse{Status: CertProcessing, RetryAfter: pollInterval}, nil
}

// standing answers a request that repeats the CSR of job j when the
// answer changes nothing (ok): the work in progress, a failure not yet
// due for a retry, the certificate obtained (whatever its renewal window
// says: the answer did not reach the agent), or the refusal of a renewal
// that keeps the key without reuse_key. A failure due for a retry and a
// renewal naming j's certificate in Replaces start work: ok is false. A
// failure recorded under another Setup (the operator changed the [dns]
// settings, a TSIG secret say, and restarted the issuer) is due at once,
// unless the CA asked to wait; a restart alone changes nothing, so that
// an issuer restarting in a loop keeps every backoff.
func (s *Server) standing(j *job, now time.Time, req CertificateRequest, host string, names []string) (*CertificateResponse, error, bool) {
	switch {
	case j.State == CertProcessing:
		s.startJob(j.ID) // in case its goroutine ended with the server's context
		return &CertificateResponse{Status: CertProcessing, RetryAfter: pollInterval}, nil, true
	case j.State == CertFailed && now.Before(j.RetryAt) && (j.caWait() || j.Setup == s.opts.Setup):
		return &CertificateResponse{Status: CertFailed, Error: j.Error, RetryAfter: retryAfter(now, j.RetryAt)}, nil, true
	case j.State == CertValid && (req.Replaces == "" || !strings.EqualFold(req.Replaces, j.Serial)):
		return j.response(), nil, true
	case j.State == CertValid && !req.ReuseKey:
		return nil, fmt.Errorf("%w: agent %s: key reused for %s: this CSR's key is the key of the certificate it renews; make a new key (or set reuse_key = true on the agent)",
			ErrPolicy, host, strings.Join(names, ", ")), true
	}
	return nil, nil, false
}

// claimKey records that the key of hash is used for job id, refusing a
// key seen before, except for the same job when again allows it: the
// agent keeps its key on purpose, or the job has no certificate for the
// key yet (a CSR made again for a pending key).
func (s *Server) claimKey(ctx context.Context, host, id, hash string, names []string, again bool) error {
	key := keysPrefix + "/" + hash
	var kr keyRecord
	err := s.opts.Registry.load(ctx, key, &kr)
	switch {
	case err == nil && kr.Job == id && again:
		return nil
	case err == nil:
		return fmt.Errorf("%w: agent %s: key reused for %s: this key was already sent in a CSR (first on %s); make a new key",
			ErrPolicy, host, strings.Join(names, ", "), kr.First.Format(time.RFC3339))
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return s.opts.Registry.store(ctx, key, keyRecord{Host: host, Job: id, First: time.Now().UTC()})
}

func (s *Server) saveJob(ctx context.Context, j job) error {
	return s.opts.Registry.store(ctx, jobsPrefix+"/"+j.ID, j)
}

// caWait reports whether j's failure is the CA asking to wait (a rate
// limit, a Retry-After), whose RetryAt no restart resets. Records from
// before CAWait existed are recognised by their error.
func (j *job) caWait() bool {
	return j.CAWait || strings.Contains(j.Error, "rateLimited")
}

// response is the answer for a valid job.
func (j *job) response() *CertificateResponse {
	return &CertificateResponse{Status: CertValid, Fullchain: j.Fullchain, RenewAfter: j.RenewAfter, RenewBefore: j.RenewBefore}
}

// retryAfter is the whole seconds from now to t, at least 1.
func retryAfter(now, t time.Time) int {
	return max(1, int(t.Sub(now).Round(time.Second)/time.Second))
}

// startJob runs the work of id in the background unless it runs
// already or the server is not started.
func (s *Server) startJob(id string) {
	s.work.mu.Lock()
	defer s.work.mu.Unlock()
	if s.work.ctx == nil || s.work.ctx.Err() != nil || s.work.running[id] {
		return
	}
	s.work.running[id] = true
	go s.runJob(s.work.ctx, id)
}

// runJob obtains the certificate of job id, again while its CSR changes
// under it, and records the outcome.
func (s *Server) runJob(ctx context.Context, id string) {
	defer func() {
		s.work.mu.Lock()
		delete(s.work.running, id)
		s.work.mu.Unlock()
	}()
	// Issuers sharing a storage take turns: the one that comes second
	// finds the job done rather than ordering again.
	lease, err := s.opts.Registry.s.Lock(ctx, runLock(id))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("certificate work: lock", "job", id, "error", err)
		}
		return
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	select {
	case s.work.sem <- struct{}{}:
		defer func() { <-s.work.sem }()
	case <-ctx.Done():
		return
	}
	for ctx.Err() == nil {
		var j job
		if err := s.opts.Registry.load(ctx, jobsPrefix+"/"+id, &j); err != nil {
			s.log.Error("certificate work", "job", id, "error", err)
			return
		}
		if j.State != CertProcessing {
			return
		}
		csr, err := x509.ParseCertificateRequest(j.CSR)
		if err != nil {
			s.log.Error("certificate work: stored CSR", "job", id, "error", err)
			return
		}
		var c tlspilot.CSRCertificate
		if err = s.stillAllowed(ctx, j); err == nil {
			c, err = s.opts.Orderer.ObtainCSRReplacing(ctx, id, csr, j.Names, parseLeaf(j.Replaces))
		}
		if ctx.Err() != nil {
			return // the issuer stops; the next start resumes the order
		}
		if again, err := s.finish(ctx, j, csr, c, err); err != nil {
			s.log.Error("certificate work: record outcome", "job", id, "error", err)
			return
		} else if !again {
			return
		}
	}
}

// stillAllowed returns an error, to be recorded as the outcome of j,
// if j's agent was revoked or its policy no longer covers j's names
// since the work was accepted: work resumed after a restart, or queued
// behind other orders, is not ordered for them.
func (s *Server) stillAllowed(ctx context.Context, j job) error {
	a, err := s.opts.Registry.Agent(ctx, j.Host)
	if errors.Is(err, ErrNoAgent) {
		return err
	}
	if err != nil {
		// A failure to read is no refusal: the order goes on.
		s.log.Warn("certificate work: read the agent's record", "job", j.ID, "error", err)
		return nil
	}
	if !a.Revoked.IsZero() {
		return fmt.Errorf("fleet: %s: %w at %s, before its certificate was ordered", j.Host, ErrRevoked, a.Revoked.UTC().Format(time.RFC3339))
	}
	if _, err := a.Allows(j.Names); err != nil {
		return fmt.Errorf("%w (the policy changed before the certificate was ordered)", err)
	}
	return nil
}

// finish records the outcome of an order for j, under its lock. It
// reports whether the job's CSR changed meanwhile, so that it must be
// ordered again.
func (s *Server) finish(ctx context.Context, j job, csr *x509.CertificateRequest, c tlspilot.CSRCertificate, oerr error) (bool, error) {
	key := jobsPrefix + "/" + j.ID
	lease, err := s.opts.Registry.s.Lock(ctx, key)
	if err != nil {
		return false, err
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	ctx = storage.WithLease(ctx, lease)
	var cur job
	if err := s.opts.Registry.load(ctx, key, &cur); err != nil {
		return false, err
	}
	if !bytes.Equal(cur.CSR, csr.Raw) {
		return true, nil
	}
	now := time.Now().UTC()
	rec := AuditRecord{Host: cur.Host, Names: cur.Names, KeyHash: cur.KeyHash}
	cur.Updated = now
	if oerr != nil {
		cur.Attempts++
		cur.State, cur.Error, cur.Setup = CertFailed, oerr.Error(), s.opts.Setup
		wait := acmeclient.RetryAfterOf(oerr)
		cur.CAWait = acmeclient.ClassOf(oerr) == acmeclient.RateLimited || !wait.IsZero()
		cur.RetryAt = renewal.Backoff{Min: retryMin, Max: retryMax}.Next(now, cur.Attempts, wait, nil)
		rec.Decision, rec.Reason = AuditFailed, oerr.Error()
		s.log.Error("certificate failed", "host", cur.Host, "names", cur.Names, "attempt", cur.Attempts,
			"retry_in", cur.RetryAt.Sub(now).Round(time.Second), "error", oerr)
	} else {
		leaf := c.Leaf
		cur.State, cur.Attempts, cur.RetryAt, cur.CAWait = CertValid, 0, time.Time{}, false
		cur.Fullchain, cur.Serial, cur.Replaces = string(c.Fullchain), leaf.SerialNumber.Text(16), ""
		cur.RenewAfter, cur.RenewBefore = renewWindow(leaf.NotBefore, leaf.NotAfter, c.RenewalStart, c.RenewalEnd)
		rec.Decision, rec.OrderURL, rec.Chain = AuditIssued, c.OrderURL, cur.Fullchain
		rec.Serial, rec.NotBefore, rec.NotAfter = cur.Serial, leaf.NotBefore, leaf.NotAfter
		s.log.Info("issued certificate for "+cur.Host, "host", cur.Host, "names", cur.Names,
			"serial", rec.Serial, "not_after", leaf.NotAfter, "order", c.OrderURL)
	}
	if err := s.saveJob(ctx, cur); err != nil {
		return false, err
	}
	s.audit(ctx, rec)
	return false, nil
}

// renewWindow is when an agent should renew a certificate: the CA's
// window (RFC 9773) when it gave one, else the ratio rule's
// (internal/renewal: the last third of the lifetime, half for short
// ones) over its last fifteenth of the lifetime.
func renewWindow(notBefore, notAfter, ariStart, ariEnd time.Time) (time.Time, time.Time) {
	if !ariStart.IsZero() && ariEnd.After(ariStart) {
		return ariStart, ariEnd
	}
	end := renewal.Due(notBefore, notAfter, nil, func() float64 { return 0.999999 })
	start := renewal.Due(notBefore, notAfter, nil, func() float64 { return 0 })
	return start, end
}

// leafPEM returns the first PEM block of a chain, "" if none.
func leafPEM(chain string) string {
	b, _ := pem.Decode([]byte(chain))
	if b == nil {
		return ""
	}
	return string(pem.EncodeToMemory(b))
}

// parseLeaf parses a PEM certificate; nil if there is none or it does
// not parse (the order then names nothing it replaces).
func parseLeaf(p string) *x509.Certificate {
	c, err := parseCertificate(p)
	if err != nil {
		return nil
	}
	return c
}
