package fleet

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
)

// agentCertsPrefix is the folder of the agent's certificate records.
const agentCertsPrefix = "agent/certs"

// certRecord is what an agent keeps of one of its certificates, in one
// storage record: the certificate in service and its key, the order in
// flight, the renewal schedule and the state of its deployment. Keys are
// sealed, bound to the record's storage key.
type certRecord struct {
	Names   []string `json:"names"`
	KeyType string   `json:"key_type"`
	// FirstSeen is when the agent first kept this certificate.
	FirstSeen time.Time `json:"first_seen"`

	// The certificate in service: its chain (PEM, leaf first) and key.
	Fullchain string    `json:"fullchain,omitempty"`
	SealedKey string    `json:"sealed_key,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// RenewAfter and RenewBefore are the issuer's renewal window;
	// RenewAt the time drawn in it (or in the ratio rule's).
	RenewAfter  time.Time `json:"renew_after,omitzero"`
	RenewBefore time.Time `json:"renew_before,omitzero"`
	RenewAt     time.Time `json:"renew_at,omitzero"`

	// Pending is the order in flight: stored before its CSR is sent, so
	// that a restarted agent sends the same CSR again.
	Pending *pendingOrder `json:"pending,omitempty"`

	// Consecutive failed requests, the last one's error and time, and
	// when to try again.
	Attempts    int       `json:"attempts,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
	// RefusedWith is the serial of the client certificate the issuer
	// refused in the last failure (an agent revoked, or unknown to the
	// issuer): once another is in use (a new enrolment), the request is
	// made again at once.
	RefusedWith string `json:"refused_with,omitempty"`

	Deploy deployState `json:"deploy"`
}

// pendingOrder is a CSR sent (or about to be sent) to the issuer.
type pendingOrder struct {
	SealedKey string    `json:"sealed_key"`
	CSR       []byte    `json:"csr"`
	Since     time.Time `json:"since"`
	// Replaces is the serial of the certificate in service when the
	// order was made, which it renews; empty for the first.
	Replaces string `json:"replaces,omitempty"`
	// PollAt is when to ask again after a "processing" answer.
	PollAt time.Time `json:"poll_at,omitzero"`
}

// deployState is what was deployed of the certificate in service.
type deployState struct {
	Serial      string    `json:"serial,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	At          time.Time `json:"at,omitzero"`
	ReloadOwed  bool      `json:"reload_owed,omitempty"`
	Attempts    int       `json:"attempts,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
	// Config is the deploy configuration (KeptCert.DeployConfig) of the
	// last attempt: a failure under another one is retried at once.
	Config string `json:"config,omitempty"`
}

// agentCertID names a certificate of the agent by its names and key
// type: the first name made a valid key segment, and a hash of them all,
// so that a change of names in the config starts a new record.
func agentCertID(names []string, kt keys.Type) string {
	sorted := slices.Sorted(slices.Values(names))
	h := sha256.Sum256([]byte(strings.Join(sorted, ",") + "|" + string(kt)))
	var b strings.Builder
	for _, c := range strings.ToLower(names[0]) {
		switch {
		case c == '*':
			b.WriteString("wildcard_")
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return strings.Trim(b.String(), ".") + "-" + string(kt) + "-" + hex.EncodeToString(h[:4])
}

// recordKey is the storage key of the certificate with id.
func recordKey(id string) string { return agentCertsPrefix + "/" + id }

// loadRecord reads the record at key; ok is false when there is none.
func loadRecord(ctx context.Context, st storage.Storage, key string) (rec *certRecord, ok bool, err error) {
	b, err := st.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load %s: %w", key, err)
	}
	rec = &certRecord{}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, false, fmt.Errorf("decode %s: %w", key, err)
	}
	return rec, true, nil
}

// storeRecord writes rec at key.
func storeRecord(ctx context.Context, st storage.Storage, key string, rec *certRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := st.Store(ctx, key, b); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// keyPEM opens the key of the certificate in service and encodes it as
// PKCS #8 PEM, for deployment. A key that is not the certificate's gives
// an error wrapping keys.ErrKeyMismatch.
func (r *certRecord) keyPEM(sealer *keys.Sealer, key string) ([]byte, error) {
	k, err := sealer.OpenKey([]byte(r.SealedKey), key)
	if err != nil {
		return nil, fmt.Errorf("open the key of %s: %w", key, err)
	}
	if err := keys.CheckMatch([]byte(r.Fullchain), k); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode the key of %s: %w", key, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseChain parses a PEM chain, leaf first; it holds at least one
// certificate and nothing but certificates. A block that does not
// decode (damaged, or cut before its end line) is an error: pem.Decode
// skips it like text, and the chain would lose that certificate.
func parseChain(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("chain: unexpected PEM block %q", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("chain: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("chain: no PEM certificate")
	}
	if n := strings.Count(s, "-----BEGIN "); n != len(out) {
		return nil, fmt.Errorf("chain: %d PEM block(s) begun, %d decoded: a block is damaged or cut", n, len(out))
	}
	return out, nil
}

// checkIssued checks that chain (PEM, leaf first) is a certificate for
// key and exactly names (DNS names only: no IP address, e-mail address
// or URI), currently valid at now, not a CA, usable for server
// authentication (or for any use), and that each certificate of the
// chain is signed by the next one.
func checkIssued(chainPEM string, key crypto.PublicKey, names []string, now time.Time) (*x509.Certificate, error) {
	chain, err := parseChain(chainPEM)
	if err != nil {
		return nil, err
	}
	leaf := chain[0]
	pub, ok := key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, errors.New("the certificate is not for this agent's key")
	}
	if got, want := normalizedSet(leaf.DNSNames), normalizedSet(names); !slices.Equal(got, want) {
		return nil, fmt.Errorf("the certificate names %s, not %s", strings.Join(got, ","), strings.Join(want, ","))
	}
	if n := len(leaf.IPAddresses) + len(leaf.EmailAddresses) + len(leaf.URIs); n > 0 {
		return nil, fmt.Errorf("the certificate names %d IP address(es), e-mail address(es) or URI(s) besides %s", n, strings.Join(names, ","))
	}
	if leaf.IsCA {
		return nil, errors.New("the certificate is a CA certificate")
	}
	// An extended key usage of purposes Go does not name only (in
	// UnknownExtKeyUsage) excludes server authentication too.
	if len(leaf.ExtKeyUsage)+len(leaf.UnknownExtKeyUsage) > 0 && !slices.ContainsFunc(leaf.ExtKeyUsage, func(u x509.ExtKeyUsage) bool {
		return u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny
	}) {
		return nil, errors.New("the certificate is not for server authentication (extended key usage)")
	}
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return nil, fmt.Errorf("the certificate is valid from %s to %s, not now", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return nil, fmt.Errorf("certificate %d of the chain (%s) is not signed by the next one (%s): %w",
				i+1, chain[i].Subject.CommonName, chain[i+1].Subject.CommonName, err)
		}
	}
	return leaf, nil
}

// cleanChain re-encodes a PEM chain that parseChain accepts as its
// certificates alone, so that what the agent stores and deploys is
// exactly what checkIssued checked: no text between the certificates,
// no PEM headers (a "Proc-Type: 4,ENCRYPTED" makes OpenSSL take a
// certificate for an encrypted one).
func cleanChain(s string) (string, error) {
	chain, err := parseChain(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, c := range chain {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String(), nil
}

// normalizedSet lower-cases names, sorts them and drops duplicates.
func normalizedSet(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(strings.TrimSuffix(n, "."))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
