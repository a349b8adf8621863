package fleet

import (
	"context"
	"time"
)

// The decisions of an AuditRecord.
const (
	// AuditAccepted: a certificate request passed the policy and the
	// issuer set out to obtain it.
	AuditAccepted = "accepted"
	// AuditRefused: a request was refused (policy, weak or reused key,
	// revoked agent); Reason says why.
	AuditRefused = "refused"
	// AuditIssued: the certificate was obtained and handed out; Serial,
	// NotBefore, NotAfter, OrderURL and Chain are set.
	AuditIssued = "issued"
	// AuditFailed: the issuer could not obtain it; Reason says why.
	AuditFailed = "failed"
)

// AuditRecord is one row of the issuer's audit trail: a request's
// decision or an issuance's outcome. Rows are only ever appended.
type AuditRecord struct {
	// Time is when it happened (UTC).
	Time time.Time `json:"time"`
	// Host is the agent.
	Host string `json:"host"`
	// Names are the names asked for.
	Names []string `json:"names"`
	// KeyHash is the SHA-256 of the CSR's SubjectPublicKeyInfo, hex.
	KeyHash string `json:"key_hash,omitempty"`
	// Decision is AuditAccepted, AuditRefused, AuditIssued or
	// AuditFailed.
	Decision string `json:"decision"`
	// Reason says why a request was refused or failed.
	Reason string `json:"reason,omitempty"`
	// OrderURL is the ACME order, once there is one.
	OrderURL string `json:"order_url,omitempty"`
	// Serial is the issued certificate's serial number, hex.
	Serial string `json:"serial,omitempty"`
	// NotBefore and NotAfter bound the issued certificate's validity.
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// Chain is the issued certificate and its chain, PEM.
	Chain string `json:"chain,omitempty"`
}

// AuditQuery selects audit records.
type AuditQuery struct {
	// Since keeps records at or after this time; zero keeps all.
	Since time.Time
	// Host keeps one agent's records; empty keeps all.
	Host string
	// Decision keeps the records of one decision (AuditIssued, ...);
	// empty keeps all.
	Decision string
	// OmitChain leaves Chain empty in the results (PostgresAuditor then
	// does not read it): for listings that do not show it.
	OmitChain bool
}

// Auditor keeps the issuer's audit trail. Append must be durable when
// it returns; nothing in it is ever changed or removed.
type Auditor interface {
	// Append adds r.
	Append(ctx context.Context, r AuditRecord) error
	// Query returns the records q selects, oldest first.
	Query(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
}
