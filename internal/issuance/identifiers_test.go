package issuance

import (
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
)

func dnsID(v string) acmeclient.Identifier { return acmeclient.Identifier{Type: "dns", Value: v} }
func ipID(v string) acmeclient.Identifier  { return acmeclient.Identifier{Type: "ip", Value: v} }

// TestPlanForeignAuthorization: an authorization for an identifier that
// was not requested makes the order dead before any task is made, so that
// nothing is presented or accepted for it; RFC 8555 §7.1.4 wildcard
// authorizations match the wildcard name requested.
func TestPlanForeignAuthorization(t *testing.T) {
	names := []string{"a.example", "*.b.example", "192.0.2.1"}
	pending := func(id acmeclient.Identifier, wildcard bool) acmeclient.Authz {
		a := authz(acmeclient.StatusPending, [2]string{"dns-01", acmeclient.StatusPending})
		a.URL = "https://ca/authz/" + id.Value
		a.Identifier, a.Wildcard = id, wildcard
		return a
	}
	valid := func(id acmeclient.Identifier) acmeclient.Authz {
		a := pending(id, false)
		a.Status = acmeclient.StatusValid
		return a
	}
	for _, tc := range []struct {
		name   string
		authzs []acmeclient.Authz
		want   string // part of the error; empty when planned
	}{
		{"all requested", []acmeclient.Authz{pending(dnsID("a.example"), false), pending(dnsID("b.example"), true), pending(ipID("192.0.2.1"), false)}, ""},
		{"other case", []acmeclient.Authz{pending(dnsID("A.Example"), false)}, ""},
		{"wildcard written out by the CA", []acmeclient.Authz{pending(dnsID("*.b.example"), true)}, ""},
		{"foreign, after requested ones", []acmeclient.Authz{pending(dnsID("a.example"), false), pending(dnsID("nobody-configured.example"), false)}, `"nobody-configured.example", which was not requested`},
		{"foreign but already valid", []acmeclient.Authz{valid(dnsID("nobody-configured.example")), pending(dnsID("a.example"), false)}, "nobody-configured.example"},
		{"wildcard base without the wildcard flag", []acmeclient.Authz{pending(dnsID("b.example"), false)}, `"b.example"`},
		{"wildcard of a name requested plain", []acmeclient.Authz{pending(dnsID("a.example"), true)}, `"*.a.example"`},
		{"IP address as a DNS name", []acmeclient.Authz{pending(dnsID("192.0.2.1"), false)}, `dns "192.0.2.1"`},
		{"foreign IP address", []acmeclient.Authz{pending(ipID("192.0.2.2"), false)}, `ip "192.0.2.2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tasks, dead, err := plan(tc.authzs, names, "dns-01")
			if tc.want == "" {
				if err != nil || dead || len(tasks) != len(tc.authzs) {
					t.Errorf("plan: %d tasks, dead=%v, %v; want %d tasks", len(tasks), dead, err, len(tc.authzs))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("plan: %v, want an error containing %q", err, tc.want)
			}
			if !dead || len(tasks) != 0 {
				t.Errorf("plan: %d tasks, dead=%v; want no task and the order given up", len(tasks), dead)
			}
			if acmeclient.ClassOf(err) != acmeclient.BadOrder {
				t.Errorf("plan: class %v, want bad-order", acmeclient.ClassOf(err))
			}
		})
	}
}

// TestCheckOrder: an order must be for exactly the names requested.
func TestCheckOrder(t *testing.T) {
	names := []string{"a.example", "*.b.example", "2001:db8::1"}
	for _, tc := range []struct {
		name string
		ids  []acmeclient.Identifier
		want string // part of the error; empty when accepted
	}{
		{"exactly", []acmeclient.Identifier{dnsID("a.example"), dnsID("*.b.example"), ipID("2001:db8::1")}, ""},
		{"other order and case, IP written out", []acmeclient.Identifier{ipID("2001:db8:0:0:0:0:0:1"), dnsID("*.B.example"), dnsID("A.example")}, ""},
		{"a foreign identifier", []acmeclient.Identifier{dnsID("a.example"), dnsID("*.b.example"), ipID("2001:db8::1"), dnsID("nobody-configured.example")}, `"nobody-configured.example", which was not requested`},
		{"a requested one missing", []acmeclient.Identifier{dnsID("a.example"), ipID("2001:db8::1")}, "does not name *.b.example"},
		{"none", nil, "does not name a.example"},
		{"wildcard's base instead of the wildcard", []acmeclient.Identifier{dnsID("a.example"), dnsID("b.example"), ipID("2001:db8::1")}, `"b.example"`},
		{"IP address as a DNS name", []acmeclient.Identifier{dnsID("a.example"), dnsID("*.b.example"), dnsID("2001:db8::1")}, `dns "2001:db8::1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkOrder(acmeclient.Order{URL: "https://ca/order/1", Identifiers: tc.ids}, names)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkOrder(%v): %v, want %q", tc.ids, err, tc.want)
			}
			if err != nil && acmeclient.ClassOf(err) != acmeclient.BadOrder {
				t.Errorf("checkOrder: class %v, want bad-order", acmeclient.ClassOf(err))
			}
		})
	}
}
