package tlspilot

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/provider"
	"github.com/tlspilot/tlspilot/dns01/rfc2136"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// exampleZone is the updatable zone example.test.
var exampleZone = testenv.BINDZone{Name: "example.test", Updatable: true}

// rfc2136For returns an rfc2136 provider for b, built from a [dns]
// configuration as the serve command does, with the secret in a file.
func rfc2136For(t *testing.T, b *testenv.BIND) *rfc2136.Provider {
	t.Helper()
	p, err := provider.New(dns01.Config{Provider: "rfc2136", Server: b.Addr, TSIGKey: b.KeyName,
		TSIGAlgorithm: b.KeyAlgorithm, TSIGSecretFile: b.SecretFile(t)}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return p.(*rfc2136.Provider)
}

// dnsConfig is testConfig solving dns-01 through prov, with the zones'
// authoritative servers found through resolver and asked on port.
func dnsConfig(t *testing.T, p *testenv.Pebble, prov dns01.Provider, resolver string, port int, ev *events) Config {
	t.Helper()
	cfg := testConfig(t, p, ev)
	cfg.Challenge = DNS01
	cfg.DNSProvider = prov
	cfg.DNSPropagation = dns01.PropagationOptions{Resolvers: []string{resolver}, AuthoritativePort: port,
		Interval: 50 * time.Millisecond, Timeout: 10 * time.Second}
	return cfg
}

// checkCertFor checks that m serves, for name, a certificate Pebble issued.
func checkCertFor(t *testing.T, m *Manager, p *testenv.Pebble, names ...string) {
	t.Helper()
	roots := p.IssuerRoots(t)
	for _, n := range names {
		verify(t, handshake(t, m, n, nil), roots, n)
	}
}

// wantTXT checks the TXT values b serves at name.
func wantTXT(t *testing.T, b *testenv.BIND, name string, want ...string) {
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

// TestDNS01Wildcard: a certificate for example.test and *.example.test
// through rfc2136 updates to BIND, which Pebble validates against; the
// records are gone afterwards.
func TestDNS01Wildcard(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	prov := &countingProvider{Provider: rfc2136For(t, b)}
	ev := &events{}
	m := startManager(t, p, dnsConfig(t, p, prov, b.Addr, b.Port, ev))
	if err := m.Manage(t.Context(), "example.test", "*.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 60*time.Second)
	checkCertFor(t, m, p, "example.test", "anything.example.test")
	wantTXT(t, b, "_acme-challenge.example.test")
	if adds, removes := prov.adds.Load(), prov.removes.Load(); adds != 1 || removes < 1 || removes > 2 {
		t.Errorf("DNS updates: %d adding, %d removing; want both records added in one, removed in one or two", adds, removes)
	}
	if got := m.DNSWaiting(); got != (dns01.Waiting{}) {
		t.Errorf("DNSWaiting = %+v after the order", got)
	}
	if fails := ev.of(EventFailed); len(fails) > 0 {
		t.Errorf("failed attempts: %v", fails[0].Err)
	}
}

// TestDNS01CNAME: _acme-challenge.example.test is a CNAME into acme.test,
// a zone given to tlspilot; example.test itself accepts no update. Pebble
// asks a resolver, as a real CA does.
func TestDNS01CNAME(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{
		{Name: "example.test", Records: []string{"_acme-challenge CNAME example.acme.test."}},
		{Name: "acme.test", Updatable: true},
	}})
	resolver := testenv.StartBIND(t, testenv.BINDOptions{Forward: b.Addr})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: resolver.Addr})
	prov := rfc2136For(t, b)
	m := startManager(t, p, dnsConfig(t, p, prov, resolver.Addr, b.Port, nil))
	if err := m.Manage(t.Context(), "example.test", "*.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 60*time.Second)
	checkCertFor(t, m, p, "example.test", "www.example.test")
	wantTXT(t, b, "example.acme.test")
}

// hookScript is an exec provider script that calls nsupdate.
const hookScript = `#!/bin/sh
set -e
case "$1" in
present) op=add ;;
cleanup) op=delete ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
nsupdate -k KEYFILE <<EOF
server 127.0.0.1 PORT
zone $TLSPILOT_DNS_ZONE
update $op $2 60 TXT "$3"
send
EOF
`

// TestDNS01Exec: the same through the exec provider and a script calling
// nsupdate.
func TestDNS01Exec(t *testing.T) {
	if _, err := exec.LookPath("nsupdate"); err != nil {
		t.Fatalf("nsupdate not found: %s", testenv.NamedHint)
	}
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	hook := filepath.Join(t.TempDir(), "dns-hook")
	script := strings.NewReplacer("KEYFILE", b.KeyFile(t), "PORT", strconv.Itoa(b.Port)).Replace(hookScript)
	if err := os.WriteFile(hook, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	prov, err := provider.New(dns01.Config{Provider: "exec", Command: hook, Timeout: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := startManager(t, p, dnsConfig(t, p, prov, b.Addr, b.Port, nil))
	if err := m.Manage(t.Context(), "example.test", "*.example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 60*time.Second)
	checkCertFor(t, m, p, "example.test", "www.example.test")
	wantTXT(t, b, "_acme-challenge.example.test")
}

// TestDNS01Misconfigured: a wrong TSIG key and an unknown zone fail with
// errors naming the server, the zone and the response code, and are
// retried with backoff.
func TestDNS01Misconfigured(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	wrongKey, err := rfc2136.New(rfc2136.Options{Server: b.Addr, TSIGKey: b.KeyName, TSIGSecret: "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldA=="})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, domain string
		prov         dns01.Provider
		want         string
	}{
		{"wrong TSIG key", "www.example.test", wrongKey,
			"rfc2136: update example.test at " + b.Addr + ": NOTAUTH (TSIG: BADSIG)"},
		{"unknown zone", "www.unknown.test", rfc2136For(t, b),
			"follow CNAMEs from _acme-challenge.www.unknown.test: CNAME _acme-challenge.www.unknown.test at " + b.Addr + ": REFUSED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := &events{}
			cfg := dnsConfig(t, p, tt.prov, b.Addr, b.Port, ev)
			cfg.RetryMin, cfg.RetryMax = 300*time.Millisecond, 2*time.Second
			m := startManager(t, p, cfg)
			if err := m.Manage(t.Context(), tt.domain); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, ev, EventFailed, 3, 30*time.Second)
			fails := ev.of(EventFailed)
			checkBackoff(t, fails[:3], cfg.RetryMin, 0)
			for _, f := range fails[:3] {
				if !strings.Contains(f.Err.Error(), tt.want) {
					t.Fatalf("error = %v\nwant it to contain %s", f.Err, tt.want)
				}
			}
			if st := m.Status()[0]; st.Serving || !strings.Contains(st.LastError, tt.want) {
				t.Errorf("status = %+v", st)
			}
		})
	}
	wantTXT(t, b, "_acme-challenge.www.example.test")
}

// stopAfterPresent stops BIND once the first records are presented, as an
// outage in the middle of an order.
type stopAfterPresent struct {
	dns01.Provider
	b       *testenv.BIND
	once    sync.Once
	stopped chan struct{}
}

func (s *stopAfterPresent) Present(ctx context.Context, recs []dns01.Record) error {
	err := s.Provider.Present(ctx, recs)
	s.once.Do(func() {
		s.b.Stop()
		close(s.stopped)
	})
	return err
}

// TestDNS01ServerStopsMidOrder: BIND stops after the records are added.
// The attempt fails naming the server and zone, the records cannot be
// removed; once BIND is back the next attempt succeeds and no record is
// left behind.
func TestDNS01ServerStopsMidOrder(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	prov := &stopAfterPresent{Provider: rfc2136For(t, b), b: b, stopped: make(chan struct{})}
	ev := &events{}
	cfg := dnsConfig(t, p, prov, b.Addr, b.Port, ev)
	cfg.DNSPropagation.Timeout = time.Second
	m := startManager(t, p, cfg)
	if err := m.Manage(t.Context(), "example.test", "*.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventFailed, 1, 30*time.Second)
	err := ev.of(EventFailed)[0].Err
	for _, want := range []string{"zone example.test", b.Addr, "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 60*time.Second)
	checkCertFor(t, m, p, "example.test", "www.example.test")
	wantTXT(t, b, "_acme-challenge.example.test")
}

// TestDNS01Propagation: example.test has two authoritative servers, a
// primary that receives the updates and a secondary that transfers the
// zone only when the test sends it a NOTIFY, a second after the primary
// has the records. Pebble asks the secondary. The CA must not be asked to
// validate before the secondary serves the records.
func TestDNS01Propagation(t *testing.T) {
	if !testenv.IPv6Loopback() {
		t.Fatal("the second authoritative server listens on ::1, which is not available here")
	}
	port := testenv.FreeDNSPort(t, "127.0.0.1", "::1")
	primary := testenv.StartBIND(t, testenv.BINDOptions{Port: port, Zones: []testenv.BINDZone{
		{Name: "example.test", Updatable: true, NS: []string{"127.0.0.1", "::1"}}}})
	secondary := testenv.StartBIND(t, testenv.BINDOptions{IP: "::1", Port: port, Zones: []testenv.BINDZone{
		{Name: "example.test", Primary: primary.Addr}}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: secondary.Addr})

	var mu sync.Mutex
	var firstAccept time.Time
	p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/chalZ/") && firstAccept.IsZero() {
			firstAccept = time.Now()
		}
		return false
	})
	m := startManager(t, p, dnsConfig(t, p, rfc2136For(t, primary), primary.Addr, port, nil))
	if err := m.Manage(t.Context(), "example.test", "*.example.test"); err != nil {
		t.Fatal(err)
	}

	// Once the primary has both records, hold the secondary back a second.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		got, err := primary.TXT(ctx, "_acme-challenge.example.test")
		if err == nil && len(got) == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the primary never had both records: %q, %v", got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if got := m.DNSWaiting(); got != (dns01.Waiting{Missing: 2, Total: 2}) {
		t.Errorf("DNSWaiting = %v, want 2 of 2 records missing", got)
	}
	mu.Lock()
	early := !firstAccept.IsZero()
	mu.Unlock()
	if early {
		t.Fatal("the CA was asked to validate before the secondary served the records")
	}
	notified := time.Now()
	if err := secondary.Notify(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 60*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if firstAccept.Before(notified) {
		t.Errorf("validation asked for at %v, before the secondary was notified at %v", firstAccept, notified)
	}
	wantTXT(t, primary, "_acme-challenge.example.test")
}

// nopProvider is a dns01.Provider that does nothing.
type nopProvider struct{}

func (nopProvider) Present(context.Context, []dns01.Record) error { return nil }
func (nopProvider) CleanUp(context.Context, []dns01.Record) error { return nil }

// TestDNS01Config: dns-01, and so wildcards, need a provider; IP addresses
// cannot be proved with dns-01.
func TestDNS01Config(t *testing.T) {
	cfg := Config{CA: "https://ca.invalid/dir", StorageDir: t.TempDir(), Challenge: DNS01}
	if _, err := New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "no dns-01 provider") {
		t.Fatalf("New without a provider: %v", err)
	}
	cfg.DNSProvider = nopProvider{}
	cfg.DNSPropagation.Resolvers = []string{"ns 1"}
	if _, err := New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "resolvers") {
		t.Fatalf("New with a bad resolver: %v", err)
	}
	cfg.DNSPropagation.Resolvers = []string{"127.0.0.1:53"}
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Manage(t.Context(), "example.test", "192.0.2.1"); err == nil || !strings.Contains(err.Error(), "IP address 192.0.2.1 cannot be proved with dns-01") {
		t.Errorf("Manage of an IP address with dns-01: %v", err)
	}
	if err := m.ManageCerts(t.Context(), Cert{Names: []string{"*.example.test"}, Challenge: HTTP01}); err == nil {
		t.Error("a wildcard with http-01: no error")
	}
	if err := m.Manage(t.Context(), "*.example.test", "example.test"); err != nil {
		t.Errorf("a wildcard with dns-01: %v", err)
	}
}

// failingCleanUp is a provider whose CleanUp always fails, as a DNS
// server down at clean-up time.
type failingCleanUp struct{ dns01.Provider }

func (failingCleanUp) CleanUp(context.Context, []dns01.Record) error {
	return errors.New("update refused (test)")
}

// TestRenewSweepsLeftovers: a TXT record that one run could not remove
// is removed by the next run of Renew (`renew`, `certs --once`) even
// when nothing is due, not only at the certificate's next order, weeks
// later; before, a --once run left it published.
func TestRenewSweepsLeftovers(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	cfg := dnsConfig(t, p, failingCleanUp{rfc2136For(t, b)}, b.Addr, b.Port, &events{})
	first := newManaging(t, cfg, "example.test")
	if err := first.Renew(t.Context(), RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.TXT(t.Context(), "_acme-challenge.example.test"); err != nil || len(got) == 0 {
		t.Fatalf("TXT after a failed clean-up: %q, %v; want the record left", got, err)
	}
	cfg.DNSProvider = rfc2136For(t, b)
	next := newManaging(t, cfg, "example.test")
	if err := next.Renew(t.Context(), RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	wantTXT(t, b, "_acme-challenge.example.test")
}

// TestStatusReportsLeftovers: a TXT record a failed clean-up left is in
// the status documents, from storage (ReadStatus: `tlspilot status`) and
// from a running Manager (Report: the admin listener's /status), with
// the record's name and value, until a later run removes it.
func TestStatusReportsLeftovers(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	cfg := dnsConfig(t, p, failingCleanUp{rfc2136For(t, b)}, b.Addr, b.Port, &events{})
	first := newManaging(t, cfg, "example.test")
	if err := first.Renew(t.Context(), RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	txt, err := b.TXT(t.Context(), "_acme-challenge.example.test")
	if err != nil || len(txt) != 1 {
		t.Fatalf("TXT after a failed clean-up: %q, %v; want the record left", txt, err)
	}
	want := []LeftAnswer{{Type: "dns-01", Name: "_acme-challenge.example.test", Value: txt[0]}}
	leftIn := func(r StatusReport) []LeftAnswer {
		for _, c := range r.Certificates {
			if slices.Contains(c.Names, "example.test") {
				return c.AnswersLeft
			}
		}
		return nil
	}
	if got := leftIn(ReadStatus(t.Context(), cfg, Cert{Names: []string{"example.test"}})); !slices.Equal(got, want) {
		t.Errorf("ReadStatus answers left = %+v, want %+v", got, want)
	}
	if got := leftIn(first.Report(t.Context())); !slices.Equal(got, want) {
		t.Errorf("Report answers left = %+v, want %+v", got, want)
	}
	cfg.DNSProvider = rfc2136For(t, b)
	next := newManaging(t, cfg, "example.test")
	if err := next.Renew(t.Context(), RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := leftIn(ReadStatus(t.Context(), cfg, Cert{Names: []string{"example.test"}})); got != nil {
		t.Errorf("ReadStatus after the record was removed: answers left %+v", got)
	}
}

// TestCleanNamesLeftovers: `tlspilot clean` removing a certificate no
// longer managed, whose answer an attempt could not take down, names the
// record to remove by hand (its record of it went with the certificate,
// silently, and nothing would ever try again).
func TestCleanNamesLeftovers(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	p := testenv.StartPebble(t, testenv.PebbleOptions{DNSServer: b.Addr})
	cfg := dnsConfig(t, p, failingCleanUp{rfc2136For(t, b)}, b.Addr, b.Port, &events{})
	m := newManaging(t, cfg, "example.test")
	if err := m.Renew(t.Context(), RenewOptions{}); err != nil {
		t.Fatal(err)
	}
	left, err := b.TXT(t.Context(), "_acme-challenge.example.test")
	if err != nil || len(left) != 1 {
		t.Fatalf("TXT after a failed clean-up: %q, %v; want the record left", left, err)
	}
	var logged bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	cleaned, err := Clean(t.Context(), cfg, CleanOptions{OlderThan: time.Nanosecond})
	if err != nil || len(cleaned) != 1 {
		t.Fatalf("Clean: %v, %v; want the certificate removed", cleaned, err)
	}
	if !strings.Contains(logged.String(), "name=_acme-challenge.example.test value="+left[0]) {
		t.Errorf("the left record is not named:\n%s", logged.String())
	}
}
