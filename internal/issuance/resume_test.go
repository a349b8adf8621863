package issuance_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/solvers"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// passHeader marks requests the tests send to Pebble themselves, so that
// their faults let them through.
const passHeader = "X-Tlspilot-Test-Pass"

// env is a Pebble, an account with it, a storage and an http-01 solver
// served on Pebble's validation port.
type env struct {
	p      *testenv.Pebble
	client *acmeclient.Client
	acct   acmeclient.Account
	store  *certstore.Store
	http01 *solvers.HTTP01
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := newBareEnv(t)
	serve(t, e.p.HTTPPort, e.http01.Handler(nil))
	return e
}

// newBareEnv is newEnv without a server for the http-01 answers.
func newBareEnv(t *testing.T) *env {
	t.Helper()
	return newBareEnvWith(t, testenv.PebbleOptions{})
}

// newBareEnvWith is newBareEnv with a Pebble started with opts.
func newBareEnvWith(t *testing.T, opts testenv.PebbleOptions) *env {
	t.Helper()
	p := testenv.StartPebble(t, opts)
	client, err := acmeclient.New(acmeclient.Config{Directory: p.DirectoryURL, Roots: p.Roots})
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := client.Register(t.Context(), key, acmeclient.RegisterOptions{AgreeTerms: true})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{p: p, client: client, acct: acct, store: certstore.New(fs, sealer)}
	e.http01 = solvers.NewHTTP01(e.store, slog.New(slog.DiscardHandler))
	return e
}

// serve serves h on 127.0.0.1:port until the test ends, retrying the
// listen while an earlier test's listener is released.
func serve(t *testing.T, port int, h http.Handler) {
	t.Helper()
	var l net.Listener
	var err error
	for range 100 {
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen on port %d: %v", port, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func (e *env) flow() *issuance.Flow {
	return &issuance.Flow{Client: e.client, Account: e.acct, Store: e.store,
		Solvers: map[string]solvers.Solver{"http-01": e.http01}, Log: slog.New(slog.DiscardHandler)}
}

func request(name string) issuance.Request {
	return issuance.Request{ID: certstore.CertID([]string{name}, keys.ECDSAP256), Names: []string{name},
		KeyType: keys.ECDSAP256, Challenge: "http-01"}
}

// TestFinalizeKeySavedBeforeCSR checks, at the moment the CSR reaches the
// CA, that the order progress in storage holds the key the CSR is for,
// sealed: a process that dies now can use the certificate the CA issues.
func TestFinalizeKeySavedBeforeCSR(t *testing.T) {
	e := newEnv(t)
	req := request("saved-key.example.test")
	type seen struct {
		csrKey, saved crypto.PublicKey
		raw           []byte
		err           error
	}
	got := make(chan seen, 1)
	e.p.SetFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/finalize-order/") {
			return false
		}
		var s seen
		s.csrKey, s.err = csrKey(r.Body)
		if p, err := e.store.LoadProgress(r.Context(), req.ID); err != nil {
			s.err = errors.Join(s.err, err)
		} else if p.Key == nil {
			s.err = errors.Join(s.err, errors.New("the order progress holds no key when the CSR is sent"))
		} else {
			s.saved = p.Key.Public()
		}
		s.raw, _ = e.store.Storage().Load(r.Context(), "certs/"+req.ID+"/order.json")
		select {
		case got <- s:
		default: // a retry after badNonce
		}
		return false
	})
	c, err := e.flow().Obtain(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.err != nil {
		t.Fatal(s.err)
	}
	if !s.saved.(interface{ Equal(crypto.PublicKey) bool }).Equal(s.csrKey) {
		t.Error("the key saved with the order progress is not the key of the CSR")
	}
	if !c.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(s.csrKey) {
		t.Error("the certificate's key is not the key of the CSR")
	}
	if !bytes.Contains(s.raw, []byte("TLSPILOT ENCRYPTED KEY")) || bytes.Contains(s.raw, []byte("PRIVATE KEY-----")) {
		t.Errorf("the key in the order progress is not sealed: %s", s.raw)
	}
}

// csrKey returns the public key of the CSR in a finalize request's JWS.
func csrKey(body io.Reader) (crypto.PublicKey, error) {
	var jws struct{ Payload string }
	if err := json.NewDecoder(body).Decode(&jws); err != nil {
		return nil, err
	}
	payload, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil {
		return nil, err
	}
	var fin struct{ CSR string }
	if err := json.Unmarshal(payload, &fin); err != nil {
		return nil, err
	}
	der, err := base64.RawURLEncoding.DecodeString(fin.CSR)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	return csr.PublicKey, nil
}

// TestResumeValidOrder stops an order after the CA accepted its CSR but
// before the client heard back, waits until the order is valid, and
// resumes it: the certificate is downloaded for the saved key, with no new
// order and no second finalize.
func TestResumeValidOrder(t *testing.T) {
	e := newEnv(t)
	req := request("resume-valid.example.test")
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan bool, 1)
	e.p.SetFault(stopAfter(t, e.p, "/finalize-order/", func(r *http.Request) {
		cancel()
		select {
		case <-r.Context().Done():
			stopped <- true
		case <-time.After(time.Minute):
			stopped <- false
		}
	}))
	if _, err := e.flow().Obtain(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("Obtain returned %v, want it canceled at finalize", err)
	}
	if !<-stopped {
		t.Fatal("the client did not drop the finalize request when its context ended")
	}
	e.p.SetFault(nil)
	p, err := e.store.LoadProgress(t.Context(), req.ID)
	if err != nil || p.Key == nil {
		t.Fatalf("order progress after the CSR was sent: key %v, error %v", p.Key, err)
	}
	waitOrder(t, e, p.OrderURL, "valid")
	finalizes, downloads := e.p.RequestsTo("/finalize-order/"), e.p.RequestsTo("/certZ/")
	c, err := e.flow().Obtain(t.Context(), req)
	if err != nil {
		t.Fatalf("resumed Obtain: %v", err)
	}
	if !c.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(p.Key.Public()) {
		t.Error("the resumed order's certificate is not for the saved key")
	}
	if n := e.p.Orders(); n != 1 {
		t.Errorf("the CA saw %d orders, want 1", n)
	}
	if n := e.p.RequestsTo("/finalize-order/") - finalizes; n != 0 {
		t.Errorf("the resumed order was finalized again (%d requests)", n)
	}
	if e.p.RequestsTo("/certZ/") == downloads {
		t.Error("the resumed order downloaded nothing")
	}
	if err := e.flow().Done(t.Context(), req.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.LoadProgress(t.Context(), req.ID); !certstore.IsNotExist(err) {
		t.Errorf("order progress after Done: %v", err)
	}
}

// waitOrder polls the order at u until it has status want.
func waitOrder(t *testing.T, e *env, u, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		o, err := e.client.GetOrder(t.Context(), e.acct, u)
		if err == nil && o.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s is not %s after 1m: status %q, error %v", u, want, o.Status, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopAfter returns a Pebble fault that passes the first request whose path
// starts with prefix to Pebble itself and, once Pebble accepted it, calls
// stop before answering, so the client never hears the CA's answer. A
// refusal such as badNonce is handed back to the client, which retries.
func stopAfter(t *testing.T, p *testenv.Pebble, prefix string, stop func(r *http.Request)) func(http.ResponseWriter, *http.Request) bool {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var fired atomic.Bool
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get(passHeader) != "" || fired.Load() || !strings.HasPrefix(r.URL.Path, prefix) {
			return false
		}
		resp, body, err := forward(client, p.DirectoryURL, r)
		if err != nil {
			testenv.WriteProblem(w, http.StatusBadGateway, "serverInternal", err.Error(), 0)
			return true
		}
		if resp.StatusCode < 300 && fired.CompareAndSwap(false, true) {
			stop(r)
		}
		relay(w, resp, body)
		return true
	}
}

// relay hands the CA's answer resp, with its body, to the client.
func relay(w http.ResponseWriter, resp *http.Response, body []byte) {
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// forward sends r to the CA at directory's host, marked with passHeader,
// and returns the answer with its body.
func forward(client *http.Client, directory string, r *http.Request) (*http.Response, []byte, error) {
	u, err := url.Parse(directory)
	if err != nil {
		return nil, nil, err
	}
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	req.Header.Set(passHeader, "1")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// TestResumeCleansUpValidatedChallenge resumes an order left by a process
// that died after its challenge was validated but before it removed the
// answer: once the certificate is obtained, the answer must be gone.
func TestResumeCleansUpValidatedChallenge(t *testing.T) {
	e := newEnv(t)
	req := request("stale-answer.example.test")
	ch := validatedThenDied(t, e, req)
	f := e.flow()
	if _, err := f.Obtain(t.Context(), req); err != nil {
		t.Fatalf("resumed Obtain: %v", err)
	}
	if err := f.Done(t.Context(), req.ID); err != nil {
		t.Fatal(err)
	}
	if n := e.p.Orders(); n != 1 {
		t.Errorf("the CA saw %d orders, want 1", n)
	}
	if ka, err := e.store.LoadHTTP01(t.Context(), ch.Token); !certstore.IsNotExist(err) {
		t.Errorf("the answer presented by the dead process is still stored (%q, %v)", ka, err)
	}
}

// validatedThenDied does what Flow does up to a validated challenge and
// stops there, as a process killed at that moment would: the progress
// records the presented challenge, whose answer is still stored.
func validatedThenDied(t *testing.T, e *env, req issuance.Request) acmeclient.Challenge {
	t.Helper()
	ctx := t.Context()
	o, err := e.client.NewOrder(ctx, e.acct, issuance.Identifiers(req.Names), acmeclient.NewOrderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.client.GetAuthz(ctx, e.acct, o.Authorizations[0])
	if err != nil {
		t.Fatal(err)
	}
	var ch acmeclient.Challenge
	for _, c := range a.Challenges {
		if c.Type == req.Challenge {
			ch = c
		}
	}
	p := certstore.Progress{Names: req.Names, OrderURL: o.URL, Authzs: o.Authorizations, Finalize: o.Finalize,
		Challenges: []certstore.Challenge{{Type: ch.Type, Identifier: ch.Identifier.Value, Token: ch.Token, KeyAuth: ch.KeyAuthorization}},
		Created:    time.Now().UTC()}
	if err := e.store.StoreProgress(ctx, req.ID, p); err != nil {
		t.Fatal(err)
	}
	if err := e.http01.Present(solvers.WithOwner(ctx, req.ID), ch); err != nil { // as Flow presents it
		t.Fatal(err)
	}
	if err := e.client.Accept(ctx, e.acct, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.WaitAuthz(ctx, e.acct, a); err != nil {
		t.Fatal(err)
	}
	return ch
}
