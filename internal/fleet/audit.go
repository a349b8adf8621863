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
	// revoked agent), or an enrolment token that names a host (used
	// already, expired, or made before the host was revoked); Reason says
	// why, starting "enrolment" for a token.
	AuditRefused = "refused"
	// AuditIssued: the certificate was obtained and handed out; Serial,
	// NotBefore, NotAfter, OrderURL and Chain are set.
	AuditIssued = "issued"
	// AuditFailed: the issuer could not obtain it; Reason says why.
	AuditFailed = "failed"
	// AuditPolicy: an administrator set the names an agent may obtain
	// and made it an enrolment token (Registry.Enroll, `tlspilot issuer
	// enroll`). Names is the new policy; Reason says until when the
	// token is usable, and whether it re-admits a revoked agent.
	AuditPolicy = "policy"
	// AuditEnrolled: an agent redeemed its token and the fleet CA issued
	// its first client certificate. Names is the agent's policy; KeyHash,
	// Serial, NotBefore, NotAfter and Chain (the client certificate) are
	// set.
	AuditEnrolled = "enrolled"
	// AuditClientRenewed: the fleet CA issued an agent a new client
	// certificate; the fields are AuditEnrolled's.
	AuditClientRenewed = "client-renewed"
	// AuditAgentRevoked: an administrator revoked an agent
	// (Registry.Revoke, `tlspilot issuer revoke-agent`); Names is its
	// policy, Reason what the revocation dropped.
	AuditAgentRevoked = "agent-revoked"
)

// auditDecisions returns every decision, in the order the PostgreSQL
// table's CHECK lists them.
func auditDecisions() []string {
	return []string{AuditAccepted, AuditRefused, AuditIssued, AuditFailed,
		AuditPolicy, AuditEnrolled, AuditClientRenewed, AuditAgentRevoked}
}

// AuditRecord is one row of the issuer's audit trail: a request's
// decision or an issuance's outcome, an agent's enrolment or client
// certificate, or an administrator's change to an agent (its policy, its
// revocation). Rows are only ever appended.
type AuditRecord struct {
	// Time is when it happened (UTC).
	Time time.Time `json:"time"`
	// Host is the agent.
	Host string `json:"host"`
	// Names are the names asked for; for the agent's own decisions
	// (AuditPolicy, AuditEnrolled, AuditClientRenewed,
	// AuditAgentRevoked), its policy.
	Names []string `json:"names"`
	// KeyHash is the SHA-256 of the CSR's SubjectPublicKeyInfo, hex
	// (KeyHash).
	KeyHash string `json:"key_hash,omitempty"`
	// Decision is one of the Audit* constants above.
	Decision string `json:"decision"`
	// Reason says why a request was refused or failed, or what an
	// administrator's change did.
	Reason string `json:"reason,omitempty"`
	// OrderURL is the ACME order, once there is one.
	OrderURL string `json:"order_url,omitempty"`
	// Serial is the issued certificate's serial number, hex (for
	// AuditEnrolled and AuditClientRenewed, the client certificate's).
	Serial string `json:"serial,omitempty"`
	// NotBefore and NotAfter bound the issued certificate's validity.
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// Chain is the issued certificate and its chain, PEM (the client
	// certificate alone for AuditEnrolled and AuditClientRenewed).
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
