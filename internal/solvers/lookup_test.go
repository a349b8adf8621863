package solvers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/storage"
)

// countingStorage counts the reads that reach a storage.
type countingStorage struct {
	storage.Storage
	lists, loads atomic.Int64
}

func (c *countingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	c.lists.Add(1)
	return c.Storage.List(ctx, prefix)
}

func (c *countingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	c.loads.Add(1)
	return c.Storage.Load(ctx, key)
}

// randomToken returns a well-formed token nobody presented.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// flood sends made-up requests from 32 goroutines until stop is closed
// and returns how many it sent.
func flood(stop <-chan struct{}, one func()) *atomic.Int64 {
	var n atomic.Int64
	for range 32 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				one()
				n.Add(1)
			}
		}()
	}
	return &n
}

// TestLookupBounded: a node that did not present an answer finds it in
// the storage (another node runs the order), also the moment after it was
// stored and while a flood of well-formed made-up tokens and acme-tls/1
// handshakes arrives; the flood costs the storage at most about one
// listing per LookupInterval and no record read, not one per request.
func TestLookupBounded(t *testing.T) {
	stores := openStores(t, 2)
	counted := &countingStorage{Storage: stores[1].Storage()}
	other := certstore.New(counted, nil) // this node's view, reads counted
	h := NewHTTP01(other, nil)
	alpn := NewTLSALPN01(other, nil)
	presenter := NewHTTP01(stores[0], nil)
	alpnPresenter := NewTLSALPN01(stores[0], nil)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	httpN := flood(stop, func() {
		rec := httptest.NewRecorder()
		h.Handler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HTTP01Prefix+randomToken(), nil))
	})
	alpnN := flood(stop, func() { _, _ = alpn.Certificate(context.Background(), "flood.example.test") })
	start := time.Now()
	go func() {
		defer wg.Done()
		time.Sleep(2 * time.Second)
		close(stop)
	}()
	for i := 0; time.Since(start) < 1500*time.Millisecond; i++ {
		tok := randomToken()
		ctx := WithOwner(context.Background(), "cert-a")
		if err := presenter.Present(ctx, httpChallenge("a.example.test", tok)); err != nil {
			t.Fatal(err)
		}
		if got := served(t, h, tok); got != tok+".thumbprint" {
			t.Fatalf("answer %d, stored by another node just before: served %q", i, got)
		}
		ch := alpnChallenge("b.example.test", tok)
		if err := alpnPresenter.Present(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if _, err := alpn.Certificate(context.Background(), "b.example.test"); err != nil {
			t.Fatalf("tls-alpn-01 answer %d, stored by another node just before: %v", i, err)
		}
		_ = alpnPresenter.CleanUp(ctx, ch)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	elapsed := time.Since(start)
	lists, loads := counted.lists.Load(), counted.loads.Load()
	t.Logf("%d made-up http-01 requests and %d acme-tls/1 lookups in %v: %d listings, %d reads",
		httpN.Load(), alpnN.Load(), elapsed.Round(time.Millisecond), lists, loads)
	if httpN.Load() < 300 {
		t.Fatalf("only %d made-up requests: the flood did not run", httpN.Load())
	}
	// Two kinds, each at most one listing per LookupInterval, and the
	// real answers' reads (a listing and a read each).
	limit := 2*(int64(elapsed/LookupInterval)+2) + 4*int64(elapsed/(50*time.Millisecond))
	if lists > limit {
		t.Errorf("%d listings of the storage, want at most %d", lists, limit)
	}
	if loads > 4*int64(elapsed/(50*time.Millisecond)) {
		t.Errorf("%d reads of answers: made-up tokens were read", loads)
	}
}
