package dns01

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// zoneServers are the name servers of a zone, or why they are unknown.
type zoneServers struct {
	list []nameserver
	err  error
}

// question is one record name to ask one name server about.
type question struct{ ns, fqdn string }

// answer is what a name server serves at a name.
type answer struct {
	values map[string]bool
	addr   string // the address that answered, or was asked last
	err    error
}

// serversOf returns the name servers of the zones of records, from the
// cache when fresh.
func (c *Checker) serversOf(ctx context.Context, records map[Record]*watch) map[string]zoneServers {
	zones := make(map[string]bool)
	for r := range records {
		zones[r.Zone] = true
	}
	out := make(map[string]zoneServers, len(zones))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for zone := range zones {
		wg.Go(func() {
			list, err := c.cachedNameservers(ctx, zone)
			mu.Lock()
			out[zone] = zoneServers{list: list, err: err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (c *Checker) cachedNameservers(ctx context.Context, zone string) ([]nameserver, error) {
	c.mu.Lock()
	e, ok := c.ns[zone]
	c.mu.Unlock()
	if ok && time.Since(e.at) < nsCacheTTL {
		return e.servers, nil
	}
	list, err := c.nameservers(ctx, zone)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.ns[zone] = nsEntry{servers: list, at: time.Now()}
	c.mu.Unlock()
	return list, nil
}

// askAll asks every name server, once per record name, about the records
// it has not been seen serving yet.
func (c *Checker) askAll(ctx context.Context, records map[Record]*watch, servers map[string]zoneServers) map[question]answer {
	todo := make(map[question][]string) // → the server's addresses
	for r, w := range records {
		for _, ns := range servers[r.Zone].list {
			if !w.seen[ns.name] {
				todo[question{ns: ns.name, fqdn: r.FQDN}] = ns.addrs
			}
		}
	}
	out := make(map[question]answer, len(todo))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for q, addrs := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.sem <- struct{}{}
			a := askServer(ctx, addrs, q.fqdn)
			<-c.sem
			mu.Lock()
			out[q] = a
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// askServer asks one name server, at each of its addresses until one
// answers, for the TXT values at fqdn, without recursion.
func askServer(ctx context.Context, addrs []string, fqdn string) answer {
	var a answer
	for _, addr := range addrs {
		a.addr = addr
		r, err := ask(ctx, addr, fqdn, dns.TypeTXT, false)
		if err != nil {
			a.err = fmt.Errorf("TXT %s at %s: %w", trimDot(fqdn), addr, err)
			continue
		}
		switch {
		case r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError:
			a.err = fmt.Errorf("TXT %s at %s: %s", trimDot(fqdn), addr, dns.RcodeToString[r.Rcode])
		case !r.Authoritative:
			a.err = fmt.Errorf("TXT %s at %s: answer is not authoritative", trimDot(fqdn), addr)
		default:
			a.err = nil
			a.values = make(map[string]bool)
			for _, v := range txtValues(r, fqdn) {
				a.values[v] = true
			}
		}
		return a
	}
	if a.err == nil {
		a.err = errors.New("name server has no address")
	}
	return a
}

func sortStrings(s []string) []string {
	slices.Sort(s)
	return s
}
