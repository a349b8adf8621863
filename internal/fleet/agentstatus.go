package fleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
)

// IdentityStatusID is the ID under which AgentStatus reports the agent's
// own client certificate.
const IdentityStatusID = identityKey

// AgentStatus reports an agent's certificates at now from its storage
// alone, for `tlspilot status`: it reads no key and does not talk to the
// issuer, so it works while the issuer is down and for a user who can
// only read the storage. Each certificate of certs (Deployer unused: an
// agent's certificates always have files) is graded as the
// Manager's are, with warn as the warning window: a certificate whose
// renewal keeps failing turns "expiring" once in that window, whatever
// the issuer does. The agent's client certificate is reported too (ID
// IdentityStatusID), since without it the agent obtains nothing. An error
// means the storage could not be read.
func AgentStatus(ctx context.Context, st storage.Storage, issuer string, certs []KeptCert, now time.Time, warn tlspilot.WarnWindow) ([]tlspilot.CertStatus, error) {
	out := make([]tlspilot.CertStatus, 0, len(certs)+1)
	id, err := identityStatus(ctx, st, issuer, now, warn)
	if err != nil {
		return nil, err
	}
	out = append(out, id)
	for _, c := range certs {
		s, err := certStatus(ctx, st, issuer, c, now, warn)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// certStatus reports one certificate of the agent.
func certStatus(ctx context.Context, st storage.Storage, issuer string, c KeptCert, now time.Time, warn tlspilot.WarnWindow) (tlspilot.CertStatus, error) {
	id := agentCertID(c.Names, c.KeyType)
	s := tlspilot.CertStatus{ID: id, Names: slices.Clone(c.Names), Managed: true, KeyType: tlspilot.KeyType(c.KeyType), CA: issuer}
	rec, ok, err := loadRecord(ctx, st, recordKey(id))
	if err != nil {
		return s, fmt.Errorf("fleet: agent status: %w", err)
	}
	if ok {
		fillStatus(&s, rec)
	}
	s.Grade(now, warn)
	return s, nil
}

// fillStatus copies what rec says into s.
func fillStatus(s *tlspilot.CertStatus, rec *certRecord) {
	s.Issuer, s.Serial = rec.Issuer, rec.Serial
	s.Serving = rec.Fullchain != ""
	s.NotBefore, s.NotAfter = rec.NotBefore, rec.NotAfter
	s.RenewAt, s.Renewing = rec.RenewAt, rec.Pending != nil
	s.Attempts, s.LastError, s.LastAttempt = rec.Attempts, rec.LastError, rec.LastAttempt
	switch {
	case rec.Attempts > 0:
		s.NextRenewal = rec.RetryAt
	case rec.Pending != nil:
		s.NextRenewal = rec.Pending.PollAt
	default:
		s.NextRenewal = rec.RenewAt
	}
	if !s.Serving {
		s.PendingSince = rec.FirstSeen
	}
	if s.Serving {
		s.Deploy = deployStatus(rec)
	}
}

// deployStatus reports the deployment of rec's certificate.
func deployStatus(rec *certRecord) *tlspilot.DeployStatus {
	d := rec.Deploy
	ds := &tlspilot.DeployStatus{State: tlspilot.DeployDone, Serial: d.Serial, NotAfter: d.NotAfter, DeployedAt: d.At,
		Attempts: d.Attempts, LastError: d.LastError, LastAttempt: d.LastAttempt, RetryAt: d.RetryAt}
	switch {
	case d.Attempts > 0:
		ds.State = tlspilot.DeployFailing
	case d.Serial != rec.Serial || d.ReloadOwed:
		ds.State = tlspilot.DeployPending
	}
	return ds
}

// identityStatus reports the agent's client certificate, without
// opening its key; an agent not enrolled is pending. A certificate the
// issuer refused at the last exchange with it (a revoked agent, one
// unknown to the issuer) is failing, with the refusal as its last
// error, until an exchange succeeds or the agent is enrolled again.
func identityStatus(ctx context.Context, st storage.Storage, issuer string, now time.Time, warn tlspilot.WarnWindow) (tlspilot.CertStatus, error) {
	s := tlspilot.CertStatus{ID: IdentityStatusID, Names: []string{}, Managed: true, CA: issuer}
	host, cert, err := storedCertificate(ctx, st)
	if errors.Is(err, fs.ErrNotExist) {
		s.LastError = "not enrolled: run tlspilot agent enroll with a token from tlspilot issuer enroll"
		s.Grade(now, warn)
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("fleet: agent status: %w", err)
	}
	refusal, refused, err := loadRefusal(ctx, st, serialHex(cert))
	if err != nil {
		return s, fmt.Errorf("fleet: agent status: %w", err)
	}
	if refused {
		s.Attempts, s.LastError, s.LastAttempt = max(1, refusal.Attempts), refusal.Error, refusal.At
	}
	id := &Identity{Host: host, Certificate: cert}
	s.Names = []string{host}
	if kt, err := keys.TypeOf(cert.PublicKey); err == nil {
		s.KeyType = tlspilot.KeyType(kt)
	}
	s.Issuer, s.Serial = cert.Issuer.CommonName, cert.SerialNumber.Text(16)
	s.Serving, s.NotBefore, s.NotAfter = true, cert.NotBefore, cert.NotAfter
	s.RenewAt, s.NextRenewal = id.RenewAt(), id.RenewAt()
	s.Grade(now, warn)
	return s, nil
}
