package issuance

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
)

// A CA decides which authorizations an order needs, and the client
// proves control of each: an order or an authorization for an identifier
// nobody requested would have the client answer challenges, and obtain a
// certificate, for a name it was never asked about. The checks below
// hold the CA's objects to the names requested.

// requestedName reports whether the identifier of type typ ("dns" or
// "ip") and value is one of names (normalised): DNS names compared
// without regard to case, wildcards literally; IP addresses by value.
func requestedName(names []string, typ, value string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return sameIdentifier(n, typ, value) })
}

// sameIdentifier reports whether the normalised name is the identifier of
// type typ and value.
func sameIdentifier(name, typ, value string) bool {
	if ip := net.ParseIP(name); ip != nil {
		return typ == "ip" && ip.Equal(net.ParseIP(value))
	}
	return typ == "dns" && strings.EqualFold(name, value)
}

// authzName is the name an authorization is for: RFC 8555 §7.1.4 gives
// the authorization for "*.example.com" the identifier "example.com" with
// wildcard set.
func authzName(a acmeclient.Authz) string {
	if a.Wildcard && !strings.HasPrefix(a.Identifier.Value, "*.") {
		return "*." + a.Identifier.Value
	}
	return a.Identifier.Value
}

// checkAuthz refuses an authorization that is for none of names: no
// challenge of it may be presented or accepted.
func checkAuthz(a acmeclient.Authz, names []string) error {
	if requestedName(names, a.Identifier.Type, authzName(a)) {
		return nil
	}
	return &acmeclient.Error{Op: "authorize " + authzName(a), Class: acmeclient.BadOrder,
		Err: fmt.Errorf("the CA's authorization %s is for %s %q, which was not requested (requested %s): refusing to solve it",
			a.URL, a.Identifier.Type, authzName(a), strings.Join(names, ", "))}
}

// checkOrder refuses an order whose identifiers are not exactly names
// (RFC 8555 §7.1.3: the identifiers "that the order pertains to"): one
// nobody requested, or a requested one missing, whose certificate would
// be refused after the work of validating it.
func checkOrder(o acmeclient.Order, names []string) error {
	for _, id := range o.Identifiers {
		if !requestedName(names, id.Type, id.Value) {
			return &acmeclient.Error{Op: "order " + o.URL, Class: acmeclient.BadOrder,
				Err: fmt.Errorf("the CA's order is for %s %q, which was not requested (requested %s)",
					id.Type, id.Value, strings.Join(names, ", "))}
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(o.Identifiers, func(id acmeclient.Identifier) bool { return sameIdentifier(n, id.Type, id.Value) }) {
			return &acmeclient.Error{Op: "order " + o.URL, Class: acmeclient.BadOrder,
				Err: fmt.Errorf("the CA's order does not name %s, which was requested", n)}
		}
	}
	return nil
}
