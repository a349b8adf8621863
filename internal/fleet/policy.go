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
// e-mail address or URI), and every name allowed by the policy. The CSR
// must be one the CA takes for the order placed from it (checkCSRNames):
// otherwise the order would fail at finalize, after its dns-01 work, at
// every retry. It returns the names to order.
func (a *Agent) CheckCSR(csr *x509.CertificateRequest) ([]string, error) {
	if err := fleetca.CheckCSR(csr); err != nil {
		return nil, fmt.Errorf("%w: agent %s: CSR for %s: %w", ErrPolicy, a.Host, strings.Join(csrNames(csr), ", "), err)
	}
	if len(csr.IPAddresses)+len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return nil, fmt.Errorf("%w: agent %s: a CSR may hold DNS names only (the issuer validates with dns-01)", ErrPolicy, a.Host)
	}
	if err := checkCSRNames(csr); err != nil {
		return nil, fmt.Errorf("%w: agent %s: %w", ErrPolicy, a.Host, err)
	}
	return a.Allows(csr.DNSNames)
}

// checkCSRNames refuses a CSR whose names the CA would not match with
// the order's, the normalised names: a CSR without DNS names (a common
// name alone), a common name not among its DNS names, or a DNS name
// written otherwise than its normalised form but for letter case (a
// trailing dot, say).
func checkCSRNames(csr *x509.CertificateRequest) error {
	if len(csr.DNSNames) == 0 {
		return errors.New("the CSR lists no DNS names (subject alternative names): list every name there, the common name too")
	}
	for _, n := range csr.DNSNames {
		if nn, err := tlspilot.NormalizeName(n); err == nil && nn != strings.ToLower(n) {
			return fmt.Errorf("the CSR names %q: write it %q, as the CA compares the CSR's names with the order's", n, nn)
		}
	}
	if cn := csr.Subject.CommonName; cn != "" && !slices.ContainsFunc(csr.DNSNames, func(n string) bool { return strings.EqualFold(n, cn) }) {
		return fmt.Errorf("the CSR's common name %q is not among its DNS names: list it there too, as the CA compares the CSR's names with the order's", cn)
	}
	return nil
}
