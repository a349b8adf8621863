package testenv

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// update adds (or, with remove, deletes) a TXT record through a dynamic
// update signed with b's key.
func update(t *testing.T, b *BIND, zone, name, value string, remove bool) {
	t.Helper()
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{value}}
	if remove {
		m.Remove([]dns.RR{rr})
	} else {
		m.Insert([]dns.RR{rr})
	}
	m.SetTsig(b.KeyName, b.KeyAlgorithm+".", 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, TsigSecret: map[string]string{b.KeyName: b.KeySecret}}
	r, _, err := c.ExchangeContext(t.Context(), m, b.Addr)
	if err != nil {
		t.Fatalf("update %s: %v", zone, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("update %s: %s", zone, dns.RcodeToString[r.Rcode])
	}
}

func wantTXT(t *testing.T, b *BIND, name string, want ...string) {
	t.Helper()
	got, err := b.TXT(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("TXT %s at %s = %q, want %q", name, b.Addr, got, want)
	}
}

func TestBINDUpdateRestart(t *testing.T) {
	b := StartBIND(t, BINDOptions{TSIGAlgorithm: "hmac-sha512", Zones: []BINDZone{{Name: "example.test", Updatable: true}}})
	update(t, b, "example.test", "_acme-challenge.example.test", "one", false)
	update(t, b, "example.test", "_acme-challenge.example.test", "two", false)
	wantTXT(t, b, "_acme-challenge.example.test", "one", "two")

	b.Stop()
	if _, err := b.TXT(t.Context(), "_acme-challenge.example.test"); err == nil {
		t.Fatal("stopped BIND still answers")
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	wantTXT(t, b, "_acme-challenge.example.test", "one", "two")
	update(t, b, "example.test", "_acme-challenge.example.test", "one", true)
	wantTXT(t, b, "_acme-challenge.example.test", "two")
}

func TestBINDSecondaryAndResolver(t *testing.T) {
	if !IPv6Loopback() {
		t.Fatal("the second authoritative server listens on ::1, which is not available")
	}
	port := FreeDNSPort(t, "127.0.0.1", "::1")
	zone := BINDZone{Name: "example.test", Updatable: true, NS: []string{"127.0.0.1", "::1"},
		Records: []string{"_acme-challenge.www CNAME www.acme.test."}}
	primary := StartBIND(t, BINDOptions{Port: port, Zones: []BINDZone{zone, {Name: "acme.test", Updatable: true}}})
	secondary := StartBIND(t, BINDOptions{IP: "::1", Port: port, Zones: []BINDZone{{Name: "example.test", Primary: primary.Addr}}})

	update(t, primary, "example.test", "_acme-challenge.example.test", "v", false)
	wantTXT(t, primary, "_acme-challenge.example.test", "v")
	wantTXT(t, secondary, "_acme-challenge.example.test") // primary sends no NOTIFY
	if err := secondary.Notify(t.Context(), "example.test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		got, err := secondary.TXT(ctx, "_acme-challenge.example.test")
		if err == nil && slices.Equal(got, []string{"v"}) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("secondary did not transfer the update: %q, %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// An authoritative server does not follow a CNAME into another zone;
	// a resolver does.
	update(t, primary, "acme.test", "www.acme.test", "w", false)
	resolver := StartBIND(t, BINDOptions{Forward: primary.Addr})
	m := new(dns.Msg)
	m.SetQuestion("_acme-challenge.www.example.test.", dns.TypeTXT)
	r, err := resolver.exchange(t.Context(), "tcp", m)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 2 {
		t.Fatalf("resolver answer: want CNAME and TXT, got %v", r.Answer)
	}
}
