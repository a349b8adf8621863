// Package issuance runs one ACME order from start to certificate, saving
// its progress before every step so that a process stopped at any moment
// resumes the same order on its next start.
package issuance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/solvers"
)

// Request names the certificate to obtain.
type Request struct {
	ID        string    // certstore identifier of the certificate
	Names     []string  // normalised DNS names and IP addresses
	KeyType   keys.Type // key of the new certificate
	Challenge string    // challenge type to solve: http-01, tls-alpn-01 or dns-01
	Profile   string    // ACME profile, empty for the CA's default
	Replaces  string    // ARI certificate ID of the certificate being renewed
	// After discards saved progress older than this time: an order saved
	// before the certificate in service was obtained is the one that
	// produced it.
	After time.Time
	// CSR, when set, is finalized instead of a CSR for a key of our own
	// (KeyType is then unused): the certificate is for someone else's key
	// (a fleet agent's), and the result holds no Key. It must cover
	// Names.
	CSR *x509.CertificateRequest
}

// Flow obtains certificates from one CA with one account.
type Flow struct {
	Client  *acmeclient.Client
	Account acmeclient.Account
	Store   *certstore.Store
	Solvers map[string]solvers.Solver
	Log     *slog.Logger
	// OnOrder, if set, is called after the CA accepted a new order.
	OnOrder func(orderURL string)
	// OnStep, if set, is told the step of the order being started (one
	// of the Step constants), for progress displays.
	OnStep func(step string)
	// OnChallenge, if set, is told how each challenge the CA validated
	// for this flow ended.
	OnChallenge func(typ string, valid bool)
	// OnPropagation, if set, is told how long each dns-01 record took to
	// be served by every authoritative server (from the start of the
	// wait).
	OnPropagation func(d time.Duration)
}

// The steps of an order reported to Flow.OnStep.
const (
	StepOrdering   = "ordering"
	StepPresenting = "presenting"
	StepDNS        = "waiting for DNS"
	StepValidating = "validating"
	StepFinalizing = "finalizing"
	StepDownload   = "downloading"
)

// step reports the step being started.
func (f *Flow) step(s string) {
	if f.OnStep != nil {
		f.OnStep(s)
	}
}

// errDiscard marks a saved order that can no longer be continued.
var errDiscard = errors.New("saved order cannot be resumed")

// Obtain returns a new certificate for req, resuming a saved order for
// req.ID when the CA still holds it. The caller stores the result and then
// calls Done.
func (f *Flow) Obtain(ctx context.Context, req Request) (certstore.Cert, error) {
	ctx = solvers.WithOwner(ctx, req.ID) // the answers presented are this certificate's
	f.Sweep(ctx, req.ID)
	p, o, err := f.resume(ctx, req)
	if err != nil {
		return certstore.Cert{}, err
	}
	if p.OrderURL == "" {
		if p, o, err = f.newOrder(ctx, req); err != nil {
			return certstore.Cert{}, err
		}
	}
	for range 20 {
		switch o.Status {
		case acmeclient.StatusPending:
			if err := f.authorize(ctx, req, &p, o); err != nil {
				return certstore.Cert{}, err
			}
			if o, err = f.getOrder(ctx, req, p); err != nil {
				return certstore.Cert{}, err
			}
		case acmeclient.StatusReady:
			if o, err = f.finalize(ctx, req, &p, o); err != nil {
				return certstore.Cert{}, err
			}
		case acmeclient.StatusProcessing:
			if err := sleep(ctx, time.Second); err != nil {
				return certstore.Cert{}, err
			}
			if o, err = f.getOrder(ctx, req, p); err != nil {
				return certstore.Cert{}, err
			}
		case acmeclient.StatusValid:
			return f.download(ctx, req, p, o)
		default:
			f.discard(ctx, req.ID, p)
			if o.Problem != nil {
				return certstore.Cert{}, o.Problem
			}
			return certstore.Cert{}, &acmeclient.Error{Op: "order " + o.URL, Class: acmeclient.BadOrder,
				Err: fmt.Errorf("order is %s", o.Status)}
		}
	}
	return certstore.Cert{}, fmt.Errorf("order %s did not complete", p.OrderURL)
}

// Done forgets the saved progress of req's order once its certificate is
// stored, removing any challenge answer still recorded in it: the order
// is valid, so the CA is done with all of them. Those it cannot remove
// are kept as left behind (see Leftovers).
func (f *Flow) Done(ctx context.Context, id string) error {
	ctx = solvers.WithOwner(ctx, id)
	if p, err := f.Store.LoadProgress(ctx, id); err == nil && len(p.Challenges) > 0 {
		f.keepLeft(ctx, id, f.cleanupRecorded(ctx, id, p.Challenges))
	}
	return f.Store.DeleteProgress(ctx, id)
}

// resume loads the saved order for req and the CA's view of it. It returns
// an empty Progress when there is nothing to resume.
func (f *Flow) resume(ctx context.Context, req Request) (certstore.Progress, acmeclient.Order, error) {
	p, err := f.Store.LoadProgress(ctx, req.ID)
	if certstore.IsNotExist(err) {
		return certstore.Progress{}, acmeclient.Order{}, nil
	}
	if err != nil {
		f.Log.Warn("discarding unreadable order progress", "cert", req.ID, "error", err)
		f.discard(ctx, req.ID, certstore.Progress{})
		return certstore.Progress{}, acmeclient.Order{}, nil
	}
	if !sameNames(p.Names, req.Names) || p.OrderURL == "" || p.Created.Before(req.After) || otherCSR(p, req) {
		f.discard(ctx, req.ID, p)
		return certstore.Progress{}, acmeclient.Order{}, nil
	}
	o, err := f.Client.GetOrder(ctx, f.Account, p.OrderURL)
	if err == nil {
		if cerr := checkOrder(o, req.Names); cerr != nil {
			// The CA now shows the saved order for other names: nothing
			// more is solved for it.
			f.discard(ctx, req.ID, p)
			return certstore.Progress{}, acmeclient.Order{}, fmt.Errorf("resume order %s: %w", p.OrderURL, cerr)
		}
		if !canResume(o, p) {
			err = errDiscard
		}
	}
	if err != nil {
		if !errors.Is(err, errDiscard) && acmeclient.ClassOf(err) != acmeclient.BadOrder {
			return certstore.Progress{}, acmeclient.Order{}, fmt.Errorf("resume order %s: %w", p.OrderURL, err)
		}
		f.Log.Info("starting over: saved order cannot be resumed", "cert", req.ID, "order", p.OrderURL, "error", err)
		f.discard(ctx, req.ID, p)
		return certstore.Progress{}, acmeclient.Order{}, nil
	}
	f.Log.Info("resuming saved order", "cert", req.ID, "order", p.OrderURL, "status", o.Status)
	if len(p.Challenges) > 0 && o.Status != acmeclient.StatusPending {
		// Every authorization is valid: the answers presented before the
		// stop are no longer needed. (For a pending order, authorize looks
		// at each challenge, presents again those the CA may still fetch
		// and removes them once their authorization is final.)
		f.keepLeft(ctx, req.ID, f.cleanupRecorded(ctx, req.ID, p.Challenges))
		p.Challenges = nil
		if err := f.Store.StoreProgress(ctx, req.ID, p); err != nil {
			return certstore.Progress{}, acmeclient.Order{}, fmt.Errorf("save order progress: %w", err)
		}
	}
	return p, o, nil
}

// otherCSR reports whether a saved order may have been finalized for a
// key other than the one req asks a certificate for (a CSR is saved
// before it is sent): its certificate would be of no use.
func otherCSR(p certstore.Progress, req Request) bool {
	if len(p.CSR) == 0 {
		return false
	}
	return req.CSR == nil || !bytes.Equal(p.CSR, req.CSR.Raw)
}

// replacesRefused reports whether a new order naming the certificate it
// replaces may have been refused for that name alone, so that the order
// is placed again without it ("replaces" only spares the certificate
// from rate limits): an earlier order already replaced that certificate;
// another account obtained it (the account was replaced since: "requester
// account did not request the certificate being replaced"); or the CA
// failed to look the certificate up (Pebble answers serverInternal for a
// serial whose top bit is set, letsencrypt/pebble#550). An account or a
// CA that refuses everything refuses the plain order again.
func replacesRefused(problem string) bool {
	switch problem {
	case "alreadyReplaced", "unauthorized", "serverInternal":
		return true
	}
	return false
}

// newOrder places a new order and saves it before anything else happens.
func (f *Flow) newOrder(ctx context.Context, req Request) (certstore.Progress, acmeclient.Order, error) {
	f.step(StepOrdering)
	opts := acmeclient.NewOrderOptions{Profile: req.Profile, Replaces: req.Replaces}
	o, err := f.Client.NewOrder(ctx, f.Account, Identifiers(req.Names), opts)
	var ae *acmeclient.Error
	if err != nil && opts.Replaces != "" && errors.As(err, &ae) && replacesRefused(ae.ProblemShort()) {
		opts.Replaces = ""
		o, err = f.Client.NewOrder(ctx, f.Account, Identifiers(req.Names), opts)
	}
	if err != nil {
		return certstore.Progress{}, acmeclient.Order{}, err
	}
	if err := checkOrder(o, req.Names); err != nil {
		// Not saved: nothing is ever solved for this order.
		return certstore.Progress{}, acmeclient.Order{}, err
	}
	if f.OnOrder != nil {
		f.OnOrder(o.URL)
	}
	p := certstore.Progress{
		Names:    req.Names,
		OrderURL: o.URL,
		Authzs:   o.Authorizations,
		Finalize: o.Finalize,
		Created:  time.Now().UTC(),
	}
	if err := f.Store.StoreProgress(ctx, req.ID, p); err != nil {
		return certstore.Progress{}, acmeclient.Order{}, fmt.Errorf("save order progress: %w", err)
	}
	f.Log.Info("new order", "cert", req.ID, "names", req.Names, "order", o.URL)
	return p, o, nil
}

// getOrder fetches the CA's view of p's order, giving the order up when
// it is no longer for req's names (checkOrder).
func (f *Flow) getOrder(ctx context.Context, req Request, p certstore.Progress) (acmeclient.Order, error) {
	o, err := f.Client.GetOrder(ctx, f.Account, p.OrderURL)
	if err != nil {
		return o, err
	}
	if err := checkOrder(o, req.Names); err != nil {
		f.discard(ctx, req.ID, p)
		return o, err
	}
	return o, nil
}

// finalize sends the CSR. The certificate's key is made and saved with the
// progress before the CSR leaves, so a restart can use the certificate the
// CA issues for it.
func (f *Flow) finalize(ctx context.Context, req Request, p *certstore.Progress, o acmeclient.Order) (acmeclient.Order, error) {
	f.step(StepFinalizing)
	if req.CSR != nil {
		if !bytes.Equal(p.CSR, req.CSR.Raw) {
			p.CSR = req.CSR.Raw
			if err := f.Store.StoreProgress(ctx, req.ID, *p); err != nil {
				return o, fmt.Errorf("save order progress: %w", err)
			}
		}
		return f.sendCSR(ctx, req, p, o, req.CSR.Raw)
	}
	if p.Key == nil {
		k, err := keys.Generate(req.KeyType)
		if err != nil {
			return o, fmt.Errorf("generate %s key: %w", req.KeyType, err)
		}
		p.Key = k
		if err := f.Store.StoreProgress(ctx, req.ID, *p); err != nil {
			return o, fmt.Errorf("save order progress: %w", err)
		}
	}
	dns, ips := splitNames(req.Names)
	csr, err := keys.CSR(p.Key, dns, ips)
	if err != nil {
		return o, fmt.Errorf("make CSR: %w", err)
	}
	return f.sendCSR(ctx, req, p, o, csr)
}

// sendCSR finalizes o with csr (DER) and saves that it did.
func (f *Flow) sendCSR(ctx context.Context, req Request, p *certstore.Progress, o acmeclient.Order, csr []byte) (acmeclient.Order, error) {
	got, err := f.Client.Finalize(ctx, f.Account, o, csr)
	if err != nil {
		if got.Status == acmeclient.StatusInvalid || noCertificate(got) {
			f.discard(ctx, req.ID, *p)
		}
		return got, err
	}
	p.Finalized, p.CertURL = true, got.Certificate
	if err := f.Store.StoreProgress(ctx, req.ID, *p); err != nil {
		return got, fmt.Errorf("save order progress: %w", err)
	}
	return got, nil
}

// download fetches and checks the issued certificate.
func (f *Flow) download(ctx context.Context, req Request, p certstore.Progress, o acmeclient.Order) (certstore.Cert, error) {
	f.step(StepDownload)
	if p.Key == nil && req.CSR == nil {
		f.discard(ctx, req.ID, p)
		return certstore.Cert{}, fmt.Errorf("order %s is valid but its key was not saved; starting over", o.URL)
	}
	if noCertificate(o) {
		f.discard(ctx, req.ID, p)
		return certstore.Cert{}, &acmeclient.Error{Op: "order " + o.URL, Class: acmeclient.BadOrder,
			Err: errors.New("the CA says the order is valid but names no certificate URL (RFC 8555 §7.1.3); starting over")}
	}
	chain, err := f.Client.Certificate(ctx, f.Account, o.Certificate)
	if err != nil {
		return certstore.Cert{}, err
	}
	var c certstore.Cert
	if req.CSR != nil {
		c, err = CheckPublic(chain.PEM, req.CSR.PublicKey, req.Names)
	} else {
		c, err = Check(chain.PEM, p.Key, req.Names)
	}
	if err != nil {
		f.discard(ctx, req.ID, p)
		return certstore.Cert{}, fmt.Errorf("certificate from %s: %w", o.Certificate, err)
	}
	c.KeyType, c.CA, c.URL, c.Obtained = req.KeyType, f.Client.DirectoryURL(), o.Certificate, time.Now().UTC()
	c.Names = req.Names
	c.RenewalInfo = chain.RenewalInfo
	return c, nil
}

// discard drops the saved progress of an order given up (it cannot
// complete, or no longer fits the request), cleaning up every challenge it
// presented: whatever the CA still validates for it can no longer lead to
// the certificate wanted, and nothing else would remove the answers.
// Those it cannot remove are kept as left behind (see Leftovers).
func (f *Flow) discard(ctx context.Context, id string, p certstore.Progress) {
	f.keepLeft(ctx, id, f.cleanupRecorded(ctx, id, p.Challenges))
	if err := f.Store.DeleteProgress(context.WithoutCancel(ctx), id); err != nil {
		f.Log.Warn("delete order progress", "cert", id, "error", err)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Identifiers turns normalised names into ACME identifiers.
func Identifiers(names []string) []acmeclient.Identifier {
	out := make([]acmeclient.Identifier, len(names))
	for i, n := range names {
		if net.ParseIP(n) != nil {
			out[i] = acmeclient.Identifier{Type: "ip", Value: n}
		} else {
			out[i] = acmeclient.Identifier{Type: "dns", Value: n}
		}
	}
	return out
}

func splitNames(names []string) (dns []string, ips []net.IP) {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[string]bool, len(a))
	for _, n := range a {
		seen[n] = true
	}
	for _, n := range b {
		if !seen[n] {
			return false
		}
	}
	return true
}

// Check parses a PEM chain, leaf first, and verifies that its leaf is for
// key and names exactly names; see CheckPublic for all it checks.
func Check(chainPEM []byte, key crypto.Signer, names []string) (certstore.Cert, error) {
	c, err := CheckPublic(chainPEM, key.Public(), names)
	if err != nil {
		return c, err
	}
	c.Key = key
	return c, nil
}

// CheckImported is Check for a certificate obtained elsewhere and
// imported (certbot's lineages): the chain is parsed and its links
// checked as for one from the CA, and its leaf must be for key and cover
// each of names; it may name others, and it may have expired (a lineage
// certbot failed to renew is imported to be renewed at once).
func CheckImported(chainPEM []byte, key crypto.Signer, names []string) (certstore.Cert, error) {
	certs, clean, err := parseChain(chainPEM)
	if err != nil {
		return certstore.Cert{}, err
	}
	leaf := certs[0]
	if !samePublic(leaf, key.Public()) {
		return certstore.Cert{}, errors.New("leaf certificate is not for this private key (another public key)")
	}
	if err := checkCovers(leaf, names); err != nil {
		return certstore.Cert{}, err
	}
	if err := checkLinks(certs); err != nil {
		return certstore.Cert{}, err
	}
	return record(leaf, clean, key), nil
}

// record is what is stored of a checked chain, leaf first.
func record(leaf *x509.Certificate, clean []byte, key crypto.Signer) certstore.Cert {
	id, err := acmeclient.CertID(leaf)
	if err != nil {
		id = ""
	}
	return certstore.Cert{
		ChainPEM:  string(clean),
		NotBefore: leaf.NotBefore,
		NotAfter:  leaf.NotAfter,
		Issuer:    leaf.Issuer.CommonName,
		ARIID:     id,
		Key:       key,
	}
}

// CheckPublic is Check for a certificate whose private key is not ours:
// its leaf must be for pub. The result holds no Key. It refuses a chain
// that is not only certificates in PEM (RFC 8555 §9.1), whose
// certificates are not each signed by the next, whose leaf does not name
// exactly names (each of them, and no other DNS name or IP address), or
// whose leaf is not valid now: never valid, expired, or starting more than
// an hour ahead of this clock. The result's ChainPEM is the chain encoded
// again from its certificates alone, which is what callers store.
func CheckPublic(chainPEM []byte, pub crypto.PublicKey, names []string) (certstore.Cert, error) {
	certs, clean, err := parseChain(chainPEM)
	if err != nil {
		return certstore.Cert{}, err
	}
	leaf := certs[0]
	if !samePublic(leaf, pub) {
		return certstore.Cert{}, errors.New("leaf certificate is not for this private key (another public key)")
	}
	if err := checkNames(leaf, names); err != nil {
		return certstore.Cert{}, err
	}
	if err := checkValidity(leaf, time.Now()); err != nil {
		return certstore.Cert{}, err
	}
	if err := checkLinks(certs); err != nil {
		return certstore.Cert{}, err
	}
	return record(leaf, clean, nil), nil
}
