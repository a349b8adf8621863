package tlspilot

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/rfc2136"
	"github.com/tlspilot/tlspilot/internal/devca"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// BenchmarkDNS01 measures dns-01 issuance against Pebble validating
// through BIND, updates by rfc2136: one single-name order (the reference),
// one order for 50 names, and 50 single-name orders due together. It
// reports the DNS UPDATE messages sent per operation, those adding and
// those removing records. The figures are in docs/benchmarks-dns01.md.
//
// Each operation gets a new Pebble, Manager and account, made with the
// timer stopped: Pebble 2.10's store deadlocks now and then when it holds
// many authorizations and orders run concurrently (see the document).
//
//	go test -run '^$' -bench DNS01 -benchtime 5x .
func BenchmarkDNS01(b *testing.B) {
	bind := testenv.StartBIND(b, testenv.BINDOptions{Zones: []testenv.BINDZone{exampleZone}})
	upd, err := rfc2136.New(rfc2136.Options{Server: bind.Addr, TSIGKey: bind.KeyName, TSIGSecret: bind.KeySecret})
	if err != nil {
		b.Fatal(err)
	}
	prov := &countingProvider{Provider: upd}
	round := 0
	for _, bc := range []struct {
		name  string
		certs func(round int) []Cert
	}{
		{"1-name", func(r int) []Cert { return []Cert{{Names: []string{fmt.Sprintf("r%d.example.test", r)}}} }},
		{"1-order-50-names", func(r int) []Cert { return []Cert{{Names: benchNames(r, 50)}} }},
		{"50-orders", func(r int) []Cert {
			var cs []Cert
			for _, n := range benchNames(r, 50) {
				cs = append(cs, Cert{Names: []string{n}})
			}
			return cs
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			updates, adds, removes := upd.Updates(), prov.adds.Load(), prov.removes.Load()
			for b.Loop() {
				b.StopTimer()
				round++
				m, stop := benchDNSManager(b, bind, prov)
				certs := bc.certs(round)
				b.StartTimer()
				if err := m.ManageCerts(b.Context(), certs...); err != nil {
					b.Fatal(err)
				}
				waitAllServing(b, m, certs, 2*time.Minute)
				b.StopTimer()
				stop()
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(upd.Updates()-updates)/n, "updates/op")
			b.ReportMetric(float64(prov.adds.Load()-adds)/n, "add-updates/op")
			b.ReportMetric(float64(prov.removes.Load()-removes)/n, "remove-updates/op")
		})
	}
}

// benchDNSManager starts a Pebble validating through bind and a running
// Manager with an account there, solving dns-01 through prov. stop ends
// both.
func benchDNSManager(b *testing.B, bind *testenv.BIND, prov dns01.Provider) (*Manager, func()) {
	b.Helper()
	ca, err := devca.Start(b.Context(), devca.Options{DNSServer: bind.Addr, NonceReject: -1})
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(b.Context(), Config{
		CA: ca.DirectoryURL, CARoots: ca.Roots, AgreeTerms: true, StorageDir: b.TempDir(),
		Challenge: DNS01, DNSProvider: prov,
		DNSPropagation: dns01.PropagationOptions{Resolvers: []string{bind.Addr}, AuthoritativePort: bind.Port},
		RetryMin:       time.Second, RetryMax: 5 * time.Second,
	})
	if err != nil {
		ca.Close()
		b.Fatal(err)
	}
	if _, err := m.account(b.Context()); err != nil {
		ca.Close()
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	return m, func() {
		cancel()
		<-done
		ca.Close()
	}
}

// countingProvider counts the calls that add and that remove records;
// with one zone, each is one UPDATE message.
type countingProvider struct {
	dns01.Provider
	adds, removes atomic.Int64
}

func (p *countingProvider) Present(ctx context.Context, recs []dns01.Record) error {
	p.adds.Add(1)
	return p.Provider.Present(ctx, recs)
}

func (p *countingProvider) CleanUp(ctx context.Context, recs []dns01.Record) error {
	p.removes.Add(1)
	return p.Provider.CleanUp(ctx, recs)
}

// benchNames returns n names under example.test, new for each round.
func benchNames(round, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("n%d.r%d.example.test", i, round)
	}
	return out
}

// waitAllServing waits until every certificate of certs is CA-issued.
func waitAllServing(b *testing.B, m *Manager, certs []Cert, timeout time.Duration) {
	b.Helper()
	want := make(map[string]bool)
	for _, c := range certs {
		want[c.Names[0]] = true
	}
	deadline := time.Now().Add(timeout)
	for {
		left := len(want)
		for _, st := range m.Status() {
			if st.Serving && want[st.Names[0]] {
				left--
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d certificates not obtained within %v", left, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
