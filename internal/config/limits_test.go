package config

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestTLSProfileAndLimits: tls_profile at the top (the sites' default)
// and per site, trusted_proxies per site, max_connections at the top.
func TestTLSProfileAndLimits(t *testing.T) {
	f := newFixture(t)
	c, err := f.parse(t, `tls_profile = "modern"
max_connections = 5000
[[site]]
names = ["a.example"]
root = "$DIR/www"
[[site]]
names = ["b.example"]
root = "$DIR/www"
tls_profile = "intermediate"
trusted_proxies = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLSProfile != "modern" || c.MaxConnections != 5000 {
		t.Errorf("tls_profile %q, max_connections %d", c.TLSProfile, c.MaxConnections)
	}
	if c.Sites[0].TLSProfile != "modern" || c.Sites[1].TLSProfile != "intermediate" {
		t.Errorf("site profiles %q, %q; want modern (inherited), intermediate", c.Sites[0].TLSProfile, c.Sites[1].TLSProfile)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	if !slices.Equal(c.Sites[1].TrustedProxies, want) || c.Sites[0].TrustedProxies != nil {
		t.Errorf("trusted_proxies %v, %v; want none, %v", c.Sites[0].TrustedProxies, c.Sites[1].TrustedProxies, want)
	}

	d, err := f.parse(t, "[[site]]\nnames = [\"a.example\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	if d.TLSProfile != "intermediate" || d.Sites[0].TLSProfile != "intermediate" || d.MaxConnections != 0 {
		t.Errorf("defaults: tls_profile %q (site %q), max_connections %d", d.TLSProfile, d.Sites[0].TLSProfile, d.MaxConnections)
	}
}

// TestTrustedProxiesMapped: an IPv4-mapped address or network in
// trusted_proxies ("::ffff:10.0.0.1", as `ss` and some logs print
// clients of a dual-stack socket) is the IPv4 one: the server compares
// a client's address in its IPv4 form, so as written it never matched,
// and the proxy in front was silently untrusted.
func TestTrustedProxiesMapped(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, "[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\ntrusted_proxies = [\"::ffff:10.0.0.1\", \"::ffff:192.168.0.0/112\", \"::ffff:0:0/96\"]\n")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("0.0.0.0/0")}
	if got := c.Sites[0].TrustedProxies; !slices.Equal(got, want) {
		t.Errorf("trusted_proxies %v, want %v", got, want)
	}
	if !c.Sites[0].TrustedProxies[0].Contains(netip.MustParseAddr("::ffff:10.0.0.1").Unmap()) {
		t.Error("the client 10.0.0.1, as the server sees it, is not trusted")
	}
}

func TestTLSProfileAndLimitsRefused(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ config, want string }{
		{`tls_profile = "old"`, `tlspilot.toml:1: tls_profile: "old": want "intermediate" (TLS 1.2 and 1.3) or "modern" (TLS 1.3 only)`},
		{"[[site]]\nnames = [\"a.example\"]\n\ntls_profile = \"\"", `tlspilot.toml:4: site[1].tls_profile: "": want "intermediate"`},
		{"[[site]]\nnames = [\"a.example\"]\ntrusted_proxies = [\n  \"10.0.0.0/8\",\n  \"10.0.0.0/33\"]", `tlspilot.toml:5: site[1].trusted_proxies[2]: "10.0.0.0/33": want a network ("10.0.0.0/8") or an address`},
		{"[[site]]\nnames = [\"a.example\"]\ntrusted_proxies = [\"::ffff:0.0.0.0/80\"]", `tlspilot.toml:3: site[1].trusted_proxies[1]: "::ffff:0.0.0.0/80": an IPv4-mapped network must be /96 or longer`},
		{`max_connections = -1`, `tlspilot.toml:1: max_connections: -1: want a positive number`},
		{`max_connections = "many"`, `tlspilot.toml:1: max_connections: want an integer, not a string`},
	} {
		_, err := f.parse(t, tc.config)
		var list ErrorList
		if !errors.As(err, &list) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v\nwant %s", tc.config, err, tc.want)
		}
	}
}
