package dns01_test

import (
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

func TestLocate(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{
		{Name: "example.test", Updatable: true, Records: []string{
			"_acme-challenge.cname CNAME cname.acme.test.",
			"_acme-challenge.chain CNAME hop.example.test.",
			"hop CNAME chain.acme.test.",
			"_acme-challenge.loop CNAME loop2.example.test.",
			"loop2 CNAME _acme-challenge.loop.example.test.",
		}},
		{Name: "sub.example.test"},
		{Name: "acme.test", Updatable: true},
	}})
	c := newChecker(t, dns01.PropagationOptions{Resolvers: []string{b.Addr}})
	for _, tt := range []struct {
		domain, fqdn, zone string
	}{
		{"example.test", "_acme-challenge.example.test.", "example.test."},
		{"*.example.test", "_acme-challenge.example.test.", "example.test."},
		{"WWW.example.test", "_acme-challenge.www.example.test.", "example.test."},
		{"cname.example.test", "cname.acme.test.", "acme.test."},
		{"chain.example.test", "chain.acme.test.", "acme.test."},
		{"deep.sub.example.test", "_acme-challenge.deep.sub.example.test.", "sub.example.test."},
	} {
		got, err := c.Locate(t.Context(), tt.domain, "v")
		want := dns01.Record{FQDN: tt.fqdn, Zone: tt.zone, Value: "v"}
		if err != nil || got != want {
			t.Errorf("Locate(%s) = %+v, %v; want %+v", tt.domain, got, err, want)
		}
	}
	for domain, want := range map[string]string{
		"loop.example.test": "dns01: follow CNAMEs from _acme-challenge.loop.example.test: loop at _acme-challenge.loop.example.test",
		"foo.unknown.test": "dns01: follow CNAMEs from _acme-challenge.foo.unknown.test: " +
			"CNAME _acme-challenge.foo.unknown.test at " + b.Addr + ": REFUSED",
	} {
		if _, err := c.Locate(t.Context(), domain, "v"); err == nil || err.Error() != want {
			t.Errorf("Locate(%s) = %v, want %s", domain, err, want)
		}
	}

	zoned := newChecker(t, dns01.PropagationOptions{Resolvers: []string{b.Addr}, Zone: "Example.test"})
	if got, err := zoned.Locate(t.Context(), "www.example.test", "v"); err != nil || got.Zone != "example.test." {
		t.Errorf("configured zone: Locate = %+v, %v", got, err)
	}
	_, err := zoned.Locate(t.Context(), "cname.example.test", "v")
	if want := "dns01: _acme-challenge.cname.example.test (CNAME to cname.acme.test) is not in the configured zone example.test"; err == nil || err.Error() != want {
		t.Errorf("CNAME out of the configured zone: %v, want %s", err, want)
	}
}

func TestNewCheckerOptions(t *testing.T) {
	for _, opts := range []dns01.PropagationOptions{
		{Resolvers: []string{"ns 1"}},
		{Resolvers: []string{"127.0.0.1"}, AuthoritativePort: 70000},
	} {
		if _, err := dns01.NewChecker(opts, nil); err == nil {
			t.Errorf("NewChecker(%+v): no error", opts)
		}
	}
	if _, err := dns01.NewChecker(dns01.PropagationOptions{Resolvers: []string{"127.0.0.1", "::1", "[::1]:5353"}}, nil); err != nil {
		t.Errorf("addresses without port: %v", err)
	}
	if !strings.Contains(dns01.Waiting{Missing: 3, Total: 8}.String(), "waiting for 3 of 8 records") {
		t.Error("Waiting.String")
	}
}
