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
// leading "*." marks a wildcard. Empty, overlong and invalid names are
// rejected with an error wrapping ErrBadName.
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
	ascii, err := nameProfile.ToASCII(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadName, name, err)
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > 253 || len(ascii) == 0 {
		return "", fmt.Errorf("%w: %q: a DNS name has 1 to 253 characters", ErrBadName, name)
	}
	if !strings.Contains(ascii, ".") {
		return "", fmt.Errorf("%w: %q: not a fully qualified name", ErrBadName, name)
	}
	if wild {
		return "*." + ascii, nil
	}
	return ascii, nil
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
