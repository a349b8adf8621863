package issuance_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/provider"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/solvers"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// dnsEnv is env with BIND serving the zones of opts, Pebble validating
// against it, and an rfc2136 provider updating it.
type dnsEnv struct {
	*env
	b    *testenv.BIND
	prov dns01.Provider
}

func newDNSEnv(t *testing.T, zones ...testenv.BINDZone) *dnsEnv {
	t.Helper()
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: zones})
	e := newBareEnvWith(t, testenv.PebbleOptions{DNSServer: b.Addr})
	prov, err := provider.New(dns01.Config{Provider: "rfc2136", Server: b.Addr, TSIGKey: b.KeyName,
		TSIGAlgorithm: b.KeyAlgorithm, TSIGSecretFile: b.SecretFile(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &dnsEnv{env: e, b: b, prov: prov}
}

// solver returns a dns-01 solver through prov (a new process's), waiting
// at most timeout for propagation.
func (e *dnsEnv) solver(t *testing.T, prov dns01.Provider, timeout time.Duration) *solvers.DNS01 {
	t.Helper()
	s, err := solvers.NewDNS01(prov, dns01.PropagationOptions{Resolvers: []string{e.b.Addr},
		AuthoritativePort: e.b.Port, Interval: 50 * time.Millisecond, Timeout: timeout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dnsFlow is a flow solving dns-01 with s, logging to log (nil: nowhere).
func (e *dnsEnv) dnsFlow(s solvers.Solver, log *slog.Logger) *issuance.Flow {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &issuance.Flow{Client: e.client, Account: e.acct, Store: e.store,
		Solvers: map[string]solvers.Solver{"dns-01": s}, Log: log}
}

func dnsRequest(names ...string) issuance.Request {
	return issuance.Request{ID: certstore.CertID(names, keys.ECDSAP256), Names: names,
		KeyType: keys.ECDSAP256, Challenge: "dns-01"}
}

// wantNoTXT fails unless BIND serves no TXT record at name.
func (e *dnsEnv) wantNoTXT(t *testing.T, name string) {
	t.Helper()
	got, err := e.b.TXT(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 0 {
		t.Errorf("TXT %s = %q after the attempt, want none", name, got)
	}
}

// wantNoLeftovers fails if answers are recorded as left behind for id.
func (e *dnsEnv) wantNoLeftovers(t *testing.T, id string) {
	t.Helper()
	left, err := issuance.Leftovers(t.Context(), e.store, id)
	if err != nil || len(left) > 0 {
		t.Errorf("answers left behind: %v, %v; want none", left, err)
	}
}

// TestDNS01RefusedZoneCleansUp: one of the two zones of an order refuses
// the update. The attempt fails before the CA is asked to validate
// anything, so the record added in the other zone is removed at once, not
// kept for a validation that will never come.
func TestDNS01RefusedZoneCleansUp(t *testing.T) {
	e := newDNSEnv(t, testenv.BINDZone{Name: "example.test", Updatable: true}, testenv.BINDZone{Name: "refuse.test"})
	req := dnsRequest("mix.example.test", "mix.refuse.test")
	_, err := e.dnsFlow(e.solver(t, e.prov, 10*time.Second), nil).Obtain(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), "REFUSED") {
		t.Fatalf("Obtain: %v, want the update refused", err)
	}
	e.wantNoTXT(t, "_acme-challenge.mix.example.test")
	p, err := e.store.LoadProgress(t.Context(), req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Challenges) > 0 {
		t.Errorf("order progress still records %d answers, want none", len(p.Challenges))
	}
}

// TestDNS01PropagationTimeoutCleansUp: a name server of the zone never
// serves the records, so the attempt fails on the propagation timeout,
// before the CA is asked to validate: both records are removed at once.
func TestDNS01PropagationTimeoutCleansUp(t *testing.T) {
	e := newDNSEnv(t, testenv.BINDZone{Name: "lag.test", Updatable: true, NS: []string{"127.0.0.1", "127.0.0.2"}})
	req := dnsRequest("lag.test", "*.lag.test")
	_, err := e.dnsFlow(e.solver(t, e.prov, time.Second), nil).Obtain(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), "not served") {
		t.Fatalf("Obtain: %v, want a propagation timeout", err)
	}
	e.wantNoTXT(t, "_acme-challenge.lag.test")
}

// failingCleanUp is a provider whose removals fail, as a DNS server gone
// after validation or a clean-up hook that exits 3.
type failingCleanUp struct{ dns01.Provider }

func (failingCleanUp) CleanUp(context.Context, []dns01.Record) error {
	return errors.New("cleanup broken")
}

// TestDNS01FailedRemovalRetriedByNextProcess: the removal after a
// successful order fails, and the process stops (certs --once). The
// record is kept as left behind in the storage, and the next process
// removes it.
func TestDNS01FailedRemovalRetriedByNextProcess(t *testing.T) {
	e := newDNSEnv(t, testenv.BINDZone{Name: "example.test", Updatable: true})
	req := dnsRequest("down.example.test")
	f1 := e.dnsFlow(e.solver(t, failingCleanUp{e.prov}, 10*time.Second), nil)
	if _, err := f1.Obtain(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := f1.Done(t.Context(), req.ID); err != nil {
		t.Fatal(err)
	}
	old, err := e.b.TXT(t.Context(), "_acme-challenge.down.example.test")
	if err != nil || len(old) != 1 {
		t.Fatalf("TXT after a failed removal = %q, %v; want the record left", old, err)
	}
	left, err := issuance.Leftovers(t.Context(), e.store, req.ID)
	if err != nil || len(left) != 1 {
		t.Fatalf("answers left behind: %v, %v; want the one not removed", left, err)
	}
	if name, value := issuance.Where(left[0]); name != "_acme-challenge.down.example.test" || value != old[0] {
		t.Errorf("Where = %s %q, want _acme-challenge.down.example.test %q", name, value, old[0])
	}

	// The next process, its DNS server working, renews the certificate.
	f2 := e.dnsFlow(e.solver(t, e.prov, 10*time.Second), nil)
	req.After = time.Now()
	if _, err := f2.Obtain(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := f2.Done(t.Context(), req.ID); err != nil {
		t.Fatal(err)
	}
	e.wantNoTXT(t, "_acme-challenge.down.example.test")
	e.wantNoLeftovers(t, req.ID)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes, for logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMovedOffDNS01KeepsAnswer: a certificate with a dns-01 answer
// recorded in its order progress is now configured for http-01, with no
// dns-01 solver at all. Giving the order up cannot remove the record: it
// is named in a warning and kept, and removed once a dns-01 solver is
// configured again.
func TestMovedOffDNS01KeepsAnswer(t *testing.T) {
	// The TXT record makes sw.example.test an empty non-terminal, which
	// the zone's * A record no longer answers for: it gets its own.
	e := newDNSEnv(t, testenv.BINDZone{Name: "example.test", Updatable: true, Records: []string{"sw IN A 127.0.0.1"}})
	serve(t, e.p.HTTPPort, e.http01.Handler(nil))
	req := request("sw.example.test")
	ch := acmeclient.Challenge{Type: "dns-01", Token: "tok", KeyAuthorization: "tok.thumbprint",
		Identifier: acmeclient.Identifier{Type: "dns", Value: "sw.example.test"}}
	dns := e.solver(t, e.prov, 10*time.Second)
	if err := dns.Present(solvers.WithOwner(t.Context(), req.ID), ch); err != nil {
		t.Fatal(err)
	}
	if err := dns.Wait(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	rec := certstore.Challenge{Type: "dns-01", Identifier: "sw.example.test", Token: "tok", KeyAuth: "tok.thumbprint"}
	// An order that cannot be resumed (it names no order URL), with the
	// answer.
	if err := e.store.StoreProgress(t.Context(), req.ID, certstore.Progress{Names: req.Names,
		Challenges: []certstore.Challenge{rec}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	f := e.flow()
	f.Log = slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := f.Obtain(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := f.Done(t.Context(), req.ID); err != nil {
		t.Fatal(err)
	}
	value := ch.DNS01Value()
	if got, _ := e.b.TXT(t.Context(), "_acme-challenge.sw.example.test"); len(got) != 1 || got[0] != value {
		t.Fatalf("TXT = %q, want %q still there", got, value)
	}
	warned := false
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "_acme-challenge.sw.example.test") && strings.Contains(l, value) {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning names the record left behind and its value; log:\n%s", logs.String())
	}
	if left, err := issuance.Leftovers(t.Context(), e.store, req.ID); err != nil || len(left) != 1 || left[0] != rec {
		t.Fatalf("answers left behind: %v, %v; want %v", left, err, rec)
	}

	// dns-01 is configured again (for this or another certificate).
	if left := e.dnsFlow(e.solver(t, e.prov, 10*time.Second), nil).Sweep(t.Context(), req.ID); len(left) > 0 {
		t.Errorf("Sweep left %v", left)
	}
	e.wantNoTXT(t, "_acme-challenge.sw.example.test")
	e.wantNoLeftovers(t, req.ID)
}
