package issuance_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/internal/solvers"
)

// tamper is a transport to Pebble that lets edit rewrite the JSON object
// of every answer whose path starts with one of prefixes.
type tamper struct {
	base     http.RoundTripper
	prefixes []string
	edit     func(m map[string]any)
}

func (tr *tamper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tr.base.RoundTrip(req)
	if err != nil || !slices.ContainsFunc(tr.prefixes, func(p string) bool { return strings.HasPrefix(req.URL.Path, p) }) {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		tr.edit(m)
		b, _ = json.Marshal(m)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return resp, nil
}

// countingSolver counts the answers presented through it.
type countingSolver struct {
	solvers.Solver
	presented atomic.Int64
}

func (s *countingSolver) Present(ctx context.Context, ch acmeclient.Challenge) error {
	s.presented.Add(1)
	return s.Solver.Present(ctx, ch)
}

// tamperedFlow is e's flow talking to Pebble through a tamper transport
// (nil edit: untouched), with its http-01 solver counting what it
// presents.
func tamperedFlow(t *testing.T, e *env, edit func(m map[string]any), prefixes ...string) (*issuance.Flow, *countingSolver) {
	t.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: e.p.Roots}
	var rt http.RoundTripper = base
	if edit != nil {
		rt = &tamper{base: base, prefixes: prefixes, edit: edit}
	}
	c, err := acmeclient.New(acmeclient.Config{Directory: e.p.DirectoryURL, Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	s := &countingSolver{Solver: e.http01}
	f := e.flow()
	f.Client, f.Solvers = c, map[string]solvers.Solver{"http-01": s}
	return f, s
}

// refused checks that Obtain failed naming want, presented nothing and
// left no order progress behind.
func refused(t *testing.T, e *env, req issuance.Request, s *countingSolver, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Obtain: %v, want an error naming %q", err, want)
	}
	if n := s.presented.Load(); n != 0 {
		t.Errorf("%d challenge answers presented for a refused order", n)
	}
	if _, err := e.store.LoadProgress(t.Context(), req.ID); !certstore.IsNotExist(err) {
		t.Errorf("order progress kept after the refusal: %v", err)
	}
}

// TestObtainRefusesForeignAuthorization: the CA lists an authorization
// for a name nobody requested. No challenge is presented, and the order
// is refused naming the identifier.
func TestObtainRefusesForeignAuthorization(t *testing.T) {
	e := newEnv(t)
	req := request("own.example.test")
	f, s := tamperedFlow(t, e, func(m map[string]any) {
		m["identifier"] = map[string]any{"type": "dns", "value": "nobody-configured.example"}
	}, "/authZ/")
	_, err := f.Obtain(t.Context(), req)
	refused(t, e, req, s, err, `"nobody-configured.example", which was not requested`)
}

// TestObtainRefusesOrderForOtherNames: the CA's new order names an
// identifier that was not requested. The order is refused before it is
// saved or anything is solved.
func TestObtainRefusesOrderForOtherNames(t *testing.T) {
	e := newEnv(t)
	req := request("own-order.example.test")
	f, s := tamperedFlow(t, e, func(m map[string]any) {
		ids, _ := m["identifiers"].([]any)
		m["identifiers"] = append(ids, map[string]any{"type": "dns", "value": "nobody-configured.example"})
	}, "/order-plz")
	_, err := f.Obtain(t.Context(), req)
	refused(t, e, req, s, err, `"nobody-configured.example", which was not requested`)
	if n := e.p.Orders(); n != 1 {
		t.Errorf("the CA saw %d orders, want 1", n)
	}
}

// TestResumeRefusesOrderForOtherNames: the saved order, as the CA now
// shows it, is for another name than the one it was saved for. It is
// refused and forgotten, and nothing is solved for it.
func TestResumeRefusesOrderForOtherNames(t *testing.T) {
	e := newEnv(t)
	req := request("mine.example.test")
	ctx := t.Context()
	o, err := e.client.NewOrder(ctx, e.acct, issuance.Identifiers([]string{"someone-else.example.test"}), acmeclient.NewOrderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := certstore.Progress{Names: req.Names, OrderURL: o.URL, Authzs: o.Authorizations, Finalize: o.Finalize, Created: time.Now().UTC()}
	if err := e.store.StoreProgress(ctx, req.ID, p); err != nil {
		t.Fatal(err)
	}
	f, s := tamperedFlow(t, e, nil)
	_, err = f.Obtain(ctx, req)
	refused(t, e, req, s, err, `"someone-else.example.test", which was not requested`)
	if n := e.p.Orders(); n != 1 {
		t.Errorf("the CA saw %d orders, want 1 (no new order after the refusal)", n)
	}
}

// TestValidOrderWithoutCertificateURL: the CA says the order is valid
// but gives no certificate URL. Obtain fails saying so (not with an HTTP
// request to an empty URL).
func TestValidOrderWithoutCertificateURL(t *testing.T) {
	e := newEnv(t)
	req := request("nocert.example.test")
	f, _ := tamperedFlow(t, e, func(m map[string]any) {
		if m["status"] == "valid" || m["status"] == "processing" {
			m["status"] = "valid"
			delete(m, "certificate")
		}
	}, "/my-order/", "/finalize-order/")
	_, err := f.Obtain(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), "valid but names no certificate URL") {
		t.Errorf("Obtain: %v, want it to say the valid order names no certificate URL", err)
	}
	if acmeclient.ClassOf(err) != acmeclient.BadOrder {
		t.Errorf("class %v, want bad-order", acmeclient.ClassOf(err))
	}
	if _, err := e.store.LoadProgress(t.Context(), req.ID); !certstore.IsNotExist(err) {
		t.Errorf("order progress kept: %v", err)
	}
}

// TestResumeValidOrderWithoutCertificateURL: a saved order that the CA
// now shows valid, with no certificate URL, is given up with an error
// that says so.
func TestResumeValidOrderWithoutCertificateURL(t *testing.T) {
	e := newEnv(t)
	req := request("resume-nocert.example.test")
	ctx, cancel := context.WithCancel(t.Context())
	e.p.SetFault(stopAfter(t, e.p, "/finalize-order/", func(*http.Request) { cancel() }))
	if _, err := e.flow().Obtain(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("Obtain returned %v, want it canceled at finalize", err)
	}
	e.p.SetFault(nil)
	p, err := e.store.LoadProgress(t.Context(), req.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitOrder(t, e, p.OrderURL, "valid")
	f, _ := tamperedFlow(t, e, func(m map[string]any) { delete(m, "certificate") }, "/my-order/")
	_, err = f.Obtain(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), "valid but names no certificate URL") {
		t.Errorf("resumed Obtain: %v, want it to say the valid order names no certificate URL", err)
	}
	if _, err := e.store.LoadProgress(t.Context(), req.ID); !certstore.IsNotExist(err) {
		t.Errorf("order progress kept: %v", err)
	}
}
