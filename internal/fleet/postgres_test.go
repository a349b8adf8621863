package fleet

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tlspilot/tlspilot/internal/fleetca"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// TestIssuersShareDatabase: two issuer nodes over one PostgreSQL storage
// (as in a cluster) share one fleet CA (made once though both create it
// at the same time), redeem a token once between them, accept on one an
// agent enrolled on the other, and refuse it on both once one revokes it.
func TestIssuersShareDatabase(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	var nodes [2]*issuer
	var made [2]bool
	var wg sync.WaitGroup
	for i := range nodes {
		st, err := pgstore.New(ctx, pgstore.Options{URL: pg.URL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		reg, err := New(Options{Storage: st})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &issuer{reg: reg}
		wg.Go(func() {
			ca, created, err := fleetca.Create(ctx, fleetca.Options{Storage: st, Sealer: sealer})
			if err != nil {
				t.Error(err)
				return
			}
			nodes[i].ca, made[i] = ca, created
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if made[0] == made[1] || !nodes[0].ca.Certificate().Equal(nodes[1].ca.Certificate()) {
		t.Fatalf("CAs made: %v; the same CA: %v", made, nodes[0].ca.Certificate().Equal(nodes[1].ca.Certificate()))
	}
	for _, n := range nodes {
		n.serve(t)
	}

	e, err := nodes[0].reg.Enroll(ctx, "db1", []string{"db1.example.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := make(chan *Identity, 2)
	for _, n := range nodes {
		wg.Go(func() {
			id, err := n.client(t, nil).Enroll(ctx, e.Token)
			if err == nil {
				ids <- id
			} else if !strings.Contains(err.Error(), ErrTokenUsed.Error()) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(ids)
	if len(ids) != 1 {
		t.Fatalf("%d enrolments with one token, want 1", len(ids))
	}
	id := <-ids
	for i, n := range nodes {
		if _, err := n.client(t, id).Agent(ctx); err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	if _, err := nodes[1].reg.Revoke(ctx, "db1"); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if _, err := n.client(t, id).Agent(ctx); err == nil || !strings.Contains(err.Error(), "remote error: tls: ") {
			t.Errorf("node %d after revocation on node 1: %v, want the handshake refused", i, err)
		}
	}
	if _, err := nodes[0].reg.Redeem(ctx, e.Token); !errors.Is(err, ErrTokenUsed) {
		t.Errorf("the token after: %v", err)
	}
}

// serve serves the API of is (its CA and registry set) on a loopback
// port until the test ends.
func (is *issuer) serve(t *testing.T) {
	t.Helper()
	srv, err := NewServer(ServerOptions{CA: is.ca, Registry: is.reg, Names: []string{"127.0.0.1"}})
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	is.url, is.roots = "https://"+l.Addr().String(), is.ca.Pool()
}
