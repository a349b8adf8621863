package tlspilot

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/idna"
)

// ErrBadName is wrapped by every error about a malformed name.
var ErrBadName = errors.New("invalid name")

// NormalizeName returns the form of name that tlspilot manages and orders:
// an IP address in canonical text form, or a DNS name converted to ASCII
// (IDNA 2008, lookup profile), lower-cased, without a trailing dot. A
// leading "*." marks a wildcard. A DNS name has at most 253 characters
// and 63 per label (RFC 1035 §2.3.4), no empty label (one trailing dot,
// the root, is dropped), and a last label that is not all digits (RFC
// 1123 §2.1: it would read as an IP address, and CAs refuse it); an IP
// address is written in full ("192.0.2.1", "[2001:db8::1]"). Empty,
// overlong and invalid names are rejected with an error wrapping
// ErrBadName that says why.
func NormalizeName(name string) (string, error) {
	s := strings.TrimSpace(name)
	if s == "" {
		return "", fmt.Errorf("%w: empty name", ErrBadName)
	}
	if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil {
		return ip.String(), nil
	}
	s = strings.TrimSuffix(s, ".")
	wild := strings.HasPrefix(s, "*.")
	if wild {
		s = s[2:]
	}
	if strings.ContainsAny(s, "*") {
		return "", fmt.Errorf("%w: %q: a wildcard may only be the whole first label", ErrBadName, name)
	}
	ascii, err := toASCII(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrBadName, name, err)
	}
	if !strings.Contains(ascii, ".") {
		return "", fmt.Errorf("%w: %q: not a fully qualified name", ErrBadName, name)
	}
	if tld := ascii[strings.LastIndexByte(ascii, '.')+1:]; strings.Trim(tld, "0123456789") == "" {
		return "", fmt.Errorf("%w: %q: the last label %q is all digits, which no top-level domain is (an IP address is written in full)",
			ErrBadName, name, tld)
	}
	if wild {
		if len(ascii) > 253-2 {
			return "", fmt.Errorf("%w: %q: too long: %d characters with \"*.\", a DNS name has 253 at most", ErrBadName, name, len(ascii)+2)
		}
		return "*." + ascii, nil
	}
	return ascii, nil
}

// toASCII converts a DNS name (without wildcard or trailing dot) to its
// lower-case ASCII form, saying which rule a refused name breaks.
func toASCII(s string) (string, error) {
	for l := range strings.SplitSeq(s, ".") {
		if l == "" {
			return "", errors.New("empty label")
		}
	}
	ascii, err := nameProfile.ToASCII(s)
	if err != nil {
		// The profile names the whole name as the invalid label when it
		// is too long: say so instead.
		if a, lerr := lengthless.ToASCII(s); lerr == nil && lengthError(a) != nil {
			return "", lengthError(a)
		}
		return "", err
	}
	ascii = strings.ToLower(ascii)
	if err := lengthError(ascii); err != nil {
		return "", err
	}
	return ascii, nil
}

// lengthError says which DNS length limit (RFC 1035 §2.3.4) the ASCII
// name breaks, nil if none.
func lengthError(ascii string) error {
	if len(ascii) > 253 {
		return fmt.Errorf("too long: %d characters, a DNS name has 253 at most", len(ascii))
	}
	for l := range strings.SplitSeq(ascii, ".") {
		if len(l) > 63 {
			return fmt.Errorf("label %q too long: %d characters, a label has 63 at most", l, len(l))
		}
	}
	return nil
}

// nameProfile is the IDNA lookup profile with DNS length checks and
// letters-digits-hyphen rules. It holds no mutable state.
var nameProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// lengthless is nameProfile without the length checks, to tell a name
// refused only for its length. It holds no mutable state.
var lengthless = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
)

// normalizeNames normalises each name and rejects duplicates.
func normalizeNames(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no names", ErrBadName)
	}
	out := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		nn, err := NormalizeName(n)
		if err != nil {
			return nil, err
		}
		if seen[nn] {
			continue
		}
		seen[nn] = true
		out = append(out, nn)
	}
	return out, nil
}
