package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tlspilot/tlspilot/internal/fleetca"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
)

// downStorage fails every Load while down is set (fault injection).
type downStorage struct {
	storage.Storage
	down atomic.Bool
}

func (d *downStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if d.down.Load() {
		return nil, errors.New("connection refused")
	}
	return d.Storage.Load(ctx, key)
}

// lockedBuffer is a log sink the server and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestHealthz: GET /healthz answers without a client certificate, 200
// while the registry's storage answers and 503 while it does not; the
// cause is logged once per change, not at each probe.
func TestHealthz(t *testing.T) {
	reg, st := newRegistry(t)
	ds := &downStorage{Storage: st}
	reg.s = ds
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	ca, _, err := fleetca.Create(context.Background(), fleetca.Options{Storage: st, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	var logged lockedBuffer
	srv, err := NewServer(ServerOptions{CA: ca, Registry: reg, Names: []string{"127.0.0.1"},
		Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	probe := func() (int, string) {
		t.Helper()
		resp, err := hc.Get("https://" + l.Addr().String() + PathHealth)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := probe(); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthy: %d %q, want 200 \"ok\"", code, body)
	}
	ds.down.Store(true)
	for range 3 {
		if code, body := probe(); code != http.StatusServiceUnavailable || body != "unavailable\n" {
			t.Fatalf("storage down: %d %q, want 503 \"unavailable\"", code, body)
		}
	}
	ds.down.Store(false)
	if code, _ := probe(); code != http.StatusOK {
		t.Fatalf("storage back: %d, want 200", code)
	}
	log := logged.String()
	if n := strings.Count(log, "level=WARN msg=\"health: the registry's storage cannot be read"); n != 1 || !strings.Contains(log, "connection refused") {
		t.Errorf("%d warnings for 3 failed probes, want 1 with the cause:\n%s", n, log)
	}
	if !strings.Contains(log, "can be read again") {
		t.Errorf("recovery not logged:\n%s", log)
	}
}
