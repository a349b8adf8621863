package tlspilot

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestHostileCACertificate: the CA answers a renewal with a certificate
// that is not the one ordered, or not a certificate at all. The renewal
// must fail with an error, and the certificate in service must stay in
// service.
func TestHostileCACertificate(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	now := time.Now()
	const a, b = "a.hostile.test", "b.hostile.test"
	type forged func(t *testing.T, leaf *x509.Certificate, rest []byte) []byte
	keep := func(nb, na time.Time) forged {
		return func(t *testing.T, leaf *x509.Certificate, rest []byte) []byte {
			return append(forge(t, leaf.PublicKey, leaf.DNSNames, nb, na), rest...)
		}
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		body forged
	}{
		{"subset of names", func(t *testing.T, leaf *x509.Certificate, rest []byte) []byte {
			return append(forge(t, leaf.PublicKey, []string{a}, now.Add(-time.Hour), now.Add(90*24*time.Hour)), rest...)
		}},
		{"superset of names", func(t *testing.T, leaf *x509.Certificate, rest []byte) []byte {
			return append(forge(t, leaf.PublicKey, []string{a, b, "nobody-configured.example"}, now.Add(-time.Hour), now.Add(90*24*time.Hour)), rest...)
		}},
		{"other public key", func(t *testing.T, leaf *x509.Certificate, rest []byte) []byte {
			return append(forge(t, otherKey.Public(), leaf.DNSNames, now.Add(-time.Hour), now.Add(90*24*time.Hour)), rest...)
		}},
		{"already expired", keep(now.Add(-48*time.Hour), now.Add(-24*time.Hour))},
		{"not yet valid", keep(now.Add(365*24*time.Hour), now.Add(455*24*time.Hour))},
		{"NotAfter before NotBefore", keep(now.Add(24*time.Hour), now.Add(-24*time.Hour))},
		{"empty body", func(*testing.T, *x509.Certificate, []byte) []byte { return nil }},
		{"not PEM", func(*testing.T, *x509.Certificate, []byte) []byte { return []byte("\x00\xffgarbage") }},
		{"garbage intermediate", func(t *testing.T, leaf *x509.Certificate, _ []byte) []byte {
			lp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
			return append(lp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER at all")})...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostile(p)
			m, _ := hostileManager(t, p, h, a, b)
			waitServing(t, m, 30*time.Second)
			old := servedSerial(t, m, a)
			oldAfter := m.Status()[0].NotAfter
			h.set(func(req *http.Request, resp *http.Response) *http.Response {
				if !strings.HasPrefix(req.URL.Path, "/certZ/") || resp.StatusCode != http.StatusOK {
					return resp
				}
				chain, _ := io.ReadAll(resp.Body)
				leaf, rest := splitChain(chain)
				if leaf == nil {
					return setBody(resp, chain)
				}
				return setBody(resp, tc.body(t, leaf, rest))
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err := m.Renew(ctx, RenewOptions{Force: true})
			if err == nil {
				t.Errorf("renewal accepted the CA's %s certificate", tc.name)
			}
			if got := servedSerial(t, m, a); got != old {
				t.Errorf("served certificate replaced (serial %s, was %s) by the CA's %s one", got, old, tc.name)
			}
			if st := m.Status()[0]; !st.Serving || !st.NotAfter.Equal(oldAfter) {
				t.Errorf("status after the refused renewal: serving=%v not_after=%v (was %v)", st.Serving, st.NotAfter, oldAfter)
			}
			t.Logf("renew error: %v", err)
		})
	}
}

// TestHostileCAForeignAuthorization: the CA lists, in the order, an
// authorization for an identifier that was never requested. The client
// must not solve a challenge for a name nobody configured: the order is
// refused.
func TestHostileCAForeignAuthorization(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	h := newHostile(p)
	h.set(func(req *http.Request, resp *http.Response) *http.Response {
		if !strings.HasPrefix(req.URL.Path, "/authZ/") || resp.StatusCode != http.StatusOK {
			return resp
		}
		return editJSON(resp, func(m map[string]any) {
			m["identifier"] = map[string]any{"type": "dns", "value": "nobody-configured.example"}
		})
	})
	_, ev := hostileManager(t, p, h, "own.hostile.test")
	if e := outcome(t, ev, 60*time.Second); e.Type != EventFailed {
		t.Errorf("solved an authorization for nobody-configured.example and got event %s; want the order refused", e.Type)
	}
}

// TestHostileCAValidOrderWithoutCertificate: an order that says "valid"
// but names no certificate URL fails with a clear error; nothing panics
// and the certificate in service stays.
func TestHostileCAValidOrderWithoutCertificate(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	h := newHostile(p)
	m, _ := hostileManager(t, p, h, "nocert.hostile.test")
	waitServing(t, m, 30*time.Second)
	old := servedSerial(t, m, "nocert.hostile.test")
	h.set(func(req *http.Request, resp *http.Response) *http.Response {
		if !strings.HasPrefix(req.URL.Path, "/my-order/") && !strings.HasPrefix(req.URL.Path, "/finalize-order/") {
			return resp
		}
		return editJSON(resp, func(m map[string]any) {
			if m["status"] == "valid" || m["status"] == "processing" {
				m["status"] = "valid"
				delete(m, "certificate")
			}
		})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := m.Renew(ctx, RenewOptions{Force: true})
	if err == nil {
		t.Errorf("renewal succeeded without a certificate URL")
	}
	if got := servedSerial(t, m, "nocert.hostile.test"); got != old {
		t.Errorf("served certificate changed")
	}
	t.Logf("error: %v", err)
}

// TestHostileCAChallengeTokenPath (pins held behaviour): the CA's
// http-01 token tries to climb out of the challenge directory. No file
// may be written outside it, and the attempt fails with an error.
func TestHostileCAChallengeTokenPath(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	h := newHostile(p)
	h.set(func(req *http.Request, resp *http.Response) *http.Response {
		if !strings.HasPrefix(req.URL.Path, "/authZ/") || resp.StatusCode != http.StatusOK {
			return resp
		}
		return editJSON(resp, func(m map[string]any) {
			chs, _ := m["challenges"].([]any)
			for _, c := range chs {
				if c, ok := c.(map[string]any); ok {
					c["token"] = "../../escaped"
				}
			}
		})
	})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.caTransport = h
	m := startManager(t, p, cfg)
	root := t.TempDir()
	dir := root + "/a/webroot"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.ManageCerts(context.Background(), Cert{Names: []string{"token.hostile.test"}, ChallengeDir: dir}); err != nil {
		t.Fatal(err)
	}
	e := outcome(t, ev, 60*time.Second)
	if e.Type != EventFailed {
		t.Errorf("event %s with a token outside the ACME alphabet", e.Type)
	}
	t.Logf("error: %v", e.Err)
	for path := range readTree(t, root) {
		t.Errorf("file %s written for a token %q", path, "../../escaped")
	}
}
