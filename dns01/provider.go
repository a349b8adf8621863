// Package dns01 publishes the TXT records of ACME dns-01 challenges
// (RFC 8555 §8.4) and checks that the world can see them.
//
// A Provider adds and removes TXT records at a DNS server or DNS API; the
// providers shipped with tlspilot are dns01/rfc2136 (dynamic updates signed
// with TSIG, for BIND, Knot, PowerDNS and any standards-following server)
// and dns01/exec (an external program, for any DNS API). dns01/provider
// builds one from a Config, the [dns] section of the configuration file.
//
// A Checker finds where a challenge's record goes (following an
// _acme-challenge CNAME into another zone, then walking up to the zone's
// SOA) and waits until every authoritative name server of that zone serves
// it, asking each server directly rather than a caching resolver, before
// the CA is asked to look.
package dns01

import (
	"context"
	"errors"
	"strings"
)

// Record is one TXT record of a dns-01 challenge.
type Record struct {
	// FQDN is the absolute name that holds the record, lower case with a
	// trailing dot: "_acme-challenge.example.com." or, when that name is a
	// CNAME, the end of the CNAME chain.
	FQDN string
	// Zone is the absolute name, with a trailing dot, of the zone that
	// FQDN belongs to: configured, or found by walking up to the SOA.
	Zone string
	// Value is the TXT value: the base64url SHA-256 digest of the
	// challenge's key authorization.
	Value string
}

// Provider adds and removes the TXT records of dns-01 challenges.
//
// Present MUST add every record of recs and MUST keep the other TXT records
// at the same name: a wildcard and its base name share one name, and so may
// several clients. Presenting a record that exists already MUST NOT be an
// error. When Present returns nil, the provider's server (the primary, the
// API) has accepted every record; they need not be visible at every
// authoritative server yet, which is what a Checker waits for.
//
// CleanUp MUST remove exactly the records of recs (the given values, not
// every TXT record at the name) and MUST NOT fail for a record that is
// absent.
//
// When Present or CleanUp fails, some of the records may have been changed,
// unless the error wraps ErrUnchanged.
//
// Both MUST honour ctx cancellation and MUST be safe for concurrent use.
// They SHOULD change all the records of one zone in one request (recs may
// hold hundreds of records of several zones). Their errors SHOULD name the
// provider, the zone, the server and the response code, and say what to
// check, as in "rfc2136: update example.com at 192.0.2.53:53: NOTAUTH
// (TSIG: BADSIG): signature refused: the secret or algorithm (hmac-sha256)
// of TSIG key tlspilot. differs from the server's"; they MUST NOT contain
// secrets, and SHOULD wrap ErrConfig when only a change of configuration
// can fix them.
type Provider interface {
	Present(ctx context.Context, recs []Record) error
	CleanUp(ctx context.Context, recs []Record) error
}

// ErrUnchanged is wrapped by Provider errors after which no record was
// changed: the server refused the request as a whole, or was never
// reached.
var ErrUnchanged = errors.New("nothing changed")

// ErrConfig is wrapped by Provider errors that retrying cannot fix until
// a configuration changes, here or at the DNS server: the server does not
// know the key, refuses its signature, or does not let it update the
// zone. The error says what to check. Callers SHOULD retry such failures
// no faster than failed orders, and report them as configuration errors.
var ErrConfig = errors.New("configuration error")

// ChallengeName returns the name whose TXT record answers the dns-01
// challenge for domain: "_acme-challenge.<domain>.", lower case, the same
// for a wildcard ("*.example.com") and its base name.
func ChallengeName(domain string) string {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(domain, "*."), "."))
	return "_acme-challenge." + d + "."
}

// trimDot returns an absolute name without its trailing dot, for messages.
func trimDot(name string) string {
	if name == "." {
		return name
	}
	return strings.TrimSuffix(name, ".")
}
