package fleet

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/fleetca"
)

// ErrPolicy is wrapped by the error of a request for a name the agent's
// policy does not allow; the error's text starts with "policy" and names
// the offending name.
var ErrPolicy = errors.New("policy")

// permits reports whether the policy entry p (normalised) covers the
// requested name n (normalised): the same name, or, for a wildcard
// entry "*.base", the same wildcard or one label directly under base
// (what a certificate for the wildcard would cover anyway).
func permits(p, n string) bool {
	if p == n {
		return true
	}
	base, ok := strings.CutPrefix(p, "*.")
	if !ok {
		return false
	}
	label, rest, found := strings.Cut(n, ".")
	return found && label != "" && label != "*" && rest == base
}

// Allows returns the normalised names if a's policy covers every one of
// them, else an error wrapping ErrPolicy that names the first it does not
// cover.
func (a *Agent) Allows(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no names requested", ErrPolicy)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		nn, err := tlspilot.NormalizeName(n)
		if err != nil {
			return nil, fmt.Errorf("%w: agent %s may not obtain %q: %w", ErrPolicy, a.Host, n, err)
		}
		if !slices.ContainsFunc(a.Names, func(p string) bool { return permits(p, nn) }) {
			return nil, fmt.Errorf("%w: agent %s may not obtain %s (it may obtain: %s)", ErrPolicy, a.Host, nn, strings.Join(a.Names, ", "))
		}
		if !slices.Contains(out, nn) {
			out = append(out, nn)
		}
	}
	return out, nil
}

// CheckCSR checks a certificate request of a against its policy: a good
// signature and key (fleetca.CheckCSR), DNS names only (no IP address,
// e-mail address or URI), and every name, the subject common name
// included, allowed by the policy. It returns the names to order.
func (a *Agent) CheckCSR(csr *x509.CertificateRequest) ([]string, error) {
	if err := fleetca.CheckCSR(csr); err != nil {
		return nil, fmt.Errorf("%w: agent %s: CSR for %s: %w", ErrPolicy, a.Host, strings.Join(csrNames(csr), ", "), err)
	}
	if len(csr.IPAddresses)+len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return nil, fmt.Errorf("%w: agent %s: a CSR may hold DNS names only (the issuer validates with dns-01)", ErrPolicy, a.Host)
	}
	names := slices.Clone(csr.DNSNames)
	if cn := csr.Subject.CommonName; cn != "" && !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, cn) }) {
		names = append(names, cn)
	}
	return a.Allows(names)
}
