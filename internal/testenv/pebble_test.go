package testenv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// directory is the part of an ACME directory the tests look at.
type directory struct {
	NewNonce    string `json:"newNonce"`
	NewOrder    string `json:"newOrder"`
	RenewalInfo string `json:"renewalInfo"`
	Meta        struct {
		Profiles                map[string]string `json:"profiles"`
		ExternalAccountRequired bool              `json:"externalAccountRequired"`
	} `json:"meta"`
}

// getDirectory GETs p's directory with a client that trusts p.Roots.
func getDirectory(t *testing.T, p *Pebble) directory {
	t.Helper()
	resp := do(t, p, http.MethodGet, p.DirectoryURL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", p.DirectoryURL, resp.Status)
	}
	var dir directory
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		t.Fatalf("decode directory: %v", err)
	}
	return dir
}

// do makes a request with a client that trusts p.Roots; the body is closed
// at cleanup.
func do(t *testing.T, p *Pebble, method, url string) *http.Response {
	t.Helper()
	client := p.client()
	t.Cleanup(client.CloseIdleConnections)
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// checkDirectory checks the directory of a Pebble started with zero options
// and the counting of requests to it.
func checkDirectory(t *testing.T, p *Pebble) {
	t.Helper()
	dir := getDirectory(t, p)
	base := strings.TrimSuffix(p.DirectoryURL, "/dir")
	if dir.NewOrder != base+"/order-plz" {
		t.Errorf("newOrder = %q, want %q", dir.NewOrder, base+"/order-plz")
	}
	if !strings.HasPrefix(dir.RenewalInfo, base+"/") {
		t.Errorf("renewalInfo = %q, want a URL under %s", dir.RenewalInfo, base)
	}
	if _, ok := dir.Meta.Profiles["default"]; !ok || len(dir.Meta.Profiles) != 1 {
		t.Errorf("profiles = %v, want only default", dir.Meta.Profiles)
	}
	if dir.Meta.ExternalAccountRequired {
		t.Errorf("externalAccountRequired = true without EAB keys")
	}
	for range 3 {
		resp := do(t, p, http.MethodHead, dir.NewNonce)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Replay-Nonce") == "" {
			t.Fatalf("HEAD %s: %s, Replay-Nonce %q", dir.NewNonce, resp.Status, resp.Header.Get("Replay-Nonce"))
		}
	}
	if got := p.RequestsTo("/nonce-plz"); got != 3 {
		t.Errorf("RequestsTo(/nonce-plz) = %d, want 3", got)
	}
	if got := p.Requests(); got != 4 {
		t.Errorf("Requests() = %d, want 4", got)
	}
	if got := p.Orders(); got != 0 {
		t.Errorf("Orders() = %d, want 0", got)
	}
}

func TestStartPebble(t *testing.T) {
	start := time.Now()
	p := StartPebble(t, PebbleOptions{})
	t.Logf("StartPebble took %v", time.Since(start))
	checkDirectory(t, p)
	if p.IssuerRoots(t) == nil {
		t.Errorf("IssuerRoots returned nil")
	}
}

func TestStartPebbleProfilesAndEAB(t *testing.T) {
	key := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	p := StartPebble(t, PebbleOptions{
		Profiles: map[string]time.Duration{"shortlived": 2 * time.Minute},
		EAB:      map[string]string{"kid-1": key},
	})
	dir := getDirectory(t, p)
	if !dir.Meta.ExternalAccountRequired {
		t.Errorf("externalAccountRequired = false with EAB keys")
	}
	var names []string
	for name := range dir.Meta.Profiles {
		names = append(names, name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"default", "shortlived"}) {
		t.Errorf("profiles = %v, want default and shortlived", names)
	}
}

func TestSetFault(t *testing.T) {
	p := StartPebble(t, PebbleOptions{})
	dir := getDirectory(t, p)
	p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/nonce-plz":
			WriteProblem(w, http.StatusInternalServerError, "serverInternal", "injected", 0)
			return true
		case "/order-plz":
			WriteProblem(w, http.StatusTooManyRequests, "rateLimited", "slow down", 1500*time.Millisecond)
			return true
		}
		return false
	})

	resp := do(t, p, http.MethodGet, dir.NewNonce)
	var prob struct{ Type string }
	if err := json.NewDecoder(resp.Body).Decode(&prob); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	if resp.StatusCode != http.StatusInternalServerError || prob.Type != "urn:ietf:params:acme:error:serverInternal" {
		t.Errorf("faulted newNonce: %s, type %q; want 500 serverInternal", resp.Status, prob.Type)
	}
	resp = do(t, p, http.MethodPost, dir.NewOrder)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("faulted newOrder: %s, Retry-After %q; want 429, 2", resp.Status, resp.Header.Get("Retry-After"))
	}
	getDirectory(t, p) // not faulted

	p.SetFault(nil)
	if resp := do(t, p, http.MethodGet, dir.NewNonce); resp.StatusCode == http.StatusInternalServerError {
		t.Errorf("newNonce after SetFault(nil): %s", resp.Status)
	}
	if got := p.RequestsTo("/nonce-plz"); got != 2 {
		t.Errorf("RequestsTo(/nonce-plz) = %d, want 2", got)
	}
	if got := p.Requests(); got != 5 {
		t.Errorf("Requests() = %d, want 5", got)
	}
	if got := p.Orders(); got != 0 {
		t.Errorf("Orders() = %d, want 0 (the only newOrder was faulted)", got)
	}
}

func TestWriteProblem(t *testing.T) {
	tests := []struct {
		typ, wantType string
		retryAfter    time.Duration
		wantRetry     string
	}{
		{"badNonce", "urn:ietf:params:acme:error:badNonce", 0, ""},
		{"about:blank", "about:blank", time.Second, "1"},
		{"rateLimited", "urn:ietf:params:acme:error:rateLimited", 1100 * time.Millisecond, "2"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		WriteProblem(w, http.StatusBadRequest, tt.typ, "detail", tt.retryAfter)
		var prob struct {
			Type, Detail string
			Status       int
		}
		if err := json.Unmarshal(w.Body.Bytes(), &prob); err != nil {
			t.Fatalf("%s: %v", tt.typ, err)
		}
		if w.Code != 400 || prob.Status != 400 || prob.Type != tt.wantType || prob.Detail != "detail" {
			t.Errorf("%s: code %d, problem %+v", tt.typ, w.Code, prob)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", tt.typ, ct)
		}
		if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
			t.Errorf("%s: Retry-After %q, want %q", tt.typ, got, tt.wantRetry)
		}
	}
}

func TestPebbleEnv(t *testing.T) {
	tests := []struct {
		name string
		opts PebbleOptions
		want []string
	}{
		{"zero", PebbleOptions{}, []string{
			"PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=", "PEBBLE_WFE_NONCEREJECT=20", "PEBBLE_AUTHZREUSE=0"}},
		{"none rejected, default reuse, sleep", PebbleOptions{NonceReject: -1, AuthzReuse: -1, Sleep: true}, []string{
			"PEBBLE_VA_NOSLEEP=", "PEBBLE_VA_ALWAYS_VALID=", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE="}},
		{"explicit", PebbleOptions{NonceReject: 50, AuthzReuse: 100}, []string{
			"PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=", "PEBBLE_WFE_NONCEREJECT=50", "PEBBLE_AUTHZREUSE=100"}},
	}
	for _, tt := range tests {
		if got := pebbleEnv(tt.opts); !slices.Equal(got, tt.want) {
			t.Errorf("%s: pebbleEnv = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestProfiles(t *testing.T) {
	ps := profiles(PebbleOptions{
		Validity: 90 * time.Minute,
		Profiles: map[string]time.Duration{"shortlived": 1500 * time.Millisecond, "long": 0},
	})
	want := map[string]uint64{"default": 5400, "shortlived": 2, "long": 0}
	if len(ps) != len(want) {
		t.Errorf("profiles = %v, want %v", ps, want)
	}
	for name, secs := range want {
		if ps[name].ValidityPeriod != secs {
			t.Errorf("profile %q: ValidityPeriod %d, want %d", name, ps[name].ValidityPeriod, secs)
		}
	}
}

func TestReplacesField(t *testing.T) {
	jws := func(payload string) []byte {
		return []byte(`{"protected":"e30","payload":"` +
			base64.RawURLEncoding.EncodeToString([]byte(payload)) + `","signature":"AA"}`)
	}
	tests := []struct {
		body []byte
		want string
	}{
		{jws(`{"identifiers":[],"replaces":"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"}`), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"},
		{jws(`{"identifiers":[]}`), ""},
		{jws(`not json`), ""},
		{[]byte(`{"payload":"!!"}`), ""},
		{[]byte(`garbage`), ""},
	}
	for _, tt := range tests {
		if got := replacesField(tt.body); got != tt.want {
			t.Errorf("replacesField(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

// TestRequestsSkipBadNonce: a request Pebble refuses with badNonce is not
// counted, since a client sends it again; other refused requests are.
func TestRequestsSkipBadNonce(t *testing.T) {
	p := StartPebble(t, PebbleOptions{NonceReject: -1})
	dir := getDirectory(t, p)
	var acct struct {
		NewAccount string `json:"newAccount"`
	}
	if err := json.NewDecoder(do(t, p, http.MethodGet, p.DirectoryURL).Body).Decode(&acct); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	before := p.Requests()
	for _, nonce := range []string{"bm90LWEtbm9uY2U", "", "bm90LWEtbm9uY2U"} {
		resp := postJWS(t, p, key, acct.NewAccount, nonce)
		var prob struct{ Type string }
		_ = json.NewDecoder(resp.Body).Decode(&prob)
		if prob.Type != acmeErrorNamespace+"badNonce" {
			t.Fatalf("nonce %q: %s %q, want badNonce", nonce, resp.Status, prob.Type)
		}
	}
	if n := p.RequestsTo("/sign-me-up"); n != 0 {
		t.Errorf("RequestsTo(/sign-me-up) = %d after three badNonce answers, want 0", n)
	}
	if n := p.Requests() - before; n != 0 {
		t.Errorf("Requests() grew by %d, want 0", n)
	}
	do(t, p, http.MethodPost, dir.NewOrder) // malformed, not badNonce
	if n := p.RequestsTo("/order-plz"); n != 1 {
		t.Errorf("RequestsTo(/order-plz) = %d after a malformed request, want 1", n)
	}
}

// postJWS POSTs a newAccount request signed by key with the given nonce,
// in the flattened JSON serialization (RFC 8555 §6.2); the body is closed
// at cleanup.
func postJWS(t *testing.T, p *Pebble, key *ecdsa.PrivateKey, url, nonce string) *http.Response {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	pad := func(b []byte) []byte { return append(make([]byte, 32-len(b)), b...) }
	jwk := map[string]string{"kty": "EC", "crv": "P-256",
		"x": b64(pad(key.X.Bytes())), "y": b64(pad(key.Y.Bytes()))}
	hdr := map[string]any{"alg": "ES256", "jwk": jwk, "url": url}
	if nonce != "" {
		hdr["nonce"] = nonce
	}
	protected, _ := json.Marshal(hdr)
	payload := b64([]byte(`{"termsOfServiceAgreed":true}`))
	signing := b64(protected) + "." + payload
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"protected": b64(protected), "payload": payload,
		"signature": b64(append(pad(r.Bytes()), pad(s.Bytes())...))})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/jose+json")
	client := p.client()
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
