package ocspclient

import (
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestProblem: what Problem says of Fetch's errors, from a responder
// down, answering HTTP errors, and answering unusably.
func TestProblem(t *testing.T) {
	ca := newTestCA(t, "CA")
	other := newTestCA(t, "CA") // same name, another key
	leaf, _ := ca.issue(t, 100)
	now := time.Now()
	good := ocsp.Response{Status: ocsp.Good, SerialNumber: leaf.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	with := func(f func(*ocsp.Response)) ocsp.Response { r := good; f(&r); return r }
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	tests := []struct {
		name string
		body []byte // nil: HTTP 503
		want string
	}{
		{"tryLater", ocsp.TryLaterErrorResponse, "responder answered tryLater"},
		{"internalError", ocsp.InternalErrorErrorResponse, "responder answered internalError"},
		{"unauthorized", ocsp.UnauthorizedErrorResponse, "responder answered unauthorized"},
		{"http 503", nil, "responder answered with an HTTP error"},
		{"html", []byte("<html>busy</html>"), "the responder's answer is not an OCSP response"},
		{"truncated", respond(t, ca.cert, ca.cert, ca.key, good)[:40], "the responder's answer is not an OCSP response"},
		{"wrong key", respond(t, ca.cert, ca.cert, other.key, good), "answer signed by a key other than the issuer's or its delegate"},
		{"other serial", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) { r.SerialNumber = big.NewInt(101) })), "answer for another serial"},
		{"other issuer", respond(t, other.cert, ca.cert, ca.key, good), "answer for a certificate of another issuer"},
		{"stale", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) {
			r.ThisUpdate, r.NextUpdate = now.Add(-2*time.Hour), now.Add(-time.Minute)
		})), "answer is stale"},
		{"future", respond(t, ca.cert, ca.cert, ca.key, with(func(r *ocsp.Response) {
			r.ThisUpdate, r.NextUpdate = now.Add(time.Hour), now.Add(2*time.Hour)
		})), "answer is dated in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.body == nil {
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return
				}
				_, _ = w.Write(tt.body)
			}))
			defer srv.Close()
			_, err := Fetch(t.Context(), Options{Responder: srv.URL}, leaf, ca.cert)
			if err == nil {
				t.Fatal("Fetch: no error")
			}
			if got := Problem(err); got != tt.want {
				t.Errorf("Problem(%v) = %q, want %q", err, got, tt.want)
			}
		})
	}
	_, err := Fetch(t.Context(), Options{Responder: downURL}, leaf, ca.cert)
	if got := Problem(err); got != "responder unavailable" {
		t.Errorf("responder down: Problem(%v) = %q", err, got)
	}
}
