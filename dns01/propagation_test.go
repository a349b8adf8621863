package dns01_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/rfc2136"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
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

func newChecker(t *testing.T, opts dns01.PropagationOptions) *dns01.Checker {
	t.Helper()
	c, err := dns01.NewChecker(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func provider(t *testing.T, b *testenv.BIND) *rfc2136.Provider {
	t.Helper()
	p, err := rfc2136.New(rfc2136.Options{Server: b.Addr, TSIGKey: b.KeyName, TSIGAlgorithm: b.KeyAlgorithm, TSIGSecret: b.KeySecret})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWaitForEveryServer: a record on the primary only is not enough; Wait
// returns once the secondary serves it too.
func TestWaitForEveryServer(t *testing.T) {
	if !testenv.IPv6Loopback() {
		t.Fatal("the second authoritative server listens on ::1, which is not available here")
	}
	port := testenv.FreeDNSPort(t, "127.0.0.1", "::1")
	primary := testenv.StartBIND(t, testenv.BINDOptions{Port: port, Zones: []testenv.BINDZone{
		{Name: "example.test", Updatable: true, NS: []string{"127.0.0.1", "::1"}}}})
	secondary := testenv.StartBIND(t, testenv.BINDOptions{IP: "::1", Port: port, Zones: []testenv.BINDZone{
		{Name: "example.test", Primary: primary.Addr}}})
	logs := &syncBuffer{}
	c, err := dns01.NewChecker(dns01.PropagationOptions{Resolvers: []string{primary.Addr}, AuthoritativePort: port,
		Interval: 50 * time.Millisecond, Timeout: 20 * time.Second}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}

	var recs []dns01.Record
	for i := range 3 {
		r, err := c.Locate(t.Context(), "n"+strconv.Itoa(i)+".example.test", "value-"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := provider(t, primary).Present(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		c.Watch(r)
	}
	done := make(chan error, len(recs))
	for _, r := range recs {
		go func() { done <- c.Wait(t.Context(), r) }()
	}
	time.Sleep(300 * time.Millisecond) // several rounds
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v before the secondary had the records", err)
	default:
	}
	if got := c.Waiting(); got != (dns01.Waiting{Missing: 3, Total: 3}) {
		t.Errorf("Waiting = %+v, want 3 of 3", got)
	}
	if err := secondary.Notify(t.Context(), "example.test"); err != nil {
		t.Fatal(err)
	}
	for range recs {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not return after the secondary transferred the zone")
		}
	}
	if got := c.Waiting(); got != (dns01.Waiting{Missing: 0, Total: 3}) {
		t.Errorf("Waiting = %+v, want 0 of 3", got)
	}
	for _, r := range recs {
		c.Forget(r)
	}
	if got := c.Waiting(); got != (dns01.Waiting{}) {
		t.Errorf("Waiting after Forget = %+v", got)
	}
	if !strings.Contains(logs.String(), "waiting for 3 of 3 records") {
		t.Errorf("log does not say how many records are missing:\n%s", logs)
	}
}

func TestWaitTimeout(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{{Name: "example.test", Updatable: true}}})
	c := newChecker(t, dns01.PropagationOptions{Resolvers: []string{b.Addr}, AuthoritativePort: b.Port,
		Interval: 50 * time.Millisecond, Timeout: 300 * time.Millisecond})
	r, err := c.Locate(t.Context(), "example.test", "never-presented")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Wait(t.Context(), r)
	want := "dns01: TXT _acme-challenge.example.test not served by every authoritative server of zone example.test after 300ms: " +
		"not served by ns1.example.test at " + b.Addr + " (waiting for 1 of 1 records)"
	if err == nil || err.Error() != want {
		t.Fatalf("Wait = %v\nwant   %s", err, want)
	}
	c.Forget(r)

	// A server that stopped answering is named with the error.
	b.Stop()
	r.Value = "other"
	err = c.Wait(t.Context(), r)
	if err == nil || !strings.Contains(err.Error(), "zone example.test") || !strings.Contains(err.Error(), b.Addr+": ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Wait with the server down = %v", err)
	}
	c.Forget(r)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Wait(ctx, r); err == nil {
		t.Fatal("Wait with a cancelled context: no error")
	}
	c.Forget(r)
}
