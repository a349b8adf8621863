package fleet

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/fleetca"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/oneline"
	"github.com/tlspilot/tlspilot/storage"
)

// identityKey is the record of an agent's own key and client
// certificate in the agent's storage; its sealed key is bound to it.
const identityKey = "agent/identity"

// Identity is an agent's key and the client certificate the issuer gave
// it. The key never leaves the agent.
type Identity struct {
	// Host is the agent's name, the subject of its certificate.
	Host string
	// Key is the agent's private key.
	Key crypto.Signer
	// Certificate is its client certificate, from the fleet CA.
	Certificate *x509.Certificate
}

// TLSCertificate returns the identity as a TLS client certificate.
func (id *Identity) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{id.Certificate.Raw}, PrivateKey: id.Key, Leaf: id.Certificate}
}

// Client talks to the issuer's API from an agent.
type Client struct {
	base        *url.URL
	http        *http.Client
	roots       *x509.CertPool // the fleet CA
	host        string         // the host of the identity presented; "" without one
	hasIdentity bool           // presents a client certificate
}

// ErrIdentityRefused is wrapped by the error of a request whose TLS
// handshake the issuer ended with an alert about the agent's client
// certificate, or that it answered with its refusal of that
// certificate: the agent was revoked, or its certificate is unknown to
// the issuer (another issuer, a reset storage).
var ErrIdentityRefused = errors.New("the issuer refused this agent's client certificate (agent revoked, or unknown to this issuer): enrol again with tlspilot agent enroll and a new token")

// refusalAlerts are the TLS alerts (RFC 8446 §6.2) an issuer ends a
// handshake with when it does not accept a client certificate:
// bad_certificate, certificate_revoked, certificate_expired,
// certificate_unknown, unknown_ca, certificate_required.
var refusalAlerts = []tls.AlertError{42, 44, 45, 46, 48, 116}

// refusedInHandshake reports whether err is one of refusalAlerts from
// the issuer. net/http keeps only the text of an error met while it
// reads a response, so the text is matched too.
func refusedInHandshake(err error) bool {
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return slices.Contains(refusalAlerts, alert)
	}
	for _, a := range refusalAlerts {
		if strings.Contains(err.Error(), "remote error: "+a.Error()) {
			return true
		}
	}
	return false
}

// ClientOptions configures a Client.
type ClientOptions struct {
	// Issuer is the issuer's base URL ("issuer" in the agent's config):
	// https only.
	Issuer string
	// Roots holds the fleet CA ("issuer_ca"): the only root trusted for
	// the issuer.
	Roots *x509.CertPool
	// Identity is the client certificate to present; nil to enrol.
	Identity *Identity
}

// NewClient checks opts and returns a Client.
func NewClient(opts ClientOptions) (*Client, error) {
	u, err := url.Parse(opts.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("fleet: issuer %q: want an https:// URL", opts.Issuer)
	}
	if opts.Roots == nil {
		return nil, errors.New("fleet: the fleet CA certificate (issuer_ca) is required")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: opts.Roots}
	if opts.Identity != nil {
		tc.Certificates = []tls.Certificate{opts.Identity.TLSCertificate()}
	}
	// HTTP/1.1: an agent makes a few calls a day, and a refused client
	// certificate (TLS 1.3 reports it after the client's side of the
	// handshake) then surfaces as the issuer's TLS alert; over HTTP/2 the
	// transport sometimes reported only that the connection could not be
	// established.
	tc.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{TLSClientConfig: tc, TLSHandshakeTimeout: 15 * time.Second,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	c := &Client{base: u, http: &http.Client{Transport: tr, Timeout: time.Minute}, roots: opts.Roots, hasIdentity: opts.Identity != nil}
	if opts.Identity != nil {
		c.host = opts.Identity.Host
	}
	return c, nil
}

// RenewAt is when the identity's client certificate should be renewed:
// when a third of its lifetime remains.
func (id *Identity) RenewAt() time.Time {
	c := id.Certificate
	return c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / 3)
}

// Enroll makes a new key, sends a CSR for it with token and returns the
// identity the issuer's answer completes. Only the CSR leaves the agent.
func (c *Client) Enroll(ctx context.Context, token string) (*Identity, error) {
	id, err := c.newIdentity(ctx, PathEnroll, func(csr []byte) any {
		return EnrollRequest{Token: strings.TrimSpace(token), CSR: csr}
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: enrol: %w", err)
	}
	return id, nil
}

// RenewIdentity makes a new key and gets a client certificate for it,
// authenticated by the client certificate this Client presents.
func (c *Client) RenewIdentity(ctx context.Context) (*Identity, error) {
	id, err := c.newIdentity(ctx, PathClientCert, func(csr []byte) any { return ClientCertRequest{CSR: csr} })
	if err != nil {
		return nil, fmt.Errorf("fleet: renew client certificate: %w", err)
	}
	return id, nil
}

// newIdentity makes a key and a CSR, sends body(CSR) to path and checks
// the certificate answered (checkIdentity) before anything stores it.
func (c *Client) newIdentity(ctx context.Context, path string, body func(csr []byte) any) (*Identity, error) {
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "tlspilot agent"}}, key)
	if err != nil {
		return nil, fmt.Errorf("CSR: %w", err)
	}
	var resp EnrollResponse
	if err := c.do(ctx, http.MethodPost, path, body(csr), &resp); err != nil {
		return nil, err
	}
	cert, err := parseCertificate(resp.Certificate)
	if err != nil {
		return nil, fmt.Errorf("the issuer's answer: %w", err)
	}
	if err := c.checkIdentity(resp.Host, cert, key.Public()); err != nil {
		return nil, fmt.Errorf("the issuer's certificate: %w", err)
	}
	return &Identity{Host: resp.Host, Key: key, Certificate: cert}, nil
}

// checkIdentity checks a client certificate the issuer answered with,
// so that a broken issuer's answer never replaces a working identity:
// for pub, issued by the fleet CA (c.roots) for client authentication,
// valid now (or starting within identitySkew), naming host (a name
// fleetca.CheckHost accepts) as its subject; and, for a renewal, host
// is the agent's own.
func (c *Client) checkIdentity(host string, cert *x509.Certificate, pub crypto.PublicKey) error {
	if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(cert.PublicKey) {
		return errors.New("not for this agent's key")
	}
	if err := fleetca.CheckHost(host); err != nil {
		return fmt.Errorf("the answer names the agent %q: %w", host, err)
	}
	if cert.Subject.CommonName != host {
		return fmt.Errorf("issued to %q, not to %s as the answer says", cert.Subject.CommonName, host)
	}
	if c.host != "" && host != c.host {
		return fmt.Errorf("a renewal for %s, but this agent is %s", host, c.host)
	}
	at := time.Now()
	if nb := cert.NotBefore; nb.After(at) && nb.Sub(at) <= identitySkew {
		at = nb // the issuer's clock is ahead of this agent's
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: c.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: at}); err != nil {
		return fmt.Errorf("not a client certificate of the fleet CA valid now: %w", err)
	}
	return nil
}

// identitySkew is how far ahead of the agent's clock a client
// certificate may start and still count as valid now. The issuer, whose
// clock alone decides whether it accepts the certificate, backdates it
// by a few minutes only (fleetca): an agent whose clock runs behind by
// more would refuse every certificate answered, its renewals included,
// until its client certificate expired.
const identitySkew = time.Hour

// Agent asks the issuer what it knows of this agent.
func (c *Client) Agent(ctx context.Context) (*AgentResponse, error) {
	var resp AgentResponse
	if err := c.do(ctx, http.MethodGet, PathAgent, nil, &resp); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	resp.Host = oneline.Escape(resp.Host)
	for i, n := range resp.Names {
		resp.Names[i] = oneline.Escape(n)
	}
	return &resp, nil
}

// do sends body (JSON, unless nil) to path and decodes a 200 answer into
// out; any other answer is an error carrying the issuer's message,
// escaped by oneline.Escape.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.JoinPath(path).String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if c.hasIdentity && refusedInHandshake(err) {
			return fmt.Errorf("issuer %s: %w: %w", c.base.Host, ErrIdentityRefused, err)
		}
		return fmt.Errorf("issuer %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		_ = dec.Decode(&e)
		msg := oneline.Escape(e.Error)
		if c.hasIdentity && refusesIdentity(resp.StatusCode, e.Error) {
			return fmt.Errorf("issuer %s refused (HTTP %d): %s: %w", c.base.Host, resp.StatusCode, msg, ErrIdentityRefused)
		}
		return fmt.Errorf("issuer %s refused (HTTP %d): %s", c.base.Host, resp.StatusCode, msg)
	}
	return dec.Decode(out)
}

// refusesIdentity reports whether an HTTP answer is the issuer's
// refusal of the client certificate presented (requireAgent): on a
// connection opened before a revocation, the refusal comes as 403
// rather than in the handshake.
func refusesIdentity(status int, msg string) bool {
	if status == http.StatusUnauthorized {
		return true
	}
	return status == http.StatusForbidden && slices.ContainsFunc([]error{ErrRevoked, ErrUnknownCert, ErrNoAgent},
		func(e error) bool { return msg == e.Error() })
}

// identityRecord is the stored form of an Identity.
type identityRecord struct {
	Host        string `json:"host"`
	Certificate string `json:"certificate"`
	SealedKey   string `json:"sealed_key"`
}

// SaveIdentity stores id in the agent's storage, its key sealed.
func SaveIdentity(ctx context.Context, st storage.Storage, sealer *keys.Sealer, id *Identity) error {
	sealed, err := sealer.SealKey(id.Key, identityKey)
	if err != nil {
		return fmt.Errorf("fleet: save identity: %w", err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Certificate.Raw})
	b, err := json.Marshal(identityRecord{Host: id.Host, Certificate: string(p), SealedKey: string(sealed)})
	if err != nil {
		return fmt.Errorf("fleet: save identity: %w", err)
	}
	if err := st.Store(ctx, identityKey, b); err != nil {
		return fmt.Errorf("fleet: save identity: %w", err)
	}
	return nil
}

// LoadIdentity reads the agent's identity; a storage without one gives
// an error wrapping fs.ErrNotExist, a key that is not the certificate's
// one wrapping keys.ErrKeyMismatch.
func LoadIdentity(ctx context.Context, st storage.Storage, sealer *keys.Sealer) (*Identity, error) {
	b, err := st.Load(ctx, identityKey)
	if err != nil {
		return nil, fmt.Errorf("fleet: load identity (enrol with tlspilot agent enroll): %w", err)
	}
	var r identityRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("fleet: decode %s: %w", identityKey, err)
	}
	cert, err := parseCertificate(r.Certificate)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", identityKey, err)
	}
	key, err := sealer.OpenKey([]byte(r.SealedKey), identityKey)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", identityKey, err)
	}
	if err := keys.CheckMatch([]byte(r.Certificate), key); err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", identityKey, err)
	}
	return &Identity{Host: r.Host, Key: key, Certificate: cert}, nil
}

// parseCertificate parses one PEM certificate.
func parseCertificate(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
