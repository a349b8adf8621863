package solvers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
)

// fakeProvider records the batches it is given. Its methods fail while
// the matching error is set, and block while gate is set.
type fakeProvider struct {
	mu                     sync.Mutex
	presents, cleanups     [][]dns01.Record
	presentErr, cleanupErr error
	cleanupFailures        int // CleanUp calls left to fail with cleanupErr
	gate                   chan struct{}
}

func (p *fakeProvider) Present(ctx context.Context, recs []dns01.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.presents = append(p.presents, recs)
	return p.presentErr
}

func (p *fakeProvider) CleanUp(ctx context.Context, recs []dns01.Record) error {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		<-gate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, recs)
	if p.cleanupFailures > 0 {
		p.cleanupFailures--
		return p.cleanupErr
	}
	return nil
}

// cleanupsCopy returns the batches given to CleanUp.
func (p *fakeProvider) cleanupsCopy() [][]dns01.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.cleanups)
}

// calls returns the sizes of the batches given to Present and CleanUp.
func (p *fakeProvider) calls() (presents, cleanups []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.presents {
		presents = append(presents, len(b))
	}
	for _, b := range p.cleanups {
		cleanups = append(cleanups, len(b))
	}
	return presents, cleanups
}

// fakeChecker places every record in example.test and finds it served at
// once.
type fakeChecker struct {
	mu       sync.Mutex
	watched  map[dns01.Record]int
	locates  int
	unserved bool // Wait finds nothing served
}

func (c *fakeChecker) Locate(ctx context.Context, domain, value string) (dns01.Record, error) {
	c.mu.Lock()
	c.locates++
	c.mu.Unlock()
	if strings.HasSuffix(domain, ".unknown.test") {
		return dns01.Record{}, errors.New("dns01: no zone")
	}
	return dns01.Record{FQDN: dns01.ChallengeName(domain), Zone: "example.test.", Value: value}, nil
}

func (c *fakeChecker) Watch(r dns01.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watched[r]++
}

func (c *fakeChecker) Forget(r dns01.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watched[r]--; c.watched[r] <= 0 {
		delete(c.watched, r)
	}
}

func (c *fakeChecker) Wait(ctx context.Context, r dns01.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watched[r] == 0 {
		return errors.New("not watched")
	}
	if c.unserved {
		return errors.New("not served by every authoritative server")
	}
	return nil
}

func (c *fakeChecker) Waiting() dns01.Waiting {
	c.mu.Lock()
	defer c.mu.Unlock()
	return dns01.Waiting{Total: len(c.watched)}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// settle lets the background goroutines of a DNS01 finish, as a synctest
// bubble requires: batches, automatic sends and the backoff of retries.
func settle() { time.Sleep(2 * retryMax) }

func newFakeDNS01() (*DNS01, *fakeProvider, *fakeChecker) {
	p := &fakeProvider{}
	c := &fakeChecker{watched: make(map[dns01.Record]int)}
	return newDNS01(p, c, nil), p, c
}

func challenge(domain, token string) acmeclient.Challenge {
	return acmeclient.Challenge{Type: "dns-01", Token: token, KeyAuthorization: token + ".thumbprint",
		Identifier: acmeclient.Identifier{Type: "dns", Value: domain}}
}

func challenges(n int) []acmeclient.Challenge {
	var out []acmeclient.Challenge
	for i := range n {
		out = append(out, challenge(fmt.Sprintf("n%d.example.test", i), fmt.Sprintf("token%d", i)))
	}
	return out
}

// presentAndWait does what the issuance flow does: every Present, then
// every Wait concurrently.
func presentAndWait(t *testing.T, s *DNS01, chs []acmeclient.Challenge) {
	t.Helper()
	for _, ch := range chs {
		if err := s.Present(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, len(chs))
	for _, ch := range chs {
		go func() { errs <- s.Wait(t.Context(), ch) }()
	}
	for range chs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestDNS01OneUpdatePerBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, c := newFakeDNS01()
		chs := challenges(50)
		presentAndWait(t, s, chs)
		if presents, _ := p.calls(); !slices.Equal(presents, []int{50}) {
			t.Fatalf("Present batches = %v, want one of 50", presents)
		}
		if got := s.Waiting().Total; got != 50 {
			t.Errorf("watched records = %d, want 50", got)
		}

		// Concurrent clean-ups share updates: the first one holds the
		// provider while the others queue up behind it.
		p.gate = make(chan struct{})
		var wg sync.WaitGroup
		for _, ch := range chs {
			wg.Go(func() {
				if err := s.CleanUp(t.Context(), ch); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		close(p.gate)
		wg.Wait()
		if _, cleanups := p.calls(); len(cleanups) > 2 || sum(cleanups) != 50 {
			t.Errorf("CleanUp batches = %v, want 50 records in at most 2", cleanups)
		}
		if len(c.watched) != 0 {
			t.Errorf("records still watched: %v", c.watched)
		}
		settle()
	})
}

// TestDNS01SharedRecords: a record stays while any order holds it. Two
// orders sharing one authorization present the same record: it goes once
// both cleaned up. An order presenting its record again (resumed) holds
// it once. Two orders for one name with different values (two
// authorizations) hold two records, and each clean-up removes its own.
func TestDNS01SharedRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, _ := newFakeDNS01()
		a, b := WithOwner(t.Context(), "a"), WithOwner(t.Context(), "b")
		base := challenge("example.test", "base")
		wild := challenge("*.example.test", "wild")
		other := challenge("example.test", "other") // b's own authorization for the name
		steps := []struct {
			ctx context.Context
			ch  acmeclient.Challenge
		}{{a, base}, {a, wild}, {b, base}, {b, other}}
		for _, st := range steps {
			if err := s.Present(st.ctx, st.ch); err != nil {
				t.Fatal(err)
			}
		}
		for _, ch := range []acmeclient.Challenge{base, wild, other} {
			if err := s.Wait(t.Context(), ch); err != nil {
				t.Fatal(err)
			}
		}
		presents, _ := p.calls()
		if !slices.Equal(presents, []int{3}) {
			t.Fatalf("Present batches = %v, want one of 3 records", presents)
		}
		for _, r := range p.presents[0] {
			if r.FQDN != "_acme-challenge.example.test." {
				t.Errorf("record at %s", r.FQDN)
			}
		}
		for i, st := range []struct {
			ctx  context.Context
			ch   acmeclient.Challenge
			gone []acmeclient.Challenge // removed by now
		}{
			{a, base, nil},
			{a, base, nil}, // again: a holds nothing more
			{a, wild, []acmeclient.Challenge{wild}},
			{b, other, []acmeclient.Challenge{wild, other}},
			{b, base, []acmeclient.Challenge{wild, other, base}},
		} {
			if err := s.CleanUp(st.ctx, st.ch); err != nil {
				t.Fatal(err)
			}
			var removed, want []string
			for _, batch := range p.cleanupsCopy() {
				for _, r := range batch {
					removed = append(removed, r.Value)
				}
			}
			for _, ch := range st.gone {
				want = append(want, ch.DNS01Value())
			}
			if !slices.Equal(removed, want) {
				t.Errorf("after clean-up %d, removed %v, want %v", i+1, removed, want)
			}
		}

		// Presented twice by one order (resumed), cleaned up once: gone.
		presentAndWait(t, s, []acmeclient.Challenge{base})
		if err := s.Present(t.Context(), base); err != nil {
			t.Fatal(err)
		}
		if err := s.CleanUp(t.Context(), base); err != nil {
			t.Fatal(err)
		}
		if _, cleanups := p.calls(); len(cleanups) != 4 {
			t.Errorf("removals = %v, want the record presented twice by one owner removed by its clean-up", cleanups)
		}
		settle()
	})
}

func TestDNS01NeverSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, _ := newFakeDNS01()
		ch := challenge("example.test", "tok")
		if err := s.Present(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		if err := s.CleanUp(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * autoSend)
		if presents, cleanups := p.calls(); len(presents)+len(cleanups) != 0 {
			t.Errorf("provider called for a record cleaned up before it was sent: %v %v", presents, cleanups)
		}

		// Without a Wait, a presented record still goes out.
		if err := s.Present(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * autoSend)
		if presents, _ := p.calls(); !slices.Equal(presents, []int{1}) {
			t.Errorf("Present batches = %v, want the record sent without a Wait", presents)
		}
		if err := s.CleanUp(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		settle()
	})
}

func TestDNS01PresentFails(t *testing.T) {
	for _, tt := range []struct {
		name        string
		err         error
		wantRemoval bool
	}{
		{"nothing changed", fmt.Errorf("rfc2136: update example.test at 192.0.2.1:53: NOTAUTH: %w", dns01.ErrUnchanged), false},
		{"maybe changed", errors.New("rfc2136: update example.test at 192.0.2.1:53: i/o timeout"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, p, _ := newFakeDNS01()
				p.presentErr = tt.err
				ch := challenge("www.example.test", "tok")
				if err := s.Present(t.Context(), ch); err != nil {
					t.Fatal(err)
				}
				err := s.Wait(t.Context(), ch)
				if want := "dns-01 for www.example.test: " + tt.err.Error(); err == nil || err.Error() != want {
					t.Fatalf("Wait = %v, want %s", err, want)
				}
				if err := s.CleanUp(t.Context(), ch); err != nil {
					t.Fatal(err)
				}
				if _, cleanups := p.calls(); (len(cleanups) > 0) != tt.wantRemoval {
					t.Errorf("removals = %v, want removal %v", cleanups, tt.wantRemoval)
				}
				settle()
			})
		})
	}
	synctest.Test(t, func(t *testing.T) {
		s, p, _ := newFakeDNS01()
		ch := challenge("www.unknown.test", "tok")
		if err := s.Present(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(t.Context(), ch); err == nil || !strings.Contains(err.Error(), "no zone") {
			t.Fatalf("Wait = %v, want the Locate error", err)
		}
		if err := s.Wait(t.Context(), challenge("other.example.test", "x")); err == nil {
			t.Fatal("Wait for a record never presented: no error")
		}
		if err := s.CleanUp(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		if presents, cleanups := p.calls(); len(presents)+len(cleanups) != 0 {
			t.Errorf("provider called for a record that was never located: %v %v", presents, cleanups)
		}
		settle()
	})
}

func TestDNS01RemovalRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, _ := newFakeDNS01()
		chs := challenges(2)
		presentAndWait(t, s, chs)
		p.cleanupErr = fmt.Errorf("rfc2136: update example.test at 192.0.2.1:53: connection refused: %w", dns01.ErrUnchanged)
		p.cleanupFailures = 4 // both clean-ups, then two retries
		start := time.Now()   // each clean-up waits removeDelay for its batch
		for _, ch := range chs {
			err := s.CleanUp(t.Context(), ch)
			if err == nil || !strings.Contains(err.Error(), "will retry") || !strings.Contains(err.Error(), "192.0.2.1:53") {
				t.Fatalf("CleanUp = %v", err)
			}
		}
		if got := s.retry.pending(); got != 2 {
			t.Fatalf("records to retry = %d, want 2", got)
		}
		for s.retry.pending() > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		// Retries after 1s and 1s+2s fail, the one after 1+2+4s succeeds
		// (counted from the failed clean-ups, 2×removeDelay in).
		if d := time.Since(start); d < 7*time.Second || d > 8*time.Second {
			t.Errorf("records removed after %v, want 7s of backoff", d)
		}
		if _, cleanups := p.calls(); !slices.Equal(cleanups, []int{1, 1, 2, 2, 2}) {
			t.Errorf("CleanUp batches = %v", cleanups)
		}
		settle()
	})
}

// TestDNS01WithoutRetry: a removal that fails under WithoutRetry (the
// issuance flow records it and retries it under its lock) is reported and
// not retried in the background, for a record known here and one left by
// an earlier process.
func TestDNS01WithoutRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, _ := newFakeDNS01()
		chs := challenges(2)
		presentAndWait(t, s, chs[:1]) // chs[1]: presented by an earlier process
		p.cleanupErr, p.cleanupFailures = errors.New("i/o timeout"), 2
		ctx := WithoutRetry(t.Context())
		for _, ch := range chs {
			if err := s.CleanUp(ctx, ch); err == nil || strings.Contains(err.Error(), "will retry") {
				t.Fatalf("CleanUp = %v, want a failure not retried", err)
			}
		}
		if got := s.retry.pending(); got != 0 {
			t.Fatalf("records to retry = %d, want 0", got)
		}
		time.Sleep(time.Hour)
		if _, cleanups := p.calls(); len(cleanups) != 2 {
			t.Errorf("CleanUp batches = %v, want the two failed clean-ups only", cleanups)
		}
		settle()
	})
}

func TestDNS01PresentAgainCancelsRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, _ := newFakeDNS01()
		ch := challenge("example.test", "tok")
		presentAndWait(t, s, []acmeclient.Challenge{ch})
		p.cleanupErr, p.cleanupFailures = errors.New("i/o timeout"), 1
		if err := s.CleanUp(t.Context(), ch); err == nil {
			t.Fatal("CleanUp did not fail")
		}
		presentAndWait(t, s, []acmeclient.Challenge{ch}) // the order is resumed
		if got := s.retry.pending(); got != 0 {
			t.Fatalf("records to retry = %d, want 0: the record is in use again", got)
		}
		time.Sleep(time.Minute)
		if _, cleanups := p.calls(); len(cleanups) != 1 {
			t.Errorf("CleanUp batches = %v: a record in use was removed", cleanups)
		}
		if err := s.CleanUp(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		settle()
	})
}

// TestDNS01PresentAgainAfterFailedWait: an order whose record was sent
// but never found served (the DNS server restarted and lost it) keeps its
// answer and presents it again in the next attempt: the record is sent
// again and waited for afresh, and one clean-up removes it.
func TestDNS01PresentAgainAfterFailedWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, c := newFakeDNS01()
		ch := challenge("example.test", "tok")
		c.mu.Lock()
		c.unserved = true
		c.mu.Unlock()
		if err := s.Present(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(t.Context(), ch); err == nil {
			t.Fatal("Wait did not fail")
		}
		c.mu.Lock()
		c.unserved = false
		c.mu.Unlock()
		presentAndWait(t, s, []acmeclient.Challenge{ch})
		presentAndWait(t, s, []acmeclient.Challenge{ch}) // found served: not sent again
		if presents, _ := p.calls(); !slices.Equal(presents, []int{1, 1}) {
			t.Errorf("Present batches = %v, want the record sent again once", presents)
		}
		if err := s.CleanUp(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		if _, cleanups := p.calls(); !slices.Equal(cleanups, []int{1}) {
			t.Errorf("CleanUp batches = %v, want one removal", cleanups)
		}
		if len(c.watched) != 0 {
			t.Errorf("records still watched: %v", c.watched)
		}
		settle()
	})
}

// TestDNS01LeftoverKept: a record whose removal failed, presented again
// while the server refuses everything, is still removed by the next
// CleanUp: it was there before.
func TestDNS01LeftoverKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, _ := newFakeDNS01()
		ch := challenge("example.test", "tok")
		presentAndWait(t, s, []acmeclient.Challenge{ch})
		p.cleanupErr, p.cleanupFailures = errors.New("i/o timeout"), 1
		if err := s.CleanUp(t.Context(), ch); err == nil {
			t.Fatal("CleanUp did not fail")
		}
		p.presentErr = fmt.Errorf("connection refused: %w", dns01.ErrUnchanged)
		if err := s.Present(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(t.Context(), ch); err == nil {
			t.Fatal("Wait did not fail")
		}
		if err := s.CleanUp(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		if _, cleanups := p.calls(); len(cleanups) != 2 {
			t.Errorf("CleanUp batches = %v, want the leftover removed", cleanups)
		}
		settle()
	})
}

func TestDNS01CleanUpAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, p, c := newFakeDNS01()
		if err := s.CleanUp(t.Context(), challenge("example.test", "tok")); err != nil {
			t.Fatal(err)
		}
		if _, cleanups := p.calls(); !slices.Equal(cleanups, []int{1}) || c.locates != 1 {
			t.Errorf("CleanUp of a record from an earlier process: removals %v, locates %d", cleanups, c.locates)
		}
		if err := s.Present(t.Context(), acmeclient.Challenge{Type: "http-01"}); err == nil {
			t.Error("Present of an http-01 challenge: no error")
		}
		settle()
	})
}
