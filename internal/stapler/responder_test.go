package stapler

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// fakeResponder answers OCSP requests in process on the port of an
// OpenSSLCA's OCSPURL (the one its certificates name), with answers the
// openssl responder cannot give on request (tryLater, garbage, a wrong
// key, another serial), and counts the requests.
type fakeResponder struct {
	ca       *testenv.OpenSSLCA
	key      crypto.Signer
	wrongKey crypto.Signer // of no CA
	requests atomic.Int64
	mode     atomic.Value // string: what to answer, see answer
}

// startFakeResponder serves ca.OCSPURL in process until the test ends,
// answering as mode says (see fakeResponder.answer).
func startFakeResponder(t *testing.T, ca *testenv.OpenSSLCA, mode string) *fakeResponder {
	t.Helper()
	wrong, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeResponder{ca: ca, key: readKey(t, ca.KeyFile), wrongKey: wrong}
	f.mode.Store(mode)
	u, err := url.Parse(ca.OCSPURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

// serve answers one request.
func (f *fakeResponder) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(f.answer(req))
}

// answer is the response of the current mode: "good", "tryLater",
// "garbage", "otherserial", "wrongkey" (signed by a key of no CA),
// "stale".
func (f *fakeResponder) answer(req *ocsp.Request) []byte {
	now := time.Now()
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
	key := f.key
	switch f.mode.Load().(string) {
	case "tryLater":
		return ocsp.TryLaterErrorResponse
	case "garbage":
		return []byte("<html>not an OCSP response</html>")
	case "otherserial":
		tmpl.SerialNumber = new(big.Int).Add(req.SerialNumber, big.NewInt(1))
	case "stale":
		tmpl.ThisUpdate, tmpl.NextUpdate = now.Add(-2*time.Hour), now.Add(-time.Hour)
	case "wrongkey":
		key = f.wrongKey
	}
	raw, err := ocsp.CreateResponse(f.ca.Cert, f.ca.Cert, tmpl, key)
	if err != nil {
		return nil
	}
	return raw
}

// readKey reads a PEM PKCS #8 private key.
func readKey(t *testing.T, file string) crypto.Signer {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", file)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// newStaplerOpts is newStapler with options (no storage).
func newStaplerOpts(t *testing.T, recs *logRecords, opts Options) *Stapler {
	t.Helper()
	opts.Cache = ocspclient.NewCache(ocspclient.CacheOptions{})
	opts.Logger = slog.New(recs)
	s, err := New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
