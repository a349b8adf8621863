package dns01

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// queryTimeout bounds one DNS question to one server.
const queryTimeout = 3 * time.Second

// ask sends one question to server over UDP, again over TCP if the answer
// was truncated, and returns the answer whatever its response code.
func ask(ctx context.Context, server, name string, qtype uint16, recurse bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = recurse
	m.SetEdns0(4096, false)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	c := &dns.Client{Net: "udp", Timeout: queryTimeout}
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// askResolvers asks each resolver in turn until one answers with NOERROR
// or NXDOMAIN, and returns that answer. Otherwise it returns the last
// error, naming the resolver and the response code.
func askResolvers(ctx context.Context, resolvers []string, name string, qtype uint16) (*dns.Msg, error) {
	var last error
	for _, res := range resolvers {
		r, err := ask(ctx, res, name, qtype, true)
		switch {
		case err != nil:
			last = fmt.Errorf("%s %s at %s: %w", dns.TypeToString[qtype], trimDot(name), res, err)
		case r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError:
			last = fmt.Errorf("%s %s at %s: %s", dns.TypeToString[qtype], trimDot(name), res, dns.RcodeToString[r.Rcode])
		default:
			return r, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if last == nil {
		last = errors.New("no resolvers")
	}
	return nil, last
}

// normalizeServers adds port 53 (or port) to each address that has none.
func normalizeServers(addrs []string, port string) ([]string, error) {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err == nil {
			out = append(out, a)
			continue
		}
		host := strings.Trim(a, "[]")
		if strings.ContainsAny(host, "[]/ ") {
			return nil, fmt.Errorf("bad server address %q: want host or host:port", a)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

// systemResolvers returns the name servers of /etc/resolv.conf.
func systemResolvers() ([]string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("no resolvers configured and none in /etc/resolv.conf: %w", err)
	}
	if len(cc.Servers) == 0 {
		return nil, errors.New("no resolvers configured and none in /etc/resolv.conf")
	}
	return normalizeServers(cc.Servers, cc.Port)
}

// txtValues returns the values of the TXT records at name in r's answer.
func txtValues(r *dns.Msg, name string) []string {
	var out []string
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.EqualFold(t.Hdr.Name, name) {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out
}
