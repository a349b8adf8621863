// Package rfc2136 is a dns01.Provider that adds and removes TXT records by
// dynamic update (RFC 2136) signed with TSIG (RFC 8945), which BIND, Knot,
// PowerDNS and other standards-following DNS servers accept.
//
// All the records of one zone handed to Present or CleanUp travel in one
// UPDATE message (up to 150 records each), over TCP.
package rfc2136

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/tlspilot/tlspilot/dns01"
)

// maxPerMessage bounds the records of one UPDATE message, well within the
// 64 KiB of a DNS message over TCP.
const maxPerMessage = 150

// Options configures a Provider.
type Options struct {
	// Server is where updates go: host:port, port 53 if omitted; normally
	// the zone's primary server. Required.
	Server string
	// TSIGKey is the name of the TSIG key, such as "tlspilot.". Required.
	TSIGKey string
	// TSIGAlgorithm is "hmac-sha256" (the default) or "hmac-sha512".
	TSIGAlgorithm string
	// TSIGSecret is the key's secret, base64. Required. See
	// dns01.ReadKey to read it, and the algorithm, from a file.
	TSIGSecret string
	// TTL is the TTL of the records added. Default 60s.
	TTL time.Duration
	// Timeout bounds one update exchange. Default 10s.
	Timeout time.Duration
}

// Provider changes TXT records by TSIG-signed dynamic update. It is safe
// for concurrent use.
type Provider struct {
	server  string
	key     string // absolute, lower case
	alg     string // miekg/dns algorithm name
	secret  string
	ttl     uint32
	timeout time.Duration
	updates atomic.Int64
}

// New checks opts and returns a Provider. It does no I/O.
func New(opts Options) (*Provider, error) {
	p := &Provider{timeout: opts.Timeout, secret: opts.TSIGSecret}
	if opts.Server == "" {
		return nil, errors.New("rfc2136: no server")
	}
	p.server = opts.Server
	if _, _, err := net.SplitHostPort(opts.Server); err != nil {
		p.server = net.JoinHostPort(strings.Trim(opts.Server, "[]"), "53")
	}
	if opts.TSIGKey == "" {
		return nil, errors.New("rfc2136: no TSIG key name")
	}
	p.key = strings.ToLower(dns.Fqdn(opts.TSIGKey))
	switch strings.ToLower(strings.TrimSuffix(opts.TSIGAlgorithm, ".")) {
	case "", "hmac-sha256":
		p.alg = dns.HmacSHA256
	case "hmac-sha512":
		p.alg = dns.HmacSHA512
	default:
		return nil, fmt.Errorf("rfc2136: TSIG algorithm %q: want hmac-sha256 or hmac-sha512", opts.TSIGAlgorithm)
	}
	if opts.TSIGSecret == "" {
		return nil, errors.New("rfc2136: no TSIG secret")
	}
	p.ttl = uint32(opts.TTL / time.Second)
	if opts.TTL <= 0 {
		p.ttl = 60
	}
	if p.timeout <= 0 {
		p.timeout = 10 * time.Second
	}
	return p, nil
}

// Present adds recs, one UPDATE message per zone.
func (p *Provider) Present(ctx context.Context, recs []dns01.Record) error {
	return p.change(ctx, recs, false)
}

// CleanUp removes recs (those values only), one UPDATE message per zone.
func (p *Provider) CleanUp(ctx context.Context, recs []dns01.Record) error {
	return p.change(ctx, recs, true)
}

// Updates returns the number of UPDATE messages sent so far.
func (p *Provider) Updates() int64 { return p.updates.Load() }

// change sends the updates for recs, zone by zone, and reports every
// failure. The result wraps dns01.ErrUnchanged only if no update may have
// changed anything.
func (p *Provider) change(ctx context.Context, recs []dns01.Record, remove bool) error {
	var errs []error
	unchanged := true
	for _, batch := range batches(recs) {
		err := p.send(ctx, batch, remove)
		if err == nil || !errors.Is(err, dns01.ErrUnchanged) {
			unchanged = false
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	if !unchanged {
		for i, err := range errs {
			errs[i] = mayHaveChanged{err}
		}
	}
	return errors.Join(errs...)
}

// mayHaveChanged hides dns01.ErrUnchanged when another update of the same
// call may have changed records.
type mayHaveChanged struct{ err error }

func (e mayHaveChanged) Error() string { return e.err.Error() }

// Unwrap returns the cause of the failed update, without the marker.
func (e mayHaveChanged) Unwrap() []error {
	var u *updateError
	if errors.As(e.err, &u) {
		return u.causes()
	}
	return nil
}

// batches groups recs by zone, in messages of at most maxPerMessage.
func batches(recs []dns01.Record) [][]dns01.Record {
	byZone := make(map[string][]dns01.Record)
	var zones []string
	for _, r := range recs {
		if _, ok := byZone[r.Zone]; !ok {
			zones = append(zones, r.Zone)
		}
		byZone[r.Zone] = append(byZone[r.Zone], r)
	}
	slices.Sort(zones)
	var out [][]dns01.Record
	for _, z := range zones {
		for rs := range slices.Chunk(byZone[z], maxPerMessage) {
			out = append(out, rs)
		}
	}
	return out
}

// send sends one signed UPDATE for recs, which share a zone.
func (p *Provider) send(ctx context.Context, recs []dns01.Record, remove bool) error {
	zone := dns.Fqdn(recs[0].Zone)
	rrs := make([]dns.RR, len(recs))
	for i, r := range recs {
		if !dns.IsSubDomain(zone, r.FQDN) {
			return &updateError{zone: zone, server: p.server, err: fmt.Errorf("%s is not in zone %s", r.FQDN, zone), unchanged: true}
		}
		rrs[i] = &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(r.FQDN), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: p.ttl},
			Txt: []string{r.Value}}
	}
	m := new(dns.Msg)
	m.SetUpdate(zone)
	if remove {
		m.Remove(rrs)
	} else {
		m.Insert(rrs)
	}
	m.SetTsig(p.key, p.alg, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: p.timeout, TsigSecret: map[string]string{p.key: p.secret}}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	p.updates.Add(1)
	r, _, err := c.ExchangeContext(ctx, m, p.server)
	names := make([]string, len(recs))
	for i, r := range recs {
		names[i] = strings.TrimSuffix(r.FQDN, ".")
	}
	return p.check(zone, names, r, err)
}

// check turns the outcome of an update of names in zone into an error,
// or nil.
func (p *Provider) check(zone string, names []string, r *dns.Msg, err error) error {
	e := &updateError{zone: zone, server: p.server}
	switch {
	case r != nil && r.Rcode != dns.RcodeSuccess:
		e.unchanged = true
		e.rcode, e.config = p.refusal(zone, names, r)
	case r != nil && err != nil:
		e.err = fmt.Errorf("the response's TSIG signature does not verify: %w", err)
	case err != nil:
		var op *net.OpError
		e.err, e.unchanged = err, errors.As(err, &op) && op.Op == "dial"
	default:
		return nil
	}
	return e
}

// refusal explains an update's error response: what the server refused
// and what to check, naming the key and its algorithm. config says that
// only a change of configuration (here or at the server) can fix it.
func (p *Provider) refusal(zone string, names []string, r *dns.Msg) (why string, config bool) {
	rcode := dns.RcodeToString[r.Rcode]
	if rcode == "" {
		rcode = fmt.Sprintf("rcode %d", r.Rcode)
	}
	key, alg := p.key, strings.TrimSuffix(p.alg, ".")
	tsigErr := uint16(dns.RcodeSuccess)
	if t := r.IsTsig(); t != nil {
		tsigErr = t.Error
	}
	if tsigErr != dns.RcodeSuccess {
		rcode += " (TSIG: " + dns.RcodeToString[int(tsigErr)] + ")"
	}
	switch {
	case tsigErr == dns.RcodeBadKey:
		return fmt.Sprintf("%s: the server does not know TSIG key %s with %s: check tsig_key, tsig_algorithm and the server's key clause", rcode, key, alg), true
	case tsigErr == dns.RcodeBadSig:
		return fmt.Sprintf("%s: signature refused: the secret or algorithm (%s) of TSIG key %s differs from the server's", rcode, alg, key), true
	case tsigErr == dns.RcodeBadTime:
		return rcode + ": signature time refused: this host's clock and the server's differ by more than 5 minutes", false
	case tsigErr != dns.RcodeSuccess:
		return rcode, false
	case r.Rcode == dns.RcodeRefused:
		return fmt.Sprintf("%s: the zone's update-policy/allow-update does not grant TSIG key %s for %s", rcode, key, nameList(names)), true
	case r.Rcode == dns.RcodeNotAuth:
		return fmt.Sprintf("%s: the server is not authoritative for zone %s or TSIG key %s is not accepted", rcode, strings.TrimSuffix(zone, "."), key), true
	}
	return rcode, false
}

// nameList names the first records of an update, for a message.
func nameList(names []string) string {
	const most = 3
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
}

// updateError is a failed update.
type updateError struct {
	zone, server string
	rcode        string // the response code and what it means, when the server answered
	err          error
	unchanged    bool // nothing was changed
	config       bool // only a change of configuration can fix it
}

func (e *updateError) Error() string {
	why := e.rcode
	if e.err != nil {
		why = e.err.Error()
	}
	return fmt.Sprintf("rfc2136: update %s at %s: %s", strings.TrimSuffix(e.zone, "."), e.server, why)
}

func (e *updateError) Unwrap() []error {
	out := e.causes()
	if e.unchanged {
		out = append(out, dns01.ErrUnchanged)
	}
	return out
}

// causes returns the cause of the failure and dns01.ErrConfig if only a
// change of configuration can fix it: what Unwrap returns but
// dns01.ErrUnchanged.
func (e *updateError) causes() []error {
	var out []error
	if e.err != nil {
		out = append(out, e.err)
	}
	if e.config {
		out = append(out, dns01.ErrConfig)
	}
	return out
}

var _ dns01.Provider = (*Provider)(nil)
