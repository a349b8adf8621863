package dns01

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// maxCNAMEs bounds the CNAME chain followed from a challenge name.
const maxCNAMEs = 8

// Locate returns the Record that answers the dns-01 challenge for domain
// with value: at _acme-challenge.<domain>, or at the end of the CNAME chain
// starting there (so the record can live in a small zone delegated to
// tlspilot), in the configured zone or the one found by walking up to the
// SOA. It asks the resolvers.
func (c *Checker) Locate(ctx context.Context, domain, value string) (Record, error) {
	name := ChallengeName(domain)
	fqdn, err := c.followCNAMEs(ctx, name)
	if err != nil {
		return Record{}, fmt.Errorf("dns01: follow CNAMEs from %s: %w", trimDot(name), err)
	}
	if c.zone != "" {
		if !dns.IsSubDomain(c.zone, fqdn) {
			return Record{}, fmt.Errorf("dns01: %s is not in the configured zone %s", describe(name, fqdn), trimDot(c.zone))
		}
		return Record{FQDN: fqdn, Zone: c.zone, Value: value}, nil
	}
	zone, err := c.findZone(ctx, fqdn)
	if err != nil {
		return Record{}, fmt.Errorf("dns01: find zone of %s: %w", describe(name, fqdn), err)
	}
	return Record{FQDN: fqdn, Zone: zone, Value: value}, nil
}

// describe names a challenge name and, if different, its CNAME target.
func describe(name, fqdn string) string {
	if name == fqdn {
		return trimDot(name)
	}
	return trimDot(name) + " (CNAME to " + trimDot(fqdn) + ")"
}

// followCNAMEs returns the end of the CNAME chain starting at name.
func (c *Checker) followCNAMEs(ctx context.Context, name string) (string, error) {
	seen := map[string]bool{name: true}
	for range maxCNAMEs {
		r, err := askResolvers(ctx, c.resolvers, name, dns.TypeCNAME)
		if err != nil {
			return "", err
		}
		target := ""
		for _, rr := range r.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && strings.EqualFold(cn.Hdr.Name, name) {
				target = strings.ToLower(dns.Fqdn(cn.Target))
			}
		}
		if target == "" {
			return name, nil
		}
		if seen[target] {
			return "", fmt.Errorf("loop at %s", trimDot(target))
		}
		seen[target] = true
		name = target
	}
	return "", fmt.Errorf("more than %d CNAMEs", maxCNAMEs)
}

// findZone walks up from name until a SOA record names its zone. Most
// servers name it in the first answer's authority section.
func (c *Checker) findZone(ctx context.Context, name string) (string, error) {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		s := name[off:]
		r, err := askResolvers(ctx, c.resolvers, s, dns.TypeSOA)
		if err != nil {
			return "", err
		}
		for _, rr := range append(r.Answer, r.Ns...) {
			soa, ok := rr.(*dns.SOA)
			if ok && dns.IsSubDomain(soa.Hdr.Name, name) {
				return strings.ToLower(dns.Fqdn(soa.Hdr.Name)), nil
			}
		}
	}
	return "", fmt.Errorf("no SOA record above %s", trimDot(name))
}

// nameserver is one authoritative server of a zone.
type nameserver struct {
	name  string   // its NS name, absolute
	addrs []string // host:port at the authoritative port, IPv4 first
}

// nameservers returns the authoritative servers of zone, as its NS
// records name them.
func (c *Checker) nameservers(ctx context.Context, zone string) ([]nameserver, error) {
	r, err := askResolvers(ctx, c.resolvers, zone, dns.TypeNS)
	if err != nil {
		return nil, fmt.Errorf("name servers of %s: %w", trimDot(zone), err)
	}
	var out []nameserver
	for _, rr := range r.Answer {
		ns, ok := rr.(*dns.NS)
		if !ok || !strings.EqualFold(ns.Hdr.Name, zone) {
			continue
		}
		n := nameserver{name: strings.ToLower(dns.Fqdn(ns.Ns))}
		ips, err := c.addresses(ctx, n.name, r.Extra)
		if err != nil {
			return nil, fmt.Errorf("name servers of %s: %w", trimDot(zone), err)
		}
		for _, ip := range ips {
			n.addrs = append(n.addrs, net.JoinHostPort(ip, strconv.Itoa(c.port)))
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("zone %s has no NS records", trimDot(zone))
	}
	return out, nil
}

// addresses returns the IPv4 then IPv6 addresses of a name server, from
// the glue in extra or else from the resolvers.
func (c *Checker) addresses(ctx context.Context, host string, extra []dns.RR) ([]string, error) {
	var v4, v6 []string
	collect := func(rrs []dns.RR) {
		for _, rr := range rrs {
			if !strings.EqualFold(rr.Header().Name, host) {
				continue
			}
			switch a := rr.(type) {
			case *dns.A:
				v4 = append(v4, a.A.String())
			case *dns.AAAA:
				v6 = append(v6, a.AAAA.String())
			}
		}
	}
	collect(extra)
	if len(v4)+len(v6) == 0 {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if r, err := askResolvers(ctx, c.resolvers, host, qt); err == nil {
				collect(r.Answer)
			}
		}
	}
	if len(v4)+len(v6) == 0 {
		return nil, fmt.Errorf("no address for %s", trimDot(host))
	}
	return append(v4, v6...), nil
}
