package solvers

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// openStores returns n certstores on one directory, as n processes
// sharing a storage have.
func openStores(t *testing.T, n int) []*certstore.Store {
	t.Helper()
	dir := t.TempDir()
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(dir, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*certstore.Store
	for range n {
		fs, err := fsstore.New(fsstore.Options{Dir: filepath.Join(dir, "data"), PollInterval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, certstore.New(fs, sealer))
	}
	return out
}

func httpChallenge(name, token string) acmeclient.Challenge {
	return acmeclient.Challenge{Type: "http-01", Token: token, KeyAuthorization: token + ".thumbprint",
		Identifier: acmeclient.Identifier{Type: "dns", Value: name}}
}

func alpnChallenge(name, token string) acmeclient.Challenge {
	ch := httpChallenge(name, token)
	ch.Type = "tls-alpn-01"
	return ch
}

// served returns what h answers for token: the key authorization, or ""
// for a 404.
func served(t *testing.T, h *HTTP01, token string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.Handler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HTTP01Prefix+token, nil))
	switch rec.Code {
	case http.StatusOK:
		return rec.Body.String()
	case http.StatusNotFound:
		return ""
	}
	t.Fatalf("GET %s: %d %s", token, rec.Code, rec.Body)
	return ""
}

// TestHTTP01Owners: two orders sharing one authorization present the same
// token; the answer is served, by this process and by another sharing the
// storage, until both cleaned up, also when one cleans up twice or from
// another process (after a restart). An order that presents again holds
// the answer once.
func TestHTTP01Owners(t *testing.T) {
	st := openStores(t, 2)
	h, other := NewHTTP01(st[0], nil), NewHTTP01(st[1], nil)
	a, b := WithOwner(t.Context(), "cert-a"), WithOwner(t.Context(), "cert-b")
	ch := httpChallenge("example.test", "tok")
	check := func(step, want string) {
		t.Helper()
		for i, s := range []*HTTP01{h, other} {
			if got := served(t, s, ch.Token); got != want {
				t.Errorf("%s: process %d serves %q, want %q", step, i, got, want)
			}
		}
	}
	for _, ctx := range []context.Context{a, b, a} {
		if err := h.Present(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	check("presented", ch.KeyAuthorization)
	for range 2 {
		if err := h.CleanUp(a, ch); err != nil {
			t.Fatal(err)
		}
	}
	check("cleaned up by a (twice)", ch.KeyAuthorization)
	if err := other.CleanUp(a, ch); err != nil {
		t.Fatal(err)
	}
	check("cleaned up by a in another process", ch.KeyAuthorization)
	if err := other.CleanUp(b, ch); err != nil { // b restarted in the other process
		t.Fatal(err)
	}
	if got := served(t, other, ch.Token); got != "" {
		t.Errorf("cleaned up by every owner: the other process serves %q", got)
	}
	if err := h.CleanUp(b, ch); err != nil {
		t.Fatal(err)
	}
	check("cleaned up by every owner", "")
}

// alpnDigest returns the SHA-256 of the key authorization that c, a
// tls-alpn-01 validation certificate, carries.
func alpnDigest(t *testing.T, c *x509.Certificate) [sha256.Size]byte {
	t.Helper()
	var out [sha256.Size]byte
	for _, e := range c.Extensions {
		if e.Id.Equal(idPeAcmeIdentifier) {
			var b []byte
			if _, err := asn1.Unmarshal(e.Value, &b); err != nil || len(b) != sha256.Size {
				t.Fatalf("acmeIdentifier %x: %v", e.Value, err)
			}
			copy(out[:], b)
			return out
		}
	}
	t.Fatal("no acmeIdentifier extension")
	return out
}

// alpnServed returns the key authorization s serves for identifier, among
// candidates, or "" if it serves none.
func alpnServed(t *testing.T, s *TLSALPN01, identifier string, candidates ...acmeclient.Challenge) string {
	t.Helper()
	c, err := s.Certificate(t.Context(), identifier)
	if err != nil {
		return ""
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	got := alpnDigest(t, leaf)
	for _, ch := range candidates {
		if sha256.Sum256([]byte(ch.KeyAuthorization)) == got {
			return ch.KeyAuthorization
		}
	}
	t.Fatalf("%s: serves an unknown key authorization", identifier)
	return ""
}

// TestTLSALPN01Owners: two orders for one name (an ECDSA and an RSA
// certificate) present different key authorizations. The one presented
// last is served, by this process and another sharing the storage; each
// clean-up removes only its own answer, so the other order's is served
// again. A key authorization held by two orders (one shared authorization)
// stays until both cleaned up.
func TestTLSALPN01Owners(t *testing.T) {
	st := openStores(t, 2)
	s, other := NewTLSALPN01(st[0], nil), NewTLSALPN01(st[1], nil)
	a, b, c := WithOwner(t.Context(), "cert-a"), WithOwner(t.Context(), "cert-b"), WithOwner(t.Context(), "cert-c")
	const name = "example.test"
	chA, chB := alpnChallenge(name, "tok-a"), alpnChallenge(name, "tok-b")
	check := func(step string, want string) {
		t.Helper()
		for i, p := range []*TLSALPN01{s, other} {
			if got := alpnServed(t, p, name, chA, chB); got != want {
				t.Errorf("%s: process %d serves %q, want %q", step, i, got, want)
			}
		}
	}
	if err := s.Present(a, chA); err != nil {
		t.Fatal(err)
	}
	check("a presented", chA.KeyAuthorization)
	time.Sleep(time.Millisecond) // presented strictly later
	if err := s.Present(b, chB); err != nil {
		t.Fatal(err)
	}
	check("b presented", chB.KeyAuthorization)
	if err := s.CleanUp(b, chB); err != nil {
		t.Fatal(err)
	}
	check("b cleaned up", chA.KeyAuthorization)
	if err := s.CleanUp(b, chA); err != nil { // b never held it
		t.Fatal(err)
	}
	check("b cleaned up a's answer", chA.KeyAuthorization)

	if err := other.Present(c, chA); err != nil { // c shares a's authorization
		t.Fatal(err)
	}
	if err := s.CleanUp(a, chA); err != nil {
		t.Fatal(err)
	}
	check("a cleaned up, c holds it", chA.KeyAuthorization)
	if err := other.CleanUp(c, chA); err != nil {
		t.Fatal(err)
	}
	check("every owner cleaned up", "")
}

// TestTLSALPN01Exclusive: orders for overlapping names, in two processes
// sharing the storage, take turns for each name and never wait for each
// other in a circle; a wait ended by its context holds nothing.
func TestTLSALPN01Exclusive(t *testing.T) {
	st := openStores(t, 2)
	procs := []*TLSALPN01{NewTLSALPN01(st[0], nil), NewTLSALPN01(st[1], nil)}
	names := [][]string{{"x.test", "y.test"}, {"y.test", "x.test"}, {"y.test", "z.test", "x.test"}, {"z.test"}}
	var holders sync.Map // name -> *atomic.Int32
	for _, n := range []string{"x.test", "y.test", "z.test"} {
		holders.Store(n, new(atomic.Int32))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, ns := range names {
		var chs []acmeclient.Challenge
		for _, n := range ns {
			chs = append(chs, alpnChallenge(n, "tok"), httpChallenge(n, "tok"))
		}
		wg.Go(func() {
			for range 10 {
				release, err := procs[i%2].Exclusive(ctx, chs)
				if err != nil {
					t.Errorf("Exclusive(%v): %v", ns, err)
					return
				}
				for _, n := range ns {
					h, _ := holders.Load(n)
					if h.(*atomic.Int32).Add(1) != 1 {
						t.Errorf("%s held twice", n)
					}
				}
				time.Sleep(time.Millisecond)
				for _, n := range ns {
					h, _ := holders.Load(n)
					h.(*atomic.Int32).Add(-1)
				}
				release()
				release()
			}
		})
	}
	wg.Wait()

	release, err := procs[0].Exclusive(ctx, []acmeclient.Challenge{alpnChallenge("x.test", "tok")})
	if err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, err := procs[1].Exclusive(short, []acmeclient.Challenge{alpnChallenge("w.test", "t"), alpnChallenge("x.test", "t")}); err == nil {
		t.Fatal("Exclusive of a held name returned before its context ended")
	}
	release()
	wctx, wstop := context.WithTimeout(ctx, 5*time.Second)
	defer wstop()
	again, err := procs[1].Exclusive(wctx, []acmeclient.Challenge{alpnChallenge("w.test", "t")})
	if err != nil {
		t.Fatal(err)
	}
	again()
}

// failingList is a storage whose List fails while fail is set.
type failingList struct {
	storage.Storage
	fail atomic.Bool
}

func (f *failingList) List(ctx context.Context, prefix string) ([]string, error) {
	if f.fail.Load() {
		return nil, errors.New("storage down")
	}
	return f.Storage.List(ctx, prefix)
}

// TestTLSALPN01StorageDown: while the storage cannot be read, the answer
// presented here last is served.
func TestTLSALPN01StorageDown(t *testing.T) {
	fs, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	st := &failingList{Storage: fs}
	s := NewTLSALPN01(certstore.New(st, nil), nil)
	const name = "example.test"
	chA, chB := alpnChallenge(name, "tok-a"), alpnChallenge(name, "tok-b")
	for _, ch := range []acmeclient.Challenge{chA, chB} {
		if err := s.Present(t.Context(), ch); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	st.fail.Store(true)
	if got := alpnServed(t, s, name, chA, chB); got != chB.KeyAuthorization {
		t.Errorf("storage down: serves %q, want the last presented %q", got, chB.KeyAuthorization)
	}
	if got := alpnServed(t, s, "other.test"); got != "" {
		t.Errorf("storage down: serves %q for a name never presented", got)
	}
}
